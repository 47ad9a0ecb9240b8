//! Workspace invitations: inviting (and the mail queued with it), listing, revoking, and the
//! addressee's accepting and declining, matched by their verified email only.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, without_request_fields};

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object().unwrap().keys().cloned().collect()
}

/// Moves an invitation's expiry into the past.
async fn expire(app: &TestApp, invitation: Uuid) {
    sqlx::query(
        "UPDATE workspace_invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(invitation)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

async fn accept(app: &TestApp, invitation: Uuid, user: &TestUser) -> crate::helpers::TestResponse {
    app.send(
        Method::POST,
        &format!("/invitations/{invitation}/accept"),
        Some(user),
        None,
    )
    .await
}

async fn decline(app: &TestApp, invitation: Uuid, user: &TestUser) -> crate::helpers::TestResponse {
    app.send(
        Method::POST,
        &format!("/invitations/{invitation}/decline"),
        Some(user),
        None,
    )
    .await
}

#[tokio::test]
async fn inviting_with_or_without_an_account_answers_201_alike_and_queues_one_mail_each() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.user("Bob@Example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/invitations");
    let known = app
        .post(
            &path,
            &ada,
            json!({ "email": " bob@EXAMPLE.com ", "role": "admin" }),
        )
        .await;
    let unknown = app
        .post(
            &path,
            &ada,
            json!({ "email": "Nobody@Example.com", "role": "admin" }),
        )
        .await;
    for (res, typed) in [
        (&known, "bob@EXAMPLE.com"),
        (&unknown, "Nobody@Example.com"),
    ] {
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let id = res.body["id"].as_str().unwrap();
        assert_eq!(
            res.header("location"),
            Some(format!("/workspaces/{w}/invitations/{id}").as_str())
        );
        assert_eq!(res.body["email"], typed, "as typed, trimmed");
        assert_eq!(res.body["workspace_id"], w.to_string());
        assert_eq!(res.body["workspace_name"], "Team");
        assert_eq!(res.body["role"], "admin");
        assert_eq!(res.body["status"], "pending");
        assert_eq!(res.body["invited_by"], ada.id.to_string());
        assert_eq!(res.body["inviter_name"], "ada");
        assert!(res.body["responded_at"].is_null());
        let created =
            OffsetDateTime::parse(res.body["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
        let expires =
            OffsetDateTime::parse(res.body["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
        assert_eq!(
            expires - created,
            time::Duration::days(7),
            "the default TTL"
        );
    }
    assert_eq!(keys(&known.body), keys(&unknown.body), "the same shape");
    // Nobody joined: membership waits for the invitee.
    let members = app.get(&format!("/workspaces/{w}/members"), &ada).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1);

    let mails = app.outbox().await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    for ((kind, recipient, data), res) in mails.iter().zip([&known, &unknown]) {
        assert_eq!(kind, "invitation");
        assert_eq!(recipient, res.body["email"].as_str().unwrap());
        assert_eq!(
            data,
            &json!({
                "workspace": "Team",
                "inviter": "ada",
                "role": "admin",
                "expires_at": res.body["expires_at"],
                "link": "/invitations",
            })
        );
    }
}

#[tokio::test]
async fn inviting_an_invited_address_again_answers_the_open_invitation_with_200_and_no_mail() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let first = app
        .invite(&ada, w, "Kate.Strasse@example.com", "member")
        .await;
    let path = format!("/workspaces/{w}/invitations");
    for spelling in [
        "ｋａｔｅ．ｓｔｒａｓｓｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "kate.straße@example.com",
        "\u{212A}ATE.STRASSE@example.com",
    ] {
        let res = app
            .post(&path, &ada, json!({ "email": spelling, "role": "viewer" }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{spelling:?}: {}", res.body);
        assert_eq!(res.body["id"], first.to_string());
        assert_eq!(res.body["email"], "Kate.Strasse@example.com");
        assert_eq!(res.body["role"], "member", "unchanged");
    }
    assert_eq!(app.outbox().await.len(), 1, "no second mail");

    // Kate registers with yet another spelling: it is hers.
    let kate = app.user("kate.strasse@EXAMPLE.com").await;
    let res = accept(&app, first, &kate).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(app.role_in_db(w, &kate).await.as_deref(), Some("member"));
}

#[tokio::test]
async fn an_expired_invitation_makes_way_for_a_new_one_and_a_new_mail() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let old = app.invite(&ada, w, "bob@example.com", "member").await;
    expire(&app, old).await;
    let res = app
        .post(
            &format!("/workspaces/{w}/invitations"),
            &ada,
            json!({ "email": "bob@example.com", "role": "viewer" }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_ne!(res.body["id"], old.to_string());
    assert_eq!(res.body["role"], "viewer");
    assert_eq!(app.invitation_status(old).await.as_deref(), Some("revoked"));
    assert_eq!(app.outbox().await.len(), 2);
}

#[tokio::test]
async fn a_bad_email_or_role_is_422_naming_the_field_and_queues_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let path = format!("/workspaces/{w}/invitations");
    let long = format!("{}@example.com", "b".repeat(243));
    for email in [
        "bob@example.com\u{0}",
        "b\u{0}ob@example.com",
        "bob\u{202e}@example.com",
        "bo\u{200b}b@example.com",
        "bob at example.com",
        "@example.com",
        "",
        long.as_str(),
    ] {
        let res = app
            .post(&path, &ada, json!({ "email": email, "role": "member" }))
            .await;
        assert_eq!(res.problem(422)["errors"][0]["field"], "email", "{email:?}");
    }
    let res = app.post(&path, &ada, json!({ "role": "member" })).await;
    assert_eq!(res.problem(422)["errors"][0]["field"], "email");
    for role in ["superuser", "Owner", ""] {
        let res = app
            .post(
                &path,
                &ada,
                json!({ "email": "bob@example.com", "role": role }),
            )
            .await;
        assert_eq!(res.problem(422)["errors"][0]["field"], "role", "{role}");
    }
    assert!(app.outbox().await.is_empty());
    let list = app.get(&path, &ada).await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
async fn inviting_a_members_address_is_409_and_queues_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &bob, "viewer").await;
    let res = app
        .post(
            &format!("/workspaces/{w}/invitations"),
            &ada,
            json!({ "email": "BOB@example.com", "role": "admin" }),
        )
        .await;
    res.problem(409);
    assert!(app.outbox().await.is_empty());
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("viewer"));
}

#[tokio::test]
async fn no_mail_is_queued_when_the_invitations_transaction_fails() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    // A refusal before anything is written: nothing queued.
    let adm = app.user("adm@example.com").await;
    app.join(w, &adm, "admin").await;
    app.post(
        &format!("/workspaces/{w}/invitations"),
        &adm,
        json!({ "email": "bob@example.com", "role": "owner" }),
    )
    .await
    .problem(403);
    // A failure at commit, after the mail was queued in the transaction: a deferred check
    // that refuses every invitation.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_invitation() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_invitation AFTER INSERT ON workspace_invitations \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_invitation();",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let res = app
        .post(
            &format!("/workspaces/{w}/invitations"),
            &ada,
            json!({ "email": "bob@example.com", "role": "member" }),
        )
        .await;
    res.problem(500);
    assert!(
        app.outbox().await.is_empty(),
        "a mail without its invitation"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM workspace_invitations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn admins_list_the_workspaces_invitations_a_page_at_a_time_and_revoke_them() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let adm = app.user("adm@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &adm, "admin").await;
    let a = app.invite(&ada, w, "a@example.com", "member").await;
    let b = app.invite(&adm, w, "b@example.com", "viewer").await;
    let c = app.invite(&ada, w, "c@example.com", "admin").await;
    let path = format!("/workspaces/{w}/invitations");

    let first = app.get(&format!("{path}?limit=2"), &adm).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first.body), [a.to_string(), b.to_string()]);
    assert_eq!(first.body["items"][1]["inviter_name"], "adm");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("{path}?limit=2&cursor={cursor}"), &adm)
        .await;
    assert_eq!(ids(&second.body), [c.to_string()]);
    assert!(second.body["next_cursor"].is_null());
    app.get(&format!("{path}?limit=0"), &adm).await.problem(400);
    app.get(&format!("{path}?cursor=nope"), &adm)
        .await
        .problem(400);

    // Revoking: 204, then it reads as revoked, and revoking it again changes nothing.
    let res = app.delete(&format!("{path}/{b}"), &adm).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_eq!(app.invitation_status(b).await.as_deref(), Some("revoked"));
    let res = app.delete(&format!("{path}/{b}"), &adm).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    expire(&app, c).await;
    let list = app.get(&path, &ada).await;
    let statuses: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "revoked", "expired"]);

    // An unknown id, or one of another workspace: 404, the same answer.
    let other = app.workspace(&ada, "Other").await;
    let elsewhere = app.invite(&ada, other, "d@example.com", "member").await;
    let unknown = app
        .delete(&format!("{path}/{}", Uuid::now_v7()), &ada)
        .await;
    unknown.problem(404);
    let foreign = app.delete(&format!("{path}/{elsewhere}"), &ada).await;
    foreign.problem(404);
    assert_eq!(
        without_request_fields(&unknown.body),
        without_request_fields(&foreign.body)
    );
    assert_eq!(
        app.invitation_status(elsewhere).await.as_deref(),
        Some("pending")
    );

    // An answered invitation cannot be revoked.
    let bob = app.user("a@example.com").await;
    assert_eq!(accept(&app, a, &bob).await.status, StatusCode::OK);
    app.delete(&format!("{path}/{a}"), &ada).await.problem(409);
    assert_eq!(app.invitation_status(a).await.as_deref(), Some("accepted"));
}

