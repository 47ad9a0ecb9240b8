//! One template per [`MailKind`]: the row's data in, a subject, a plain-text body and an HTML
//! body out. Both bodies are rendered from the same blocks (paragraphs and links), so they say
//! the same thing; every value is escaped in the HTML, and every link is a path made absolute
//! on `PUBLIC_ORIGIN` (a link that is not a path on it is refused, so a row can never point a
//! reader elsewhere). A missing or ill-typed field is a [`TemplateError`] for that row, never a
//! panic.

use std::fmt::Write as _;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use web_common::outbox::MailKind;

use crate::origin::PublicOrigin;
use crate::pages::escape_html as escape;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject (one line).
    pub subject: String,
    /// The plain-text body; its links are written out in full.
    pub text: String,
    /// The HTML body (a whole document).
    pub html: String,
}

/// Why a row could not be rendered (it names the field, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

/// A piece of a message.
enum Block {
    /// A paragraph of text.
    Para(String),
    /// A link: its label (the HTML's link text) and its absolute URL.
    Link { label: &'static str, url: String },
}

/// Renders a message of `kind` from `data` (the row's `data` object).
pub fn render(
    kind: MailKind,
    data: &Value,
    origin: &PublicOrigin,
) -> Result<Rendered, TemplateError> {
    let data = Data { data, origin };
    let (subject, blocks) = match kind {
        MailKind::VerifyEmail => (
            "Confirm your email address".to_owned(),
            vec![
                data.greeting()?,
                Block::Para("Confirm your email address to finish creating your account:".into()),
                data.link("Confirm my email address", "link")?,
                Block::Para(
                    "If you did not create an account, ignore this message: nothing happens \
                     without the link."
                        .into(),
                ),
            ],
        ),
        MailKind::AccountExists => (
            "You already have an account".to_owned(),
            vec![
                data.greeting()?,
                Block::Para(
                    "Someone (perhaps you) tried to register with this address, but it already \
                     has an account. Sign in instead:"
                        .into(),
                ),
                data.link("Sign in", "signin_link")?,
                Block::Para("Forgotten your password? Choose a new one:".into()),
                data.link("Reset my password", "reset_link")?,
                Block::Para("If it was not you, ignore this message: nothing has changed.".into()),
            ],
        ),
        MailKind::PasswordReset => (
            "Reset your password".to_owned(),
            vec![
                data.greeting()?,
                Block::Para(
                    "Someone (perhaps you) asked to reset your password. Choose a new one:".into(),
                ),
                data.link("Choose a new password", "link")?,
                Block::Para(
                    "If you did not ask, ignore this message: your password stays as it is.".into(),
                ),
            ],
        ),
        MailKind::SignInLink => (
            "Your sign-in link".to_owned(),
            vec![
                Block::Para("Sign in with this link (it works once):".into()),
                data.link("Sign in", "link")?,
                Block::Para("If you did not ask to sign in, ignore this message.".into()),
            ],
        ),
        MailKind::Invitation => {
            let workspace = data.string("workspace")?;
            let role = data.string("role")?;
            let expires = data.time("expires_at")?;
            let subject = match data.optional("inviter")? {
                Some(inviter) => format!("{inviter} invited you to {workspace}"),
                None => format!("You are invited to {workspace}"),
            };
            (
                subject.clone(),
                vec![
                    Block::Para(format!(
                        "{subject} as {role}. The invitation is open until {expires}; accept or \
                         decline it on your invitations page:"
                    )),
                    data.link("See my invitations", "link")?,
                    Block::Para(
                        "Sign in (or create an account) with this email address to see it. If you \
                         do not know this workspace, ignore this message."
                            .into(),
                    ),
                ],
            )
        }
    };
    let subject = one_line(&subject);
    Ok(Rendered {
        text: text(&blocks),
        html: html(&subject, &blocks),
        subject,
    })
}

/// The row's data, read field by field.
struct Data<'a> {
    data: &'a Value,
    origin: &'a PublicOrigin,
}

impl Data<'_> {
    /// A required string.
    fn string(&self, name: &str) -> Result<String, TemplateError> {
        match self.data.get(name) {
            Some(Value::String(s)) => Ok(one_line(s)),
            None | Some(Value::Null) => Err(TemplateError(format!("data.{name} is missing"))),
            Some(_) => Err(TemplateError(format!("data.{name} is not a string"))),
        }
    }

    /// A string that may be null, absent or empty.
    fn optional(&self, name: &str) -> Result<Option<String>, TemplateError> {
        match self.data.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    /// An RFC 3339 time, written for people (`2026-12-14 09:30 UTC`).
    fn time(&self, name: &str) -> Result<String, TemplateError> {
        let raw = self.string(name)?;
        let at = OffsetDateTime::parse(&raw, &Rfc3339)
            .map_err(|_| TemplateError(format!("data.{name} is not an RFC 3339 time")))?
            .to_offset(time::UtcOffset::UTC);
        Ok(format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ))
    }

    /// "Hello {name}," (the name is optional: "Hello,").
    fn greeting(&self) -> Result<Block, TemplateError> {
        Ok(Block::Para(match self.optional("name")? {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_owned(),
        }))
    }

    /// A link from the path in field `name`, absolute on the public origin.
    fn link(&self, label: &'static str, name: &str) -> Result<Block, TemplateError> {
        let path = match self.data.get(name) {
            Some(Value::String(s)) => s,
            None | Some(Value::Null) => {
                return Err(TemplateError(format!("data.{name} is missing")));
            }
            Some(_) => return Err(TemplateError(format!("data.{name} is not a string"))),
        };
        let is_path = path.starts_with('/')
            && !path.starts_with("//")
            && !path
                .chars()
                .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
        if !is_path {
            return Err(TemplateError(format!(
                "data.{name} is not a path on the public origin"
            )));
        }
        Ok(Block::Link {
            label,
            url: self.origin.url(path),
        })
    }
}

