//! Who a provider sign-in is: the linking rules, in one place.
//!
//! * `(provider, subject)` already linked: that user.
//! * Not linked, no user with the email: a new user without a password, linked (only when the
//!   provider allows sign-up).
//! * Not linked, a user with that email exists: linked automatically only when the provider
//!   says the email is verified AND the provider is trusted with emails (`trustEmail`);
//!   otherwise `OAuthAccountNotLinked`: an unverified or untrusted email never takes over an
//!   account. An automatic link removes the existing user's password and their other provider
//!   links, and ends their other sessions: nothing proved that whoever set that password (or
//!   linked those providers) owns the address (an attacker may have registered it first). The
//!   address is then verified (the trusted provider said so).
//! * A new user's address is verified only when the provider is trusted with emails and says
//!   the email is verified; otherwise the user proves it with a verification link (needed to
//!   see invitations, and to sign in with a password they set later).
//! * An explicit link (signed in, `link=true`) links the subject to the signed-in user, unless
//!   it belongs to someone else.
//!
//! Before any of that, who may sign in at all: an email (with the shape registration
//! requires) in `AUTH_ALLOWED_EMAIL_DOMAINS` and the provider's `allowedDomains`. A refusal
//! creates nothing.

use uuid::Uuid;
use web_common::email::{self, Email};

use super::settings::ClientSettings;
use super::sign_in::Verified;
use super::state::Identity;
use super::{accounts, text, users};
use crate::error::Error;

/// Who a provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// Its stable id for the user (`sub`, GitHub's user id).
    pub subject: String,
    /// Their email, as the provider gave it.
    pub email: Option<String>,
    /// Whether the provider says it verified the email.
    pub email_verified: bool,
    /// Their name, as the provider gave it.
    pub name: Option<String>,
    /// The provider's session id (OIDC `sid`).
    pub sid: Option<String>,
}

/// Why a provider identity does not sign anyone in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not allowed: no usable email, a domain not allowed, sign-up off (`AccessDenied`).
    #[error("access denied: {0}")]
    AccessDenied(&'static str),
    /// The email belongs to a user this identity may not take over, or the subject belongs to
    /// another user (`OAuthAccountNotLinked`).
    #[error("the account is not linked: {0}")]
    NotLinked(&'static str),
}

/// The email of `who`, when the sign-in rules let it in at all.
fn admitted(
    identity: &Identity,
    client: &ClientSettings,
    who: &External,
) -> Result<Email, Refusal> {
    let email = who
        .email
        .as_deref()
        .and_then(|raw| email::parse(raw).ok())
        .ok_or(Refusal::AccessDenied("the provider gave no usable email"))?;
    let domain = email.domain();
    for allowed in [&identity.allowed_email_domains, &client.allowed_domains] {
        if !allowed.is_empty() && !allowed.iter().any(|a| a == domain) {
            return Err(Refusal::AccessDenied("the email's domain is not allowed"));
        }
    }
    Ok(email)
}

/// The name to show for `who`: the provider's, cleaned, else the email's local part.
fn display_name(who: &External, email: &Email) -> String {
    let typed = email.as_typed();
    who.name
        .as_deref()
        .and_then(text::clean_name)
        .or_else(|| text::clean_name(typed.split('@').next().unwrap_or(typed)))
        .unwrap_or_else(|| "User".to_owned())
}

/// The user a sign-in through `client` as `who` signs in, by the rules above.
pub async fn sign_in(
    identity: &Identity,
    client: &ClientSettings,
    who: &External,
) -> Result<Result<Verified, Refusal>, Error> {
    let email = match admitted(identity, client, who) {
        Ok(email) => email,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let provider = client.id.as_str();
    let mut tx = identity.users.begin().await?;
    if let Some(user) = accounts::owner(&mut *tx, provider, &who.subject).await? {
        accounts::touch(&mut *tx, provider, &who.subject, Some(email.as_typed())).await?;
        let account = users::find_by_id(&mut *tx, user).await?;
        tx.commit().await?;
        let account = account.ok_or(sqlx::Error::RowNotFound)?;
        return Ok(Ok(account.into()));
    }
    match users::find_by_email(&mut *tx, email.key()).await? {
        None if !client.allow_sign_up => Ok(Err(Refusal::AccessDenied(
            "sign-up through this provider is off",
        ))),
        None => {
            let name = display_name(who, &email);
            // The address is proven only by a provider trusted with emails that says so.
            let address = if who.email_verified && client.trust_email {
                users::Address::Verified
            } else {
                users::Address::Unverified
            };
            let id = match users::insert(&mut *tx, &email, &name, None, address).await {
                Ok(id) => id,
                // Registered meanwhile: the next attempt follows the rules for a taken email.
                Err(users::InsertError::DuplicateEmail) => {
                    return Ok(Err(Refusal::NotLinked(
                        "the email was registered meanwhile",
                    )));
                }
                Err(users::InsertError::Database(e)) => return Err(e.into()),
            };
            if !accounts::insert(&mut *tx, provider, &who.subject, id, Some(email.as_typed()))
                .await?
            {
                return Ok(Err(Refusal::NotLinked("the subject was linked meanwhile")));
            }
            tx.commit().await?;
            tracing::info!(user_id = %id, provider, "user created by a provider sign-in");
            Ok(Ok(Verified {
                id,
                email: email.into_typed(),
                name,
            }))
        }
        Some(existing) if who.email_verified && client.trust_email => {
            if !accounts::insert(
                &mut *tx,
                provider,
                &who.subject,
                existing.id,
                Some(email.as_typed()),
            )
            .await?
            {
                return Ok(Err(Refusal::NotLinked("the subject was linked meanwhile")));
            }
            users::set_password(&mut tx, existing.id, None).await?;
            users::mark_verified(&mut *tx, existing.id).await?;
            let unlinked =
                accounts::delete_others(&mut *tx, existing.id, provider, &who.subject).await?;
            let ended = identity.sessions.end_all(tx, existing.id).await?;
            tracing::warn!(
                user_id = %existing.id,
                provider,
                sessions_ended = ended,
                providers_unlinked = unlinked,
                "provider linked by its verified email: the password and the other links are removed, the other sessions ended"
            );
            Ok(Ok(existing.into()))
        }
        Some(_) => Ok(Err(Refusal::NotLinked(
            "a user has this email and the provider's email is unverified or not trusted",
        ))),
    }
}

/// Links `who` at `client` to the signed-in `user` (an explicit link).
pub async fn link(
    identity: &Identity,
    client: &ClientSettings,
    who: &External,
    user: Uuid,
) -> Result<Result<(), Refusal>, Error> {
    let email = match admitted(identity, client, who) {
        Ok(email) => email,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let provider = client.id.as_str();
    let mut tx = identity.users.begin().await?;
    match accounts::owner(&mut *tx, provider, &who.subject).await? {
        Some(owner) if owner != user => {
            return Ok(Err(Refusal::NotLinked(
                "the subject belongs to another user",
            )));
        }
        Some(_) => {
            accounts::touch(&mut *tx, provider, &who.subject, Some(email.as_typed())).await?
        }
        None => {
            if !accounts::insert(
                &mut *tx,
                provider,
                &who.subject,
                user,
                Some(email.as_typed()),
            )
            .await?
            {
                return Ok(Err(Refusal::NotLinked("the subject was linked meanwhile")));
            }
        }
    }
    tx.commit().await?;
    tracing::info!(user_id = %user, provider, "provider linked");
    Ok(Ok(()))
}