#[tokio::test]
async fn the_verified_addressee_sees_the_invitation_and_accepting_makes_them_a_member() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("Bob@Example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "bob@example.com", "admin").await;

    let mine = app.get("/invitations", &bob).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let items = mine.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], inv.to_string());
    assert_eq!(items[0]["workspace_id"], w.to_string());
    assert_eq!(items[0]["workspace_name"], "Team");
    assert_eq!(items[0]["inviter_name"], "ada");
    assert_eq!(items[0]["role"], "admin");
    assert_eq!(items[0]["status"], "pending");
    // The inviter is not the addressee.
    assert_eq!(app.get("/invitations", &ada).await.body["items"], json!([]));

    let res = accept(&app, inv, &bob).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["id"], w.to_string());
    assert_eq!(res.body["name"], "Team");
    assert_eq!(res.body["role"], "admin");
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("admin"));
    assert_eq!(
        app.invitation_status(inv).await.as_deref(),
        Some("accepted")
    );
    let responded: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT responded_at FROM workspace_invitations WHERE id = $1")
            .bind(inv)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(responded.is_some());
    assert_eq!(app.get("/invitations", &bob).await.body["items"], json!([]));
    assert_eq!(
        app.get(&format!("/workspaces/{w}"), &bob).await.status,
        StatusCode::OK
    );
    // Once is enough.
    accept(&app, inv, &bob).await.problem(410);
}

