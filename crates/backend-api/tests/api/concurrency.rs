//! The last-owner rule under concurrent requests.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn two_owners_leaving_at_once_leave_exactly_one_owner() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let ada = app.user(&format!("ada{round}@example.com")).await;
        let bob = app.user(&format!("bob{round}@example.com")).await;
        let w = app.workspace(&ada, "Race").await;
        app.join(w, &bob, "owner").await;
        let (pa, pb) = (
            format!("/workspaces/{w}/members/{}", ada.id),
            format!("/workspaces/{w}/members/{}", bob.id),
        );
        let (a, b) = tokio::join!(app.delete(&pa, &ada), app.delete(&pb, &bob));
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [204, 409],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        assert_eq!(app.owner_count(w).await, 1);
    }
}

#[tokio::test]
async fn two_owners_demoting_themselves_at_once_leave_exactly_one_owner() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let ada = app.user(&format!("ada{round}@example.com")).await;
        let bob = app.user(&format!("bob{round}@example.com")).await;
        let w = app.workspace(&ada, "Race").await;
        app.join(w, &bob, "owner").await;
        let (pa, pb) = (
            format!("/workspaces/{w}/members/{}", ada.id),
            format!("/workspaces/{w}/members/{}", bob.id),
        );
        let (a, b) = tokio::join!(
            app.patch(&pa, &ada, json!({ "role": "member" })),
            app.patch(&pb, &bob, json!({ "role": "member" })),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        assert_eq!(app.owner_count(w).await, 1);
        assert_ne!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