/// `s` with line breaks and other control characters turned into spaces (a subject, a name).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Para(p) => out.push_str(p),
            Block::Link { url, .. } => out.push_str(url),
        }
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn html(subject: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.5; max-width: 36em\">\n",
        escape(subject)
    );
    for block in blocks {
        match block {
            Block::Para(p) => {
                let _ = writeln!(out, "<p>{}</p>", escape(p));
            }
            Block::Link { label, url } => {
                let url = escape(url);
                let _ = writeln!(
                    out,
                    "<p><a href=\"{url}\" style=\"font-weight: bold\">{}</a><br>\
                     <small>or paste this address into your browser: {url}</small></p>",
                    escape(label)
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn origin() -> PublicOrigin {
        "https://app.example".parse().unwrap()
    }

    fn data(kind: MailKind) -> Value {
        match kind {
            MailKind::VerifyEmail | MailKind::PasswordReset => {
                json!({"name": "Ada", "link": "/api/auth/x?token=abc"})
            }
            MailKind::AccountExists => json!({
                "name": "Ada", "signin_link": "/signin", "reset_link": "/reset-password"
            }),
            MailKind::SignInLink => json!({"link": "/api/auth/signin-link?token=abc"}),
            MailKind::Invitation => json!({
                "workspace": "Acme", "inviter": "Bob", "role": "member",
                "expires_at": "2026-12-14T09:30:00Z", "link": "/invitations"
            }),
        }
    }

    #[test]
    fn every_kind_renders_with_absolute_links_in_both_bodies() {
        for kind in MailKind::ALL {
            let r = render(kind, &data(kind), &origin()).unwrap();
            assert!(!r.subject.is_empty(), "{kind:?}");
            assert!(
                r.text.contains("https://app.example/"),
                "{kind:?}: {}",
                r.text
            );
            assert!(
                r.html.contains("href=\"https://app.example/"),
                "{kind:?}: {}",
                r.html
            );
        }
        let r = render(MailKind::Invitation, &data(MailKind::Invitation), &origin()).unwrap();
        assert_eq!(r.subject, "Bob invited you to Acme");
        assert!(r.text.contains("2026-12-14 09:30 UTC"), "{}", r.text);
        assert!(r.text.contains("as member"), "{}", r.text);
    }

    #[test]
    fn values_are_escaped_in_html_and_kept_on_one_line_in_the_subject() {
        let data = json!({
            "workspace": "<script>alert(1)</script>\r\nBcc: x@evil",
            "inviter": null, "role": "admin", "expires_at": "2026-12-14T10:30:00+01:00",
            "link": "/invitations?a=1&b=\"2\""
        });
        let r = render(MailKind::Invitation, &data, &origin()).unwrap();
        assert!(
            !r.subject.contains('\n') && !r.subject.contains('\r'),
            "{}",
            r.subject
        );
        assert!(r.subject.starts_with("You are invited to"), "{}", r.subject);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        assert!(r.html.contains("a=1&amp;b=&quot;2&quot;"), "{}", r.html);
        assert!(r.text.contains("2026-12-14 09:30 UTC"), "{}", r.text);
    }

    #[test]
    fn a_missing_or_ill_typed_field_or_a_foreign_link_is_an_error_naming_the_field() {
        let cases = [
            (
                MailKind::VerifyEmail,
                json!({"name": "A"}),
                "data.link is missing",
            ),
            (
                MailKind::VerifyEmail,
                json!({"name": "A", "link": 7}),
                "data.link is not a string",
            ),
            (
                MailKind::PasswordReset,
                json!({"name": 1, "link": "/r"}),
                "data.name is not a string",
            ),
            (
                MailKind::SignInLink,
                json!({"link": "https://evil.example/x"}),
                "data.link is not a path on the public origin",
            ),
            (
                MailKind::SignInLink,
                json!({"link": "//evil.example/x"}),
                "not a path",
            ),
            (
                MailKind::AccountExists,
                json!({"signin_link": "/s"}),
                "data.reset_link is missing",
            ),
            (
                MailKind::Invitation,
                json!({"workspace": "W", "role": "member", "expires_at": "soon", "link": "/i"}),
                "data.expires_at is not an RFC 3339 time",
            ),
        ];
        for (kind, data, expected) in cases {
            let err = render(kind, &data, &origin()).unwrap_err();
            assert!(err.to_string().contains(expected), "{kind:?} {data}: {err}");
        }
        // A name is optional.
        let r = render(MailKind::VerifyEmail, &json!({"link": "/v"}), &origin()).unwrap();
        assert!(r.text.starts_with("Hello,\n"), "{}", r.text);
    }
}