#[tokio::test]
async fn anyone_but_the_verified_addressee_gets_the_404_of_an_unknown_invitation() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "bob@example.com", "member").await;
    let unknown = accept(&app, Uuid::now_v7(), &carol).await;
    unknown.problem(404);
    let expected = without_request_fields(&unknown.body);

    // Another user, the inviter (an owner of the workspace), and the addressee's own account
    // while its email is unverified: all exactly the unknown id's answer.
    app.set_verified(&bob, false).await;
    for who in [&carol, &ada, &bob] {
        for res in [accept(&app, inv, who).await, decline(&app, inv, who).await] {
            res.problem(404);
            assert_eq!(without_request_fields(&res.body), expected, "{}", who.email);
        }
        assert_eq!(
            app.get("/invitations", who).await.body["items"],
            json!([]),
            "{}",
            who.email
        );
    }
    assert_eq!(app.invitation_status(inv).await.as_deref(), Some("pending"));
    assert_eq!(app.role_in_db(w, &bob).await, None);
    assert_eq!(app.role_in_db(w, &carol).await, None);

    // Verified, it is theirs.
    app.set_verified(&bob, true).await;
    assert_eq!(
        app.get("/invitations", &bob).await.body["items"][0]["id"],
        inv.to_string()
    );
    assert_eq!(accept(&app, inv, &bob).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_revoked_declined_or_accepted_invitation_is_410_for_its_addressee_only() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let cases = [
        ("expired", "This invitation has expired."),
        ("revoked", "This invitation was revoked."),
        ("declined", "This invitation was declined."),
        ("accepted", "This invitation was already accepted."),
    ];
    for (n, (state, detail)) in cases.into_iter().enumerate() {
        let w = app.workspace(&ada, &format!("Team {n}")).await;
        let inv = app.invite(&ada, w, "bob@example.com", "member").await;
        match state {
            "expired" => expire(&app, inv).await,
            "revoked" => {
                let res = app
                    .delete(&format!("/workspaces/{w}/invitations/{inv}"), &ada)
                    .await;
                assert_eq!(res.status, StatusCode::NO_CONTENT);
            }
            "declined" => assert_eq!(
                decline(&app, inv, &bob).await.status,
                StatusCode::NO_CONTENT
            ),
            _ => assert_eq!(accept(&app, inv, &bob).await.status, StatusCode::OK),
        }
        let member_before = app.role_in_db(w, &bob).await;
        for res in [
            accept(&app, inv, &bob).await,
            decline(&app, inv, &bob).await,
        ] {
            assert_eq!(res.problem(410)["detail"], detail, "{state}");
        }
        for res in [
            accept(&app, inv, &carol).await,
            decline(&app, inv, &carol).await,
        ] {
            res.problem(404);
        }
        assert_eq!(app.role_in_db(w, &bob).await, member_before, "{state}");
        assert!(
            app.get("/invitations", &bob).await.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["id"] != inv.to_string()),
            "{state}: listed"
        );
    }
}

