//! The mail wing: every `mail_outbox` row (written by either service with
//! [`web_common::outbox::enqueue`]) becomes a delivered message.
//!
//! * [`settings`]: `SMTP_URL` and `MAIL_FROM` ([`MailSettings`]);
//! * [`templates`]: one template per [`web_common::outbox::MailKind`], its links made
//!   absolute on `PUBLIC_ORIGIN`;
//! * [`sender`]: the background [`Sender`] that claims due rows, sends them over SMTP, retries
//!   with back-off and deletes old rows.

pub mod sender;
pub mod settings;
pub mod templates;

pub use sender::Sender;
pub use settings::{MailSettings, SmtpUrl};
