//! The mail outbox both services write (`mail_outbox`): a message is a row, written in the
//! transaction that decided to send it, so it is sent if and only if that transaction commits.
//! The gateway renders each row with the template its [`MailKind`] names and sends it over
//! SMTP (its `mail` module), retrying until the server takes it.
//!
//! Links in [`enqueue`]'s data are paths (`/api/auth/verify-email?token=...`): the gateway
//! makes them absolute with `PUBLIC_ORIGIN`, which the backend does not know.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel [`enqueue`] notifies (on commit) so a sender wakes at once instead of at its
/// next poll.
pub const CHANNEL: &str = "mail_outbox";

/// Which template a message is rendered with, and the data each expects (every value a JSON
/// string unless said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// Registration: `name`, `link` (the verification page).
    VerifyEmail,
    /// Someone tried to register with an address that has an account: `name`, `signin_link`,
    /// `reset_link`.
    AccountExists,
    /// A password reset: `name`, `link` (the reset page).
    PasswordReset,
    /// A sign-in link: `link` (the sign-in page).
    SignInLink,
    /// A workspace invitation: `workspace`, `inviter` (a name, or null), `role`, `expires_at`
    /// (RFC 3339), `link` (where the invitee sees their invitations).
    Invitation,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::VerifyEmail,
        Self::AccountExists,
        Self::PasswordReset,
        Self::SignInLink,
        Self::Invitation,
    ];

    /// The name stored in `mail_outbox.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::AccountExists => "account_exists",
            Self::PasswordReset => "password_reset",
            Self::SignInLink => "signin_link",
            Self::Invitation => "invitation",
        }
    }

    /// The kind stored as `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Queues a message of `kind` to `recipient` (an address as typed) with the template's `data`
/// (an object), in the caller's transaction; returns its id (the Message-ID is derived from
/// it). Nothing is sent unless the transaction commits.
pub async fn enqueue(
    conn: &mut PgConnection,
    kind: MailKind,
    recipient: &str,
    data: Value,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, recipient, data) VALUES ($1, $2, $3, $4::jsonb)",
    )
    .bind(id)
    .bind(kind.as_str())
    .bind(recipient)
    .bind(data.to_string())
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("nope"), None);
    }
}