#[tokio::test]
async fn accepting_while_already_a_member_is_409_and_leaves_the_invitation_open() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "bob@example.com", "admin").await;
    app.join(w, &bob, "viewer").await;
    accept(&app, inv, &bob).await.problem(409);
    assert_eq!(app.role_in_db(w, &bob).await.as_deref(), Some("viewer"));
    assert_eq!(app.invitation_status(inv).await.as_deref(), Some("pending"));
    // Declining it is still possible.
    assert_eq!(
        decline(&app, inv, &bob).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn declining_marks_the_invitation_declined_and_adds_no_one() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "bob@example.com", "member").await;
    let res = decline(&app, inv, &bob).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    assert_eq!(
        app.invitation_status(inv).await.as_deref(),
        Some("declined")
    );
    assert_eq!(app.role_in_db(w, &bob).await, None);
    let list = app.get(&format!("/workspaces/{w}/invitations"), &ada).await;
    assert_eq!(list.body["items"][0]["status"], "declined");
    assert!(list.body["items"][0]["responded_at"].is_string());
    // The address may be invited again, with a new mail.
    let again = app.invite(&ada, w, "bob@example.com", "member").await;
    assert_ne!(again, inv);
    assert_eq!(app.outbox().await.len(), 2);
}

#[tokio::test]
async fn an_address_without_an_account_accepts_once_it_registers_and_verifies() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let inv = app.invite(&ada, w, "NewBie@Example.com", "member").await;
    let mails = app.outbox().await;
    assert_eq!(mails[0].1, "NewBie@Example.com");

    // Registration (the gateway's) inserts the user unverified.
    let newbie = app.user("newbie@example.com").await;
    app.set_verified(&newbie, false).await;
    assert_eq!(
        app.get("/invitations", &newbie).await.body["items"],
        json!([])
    );
    accept(&app, inv, &newbie).await.problem(404);
    // The verification link was used.
    app.set_verified(&newbie, true).await;
    let mine = app.get("/invitations", &newbie).await;
    assert_eq!(mine.body["items"][0]["id"], inv.to_string());
    let res = accept(&app, inv, &newbie).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(app.role_in_db(w, &newbie).await.as_deref(), Some("member"));
}

