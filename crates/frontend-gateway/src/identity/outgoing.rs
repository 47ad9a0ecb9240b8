//! What the identity wing mails, in one place: each message is a `mail_outbox` row written in
//! the transaction that decided to send it (with the link's token, when it carries one), and
//! the mail wing sends it.
//!
//! The requests that mail someone (registration, a new verification link, a password reset, a
//! sign-in link) answer the same whether or not the address has an account: their lookups and
//! writes run after the answer ([`later`]), so neither the answer nor its timing tells.

use std::future::Future;

use serde_json::json;
use sqlx::PgConnection;
use web_common::outbox::{self, MailKind};

use tracing::Instrument;

use super::tokens::{self, Grant, Purpose};
use super::users::Account;

/// The verification link's page.
const VERIFY_PAGE: &str = "/api/auth/verify-email";
/// The reset link's page.
const RESET_PAGE: &str = "/api/auth/reset-password";

/// The path of a link's page with its token.
fn link(path: &str, token: &str) -> String {
    format!("{path}?token={token}")
}

fn grant(account: &Account, email_key: &str) -> Grant {
    Grant {
        user_id: Some(account.id),
        email: account.email.clone(),
        email_key: email_key.to_owned(),
        callback_url: None,
    }
}

/// Issues a `purpose` link for `account` (whose address has the key `email_key`) and queues
/// the `kind` mail carrying it (as `link`, to the page at `path`).
async fn link_mail(
    conn: &mut PgConnection,
    account: &Account,
    email_key: &str,
    (purpose, kind, path): (Purpose, MailKind, &str),
) -> Result<(), sqlx::Error> {
    let token = tokens::issue(conn, purpose, &grant(account, email_key)).await?;
    let data = json!({ "name": account.name, "link": link(path, &token) });
    outbox::enqueue(conn, kind, &account.email, data).await?;
    Ok(())
}

/// Mails `account` a verification link (24 hours).
pub async fn verification(
    conn: &mut PgConnection,
    account: &Account,
    email_key: &str,
) -> Result<(), sqlx::Error> {
    let what = (Purpose::VerifyEmail, MailKind::VerifyEmail, VERIFY_PAGE);
    link_mail(conn, account, email_key, what).await
}

/// Tells `account` that someone tried to register with its address, with a sign-in link and a
/// password reset link (1 hour).
pub async fn account_exists(
    conn: &mut PgConnection,
    account: &Account,
    email_key: &str,
) -> Result<(), sqlx::Error> {
    let token = tokens::issue(conn, Purpose::PasswordReset, &grant(account, email_key)).await?;
    let data = json!({
        "name": account.name,
        "signin_link": "/signin",
        "reset_link": link(RESET_PAGE, &token),
    });
    outbox::enqueue(conn, MailKind::AccountExists, &account.email, data).await?;
    Ok(())
}

/// Mails `account` a password reset link (1 hour).
pub async fn password_reset(
    conn: &mut PgConnection,
    account: &Account,
    email_key: &str,
) -> Result<(), sqlx::Error> {
    let what = (Purpose::PasswordReset, MailKind::PasswordReset, RESET_PAGE);
    link_mail(conn, account, email_key, what).await
}

/// Mails a sign-in link (10 minutes) to `grant.email`; `grant.callback_url` is where it leads.
pub async fn sign_in_link(conn: &mut PgConnection, grant: &Grant) -> Result<(), sqlx::Error> {
    let token = tokens::issue(conn, Purpose::SignInLink, grant).await?;
    let path = format!(
        "/api/auth/callback/email?token={token}&email={}",
        crate::pages::encode_component(&grant.email)
    );
    let data = json!({ "link": path });
    outbox::enqueue(conn, MailKind::SignInLink, &grant.email, data).await?;
    Ok(())
}

/// Runs `work` (lookups and writes whose outcome the answer must not show) beside the
/// answer, in the request's span; a failure is logged with `what` (the request was answered
/// already).
pub fn later<F>(what: &'static str, work: F)
where
    F: Future<Output = Result<(), sqlx::Error>> + 'static,
{
    actix_web::rt::spawn(
        async move {
            if let Err(e) = work.await {
                tracing::error!(error = %e, what, "mailing work after the answer failed");
            }
        }
        .in_current_span(),
    );
}
