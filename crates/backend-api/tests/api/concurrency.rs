//! The last-owner rule, and invitations, under concurrent requests.

use reqwest::{Method, StatusCode};
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

#[tokio::test]
async fn a_rename_racing_the_renamers_demotion_is_either_applied_first_or_refused() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let ada = app.user(&format!("ada{round}@example.com")).await;
        let adm = app.user(&format!("adm{round}@example.com")).await;
        let w = app.workspace(&ada, "Before").await;
        app.join(w, &adm, "admin").await;
        let (workspace, member) = (
            format!("/workspaces/{w}"),
            format!("/workspaces/{w}/members/{}", adm.id),
        );
        let (rename, demote) = tokio::join!(
            app.patch(&workspace, &adm, json!({ "name": "After" })),
            app.patch(&member, &ada, json!({ "role": "viewer" })),
        );
        assert_eq!(
            demote.status,
            StatusCode::OK,
            "round {round}: {}",
            demote.body
        );
        let name: String = sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
            .bind(w)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        match rename.status.as_u16() {
            200 => assert_eq!(name, "After", "round {round}"),
            403 => assert_eq!(name, "Before", "round {round}"),
            other => panic!("round {round}: rename answered {other}: {}", rename.body),
        }
        assert_eq!(app.role_in_db(w, &adm).await.as_deref(), Some("viewer"));
    }
}

// ---------------------------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_accepts_of_one_invitation_at_once_make_exactly_one_membership() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let ada = app.user(&format!("ada{round}@example.com")).await;
        let bob = app.user(&format!("bob{round}@example.com")).await;
        let w = app.workspace(&ada, "Race").await;
        let inv = app.invite(&ada, w, &bob.email, "member").await;
        let path = format!("/invitations/{inv}/accept");
        let (a, b) = tokio::join!(
            app.send(Method::POST, &path, Some(&bob), None),
            app.send(Method::POST, &path, Some(&bob), None),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 410],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("member"));
        assert_eq!(
            app.invitation_status(inv).await.as_deref(),
            Some("accepted")
        );
    }
}

#[tokio::test]
async fn an_accept_racing_a_revoke_is_either_a_membership_or_a_410_never_both() {
    let app = TestApp::spawn().await;
    for round in 0..10 {
        let ada = app.user(&format!("ada{round}@example.com")).await;
        let bob = app.user(&format!("bob{round}@example.com")).await;
        let w = app.workspace(&ada, "Race").await;
        let inv = app.invite(&ada, w, &bob.email, "admin").await;
        let (accept_path, revoke_path) = (
            format!("/invitations/{inv}/accept"),
            format!("/workspaces/{w}/invitations/{inv}"),
        );
        let (accept, revoke) = tokio::join!(
            app.send(Method::POST, &accept_path, Some(&bob), None),
            app.delete(&revoke_path, &ada),
        );
        match (accept.status.as_u16(), revoke.status.as_u16()) {
            (200, 409) => {
                assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("admin"));
                assert_eq!(
                    app.invitation_status(inv).await.as_deref(),
                    Some("accepted")
                );
            }
            (410, 204) => {
                assert_eq!(app.role_in_db(w, &bob).await, None);
                assert_eq!(app.invitation_status(inv).await.as_deref(), Some("revoked"));
            }
            other => panic!(
                "round {round}: {other:?}: {} / {}",
                accept.body, revoke.body
            ),
        }
    }
}

#[tokio::test]
async fn two_invitations_of_one_address_at_once_make_one_invitation_and_one_mail() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    for round in 0..10 {
        let w = app.workspace(&ada, "Race").await;
        let path = format!("/workspaces/{w}/invitations");
        let email = format!("someone{round}@example.com");
        let (a, b) = tokio::join!(
            app.post(&path, &ada, json!({ "email": email, "role": "member" })),
            app.post(
                &path,
                &ada,
                json!({ "email": email.to_uppercase(), "role": "viewer" })
            ),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 201],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        assert_eq!(a.body["id"], b.body["id"], "round {round}");
        assert_eq!(app.outbox().await.len(), round + 1, "round {round}");
    }
}