#[tokio::test]
async fn deleting_the_inviter_or_the_invitee_is_not_blocked_by_invitations() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let adm = app.user("adm@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    app.join(w, &adm, "admin").await;
    let to_bob = app.invite(&adm, w, "bob@example.com", "member").await;
    let to_carol = app.invite(&adm, w, "carol@example.com", "member").await;
    for user in [&adm, &carol] {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.id)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    let mine = app.get("/invitations", &bob).await;
    assert_eq!(mine.body["items"][0]["id"], to_bob.to_string());
    assert!(mine.body["items"][0]["invited_by"].is_null());
    assert!(mine.body["items"][0]["inviter_name"].is_null());
    assert_eq!(accept(&app, to_bob, &bob).await.status, StatusCode::OK);
    assert_eq!(
        app.invitation_status(to_carol).await.as_deref(),
        Some("pending")
    );
}

#[tokio::test]
async fn invitation_ids_in_the_body_or_another_workspaces_path_change_nothing_elsewhere() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let w = app.workspace(&ada, "Ada's").await;
    let m = app.workspace(&mallory, "Mallory's").await;
    let inv = app.invite(&ada, w, "zoe@example.com", "member").await;
    // Mallory invites into her workspace, naming Ada's in the body: it is Mallory's.
    let res = app
        .post(
            &format!("/workspaces/{m}/invitations"),
            &mallory,
            json!({ "email": "zoe@example.com", "role": "owner", "workspace_id": w, "id": inv }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["workspace_id"], m.to_string());
    assert_ne!(res.body["id"], inv.to_string());
    // Mallory cannot revoke Ada's invitation through her own workspace.
    app.delete(&format!("/workspaces/{m}/invitations/{inv}"), &mallory)
        .await
        .problem(404);
    // Nor list or revoke it through Ada's.
    app.get(&format!("/workspaces/{w}/invitations"), &mallory)
        .await
        .problem(404);
    app.delete(&format!("/workspaces/{w}/invitations/{inv}"), &mallory)
        .await
        .problem(404);
    assert_eq!(app.invitation_status(inv).await.as_deref(), Some("pending"));
}

#[tokio::test]
async fn invitations_live_for_invitation_ttl_secs() {
    let app = TestApp::spawn_with(&[], &[("INVITATION_TTL_SECS", "2")]).await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let w = app.workspace(&ada, "Team").await;
    let res = app
        .post(
            &format!("/workspaces/{w}/invitations"),
            &ada,
            json!({ "email": "bob@example.com", "role": "member" }),
        )
        .await;
    let created =
        OffsetDateTime::parse(res.body["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let expires =
        OffsetDateTime::parse(res.body["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(expires - created, time::Duration::seconds(2));
    let inv: Uuid = res.body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        app.get("/invitations", &bob).await.body["items"][0]["id"],
        inv.to_string()
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(app.get("/invitations", &bob).await.body["items"], json!([]));
    assert_eq!(
        accept(&app, inv, &bob).await.problem(410)["detail"],
        "This invitation has expired."
    );
}
