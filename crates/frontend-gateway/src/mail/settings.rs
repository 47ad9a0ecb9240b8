//! The mail settings: `SMTP_URL` (where messages go; without it, in development, they are
//! written to the log) and `MAIL_FROM` (who they come from), plus the sender's timings, which
//! are fixed here and shortened by tests.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use web_common::env::{AppEnv, ConfigError, Source};

use crate::origin::PublicOrigin;

/// How the gateway sends the outbox's messages.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`: the SMTP server, or `None` (development only) to log each message instead.
    pub smtp: Option<SmtpUrl>,
    /// `MAIL_FROM` (default `Gateway <no-reply@{host of PUBLIC_ORIGIN}>`, or
    /// `no-reply@localhost` when that host is not a domain name): the `From` of every message;
    /// its domain is also the right-hand side of every `Message-ID`.
    pub from: Mailbox,
    /// How often the outbox is looked at when no notification comes (5 s).
    pub poll_interval: Duration,
    /// The wait before the second attempt; it doubles with each failure up to
    /// [`max_backoff`](Self::max_backoff) (5 s).
    pub base_backoff: Duration,
    /// The longest wait between two attempts (10 minutes).
    pub max_backoff: Duration,
    /// How long one SMTP delivery may take, connecting included (30 s).
    pub smtp_timeout: Duration,
}

impl MailSettings {
    /// Reads `SMTP_URL` and `MAIL_FROM`; production refuses to start without `SMTP_URL`.
    pub fn from_source(
        src: &impl Source,
        app_env: AppEnv,
        origin: &PublicOrigin,
    ) -> Result<Self, ConfigError> {
        let smtp = match src.get("SMTP_URL") {
            Some(url) => Some(url.parse::<SmtpUrl>()?),
            None if app_env.is_production() => {
                return Err(ConfigError::Missing {
                    name: "SMTP_URL",
                    hint: "production sends mail (verification, password reset, invitations) over \
                           SMTP: set it to the server, e.g. smtp://user:password@mail.example.com:587?tls=required \
                           or smtps://user:password@mail.example.com:465",
                });
            }
            None => None,
        };
        let from = match src.get("MAIL_FROM") {
            Some(from) => from.trim().parse::<Mailbox>().map_err(|e| {
                ConfigError::invalid(
                    "MAIL_FROM",
                    format!("not a mailbox like `Name <address@example.com>` ({e})"),
                )
            })?,
            None => default_from(origin),
        };
        Ok(Self {
            smtp,
            from,
            poll_interval: Duration::from_secs(5),
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            smtp_timeout: Duration::from_secs(30),
        })
    }

    /// The domain of [`from`](Self::from): the right-hand side of every `Message-ID`.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// `Gateway <no-reply@{host}>` for the origin's host when that makes an address, else
/// `Gateway <no-reply@localhost>`.
fn default_from(origin: &PublicOrigin) -> Mailbox {
    let host = url::Url::parse(origin.as_str())
        .ok()
        .and_then(|u| u.domain().map(str::to_owned));
    host.and_then(|host| format!("Gateway <no-reply@{host}>").parse().ok())
        .unwrap_or_else(|| {
            "Gateway <no-reply@localhost>"
                .parse()
                .expect("the fallback sender is a mailbox")
        })
}

/// `SMTP_URL`: `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
/// `smtps://...` (TLS from the first byte). Checked when read; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The transport for this URL (connects only when a message is sent).
    pub fn transport(&self, timeout: Duration) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.0)
            .expect("the URL was checked when it was read")
            .timeout(Some(timeout))
            .build()
    }

    /// The URL with its password (if any) replaced by `***`: for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.into()
            }
            Ok(url) => url.into(),
            Err(_) => "(not a URL)".to_owned(),
        }
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SmtpUrl").field(&self.redacted()).finish()
    }
}

impl std::str::FromStr for SmtpUrl {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConfigError::invalid("SMTP_URL", reason);
        let s = s.trim();
        // Our own checks first, so that no error of the parser (which might quote the URL, and
        // so the password) is ever shown.
        let url = url::Url::parse(s).map_err(|_| {
            invalid("not a URL like smtp://host:587?tls=required or smtps://host:465")
        })?;
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err(invalid("must start with smtp:// or smtps://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("has no host"));
        }
        for (key, value) in url.query_pairs() {
            if key != "tls" {
                return Err(invalid("the only query parameter understood is `tls`"));
            }
            if !matches!(value.as_ref(), "required" | "opportunistic") {
                return Err(invalid("`tls` must be `required` or `opportunistic`"));
            }
        }
        if AsyncSmtpTransport::<Tokio1Executor>::from_url(s).is_err() {
            return Err(invalid(
                "not usable as an SMTP server (check the credentials' percent-encoding)",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], app_env: AppEnv) -> Result<MailSettings, ConfigError> {
        let origin: PublicOrigin = "https://app.example".parse().unwrap();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        MailSettings::from_source(&vars, app_env, &origin)
    }

    #[test]
    fn development_logs_instead_of_sending_and_mails_from_the_origins_domain() {
        let s = read(&[], AppEnv::Development).unwrap();
        assert!(s.smtp.is_none());
        assert_eq!(s.from.to_string(), "Gateway <no-reply@app.example>");
        assert_eq!(s.domain(), "app.example");
        let local: PublicOrigin = "http://127.0.0.1:3000".parse().unwrap();
        let s =
            MailSettings::from_source(&Vec::<(String, String)>::new(), AppEnv::Development, &local)
                .unwrap();
        assert_eq!(s.from.to_string(), "Gateway <no-reply@localhost>");
    }

    #[test]
    fn production_refuses_to_start_without_an_smtp_url() {
        let err = read(&[], AppEnv::Production).unwrap_err();
        assert!(err.to_string().contains("SMTP_URL"), "{err}");
        let s = read(
            &[
                ("SMTP_URL", "smtps://mailer:p%40ss@mail.example:465"),
                ("MAIL_FROM", "Example <hello@example.com>"),
            ],
            AppEnv::Production,
        )
        .unwrap();
        assert_eq!(s.domain(), "example.com");
        assert!(s.smtp.is_some());
    }

    #[test]
    fn bad_urls_and_senders_are_refused_by_name_without_echoing_a_password() {
        for bad in [
            "mail.example:25",
            "http://mail.example",
            "smtp://",
            "smtp://u:hunter2secret@mail.example?tls=maybe",
            "smtp://u:hunter2secret@mail.example?tls=required&x=1",
            "smtp://u:hunter2secret@:25",
        ] {
            let err = read(&[("SMTP_URL", bad)], AppEnv::Development).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("SMTP_URL"), "{bad}: {text}");
            assert!(!text.contains("hunter2secret"), "{bad}: {text}");
        }
        for bad in ["nobody", "Name <>", "a@b@c"] {
            let err = read(&[("MAIL_FROM", bad)], AppEnv::Development).unwrap_err();
            assert!(err.to_string().starts_with("MAIL_FROM"), "{bad}: {err}");
        }
    }

    #[test]
    fn debug_output_never_contains_the_smtp_password() {
        let s = read(
            &[(
                "SMTP_URL",
                "smtp://mailer:hunter2secret@mail.example:587?tls=required",
            )],
            AppEnv::Development,
        )
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(debug.contains("mail.example"), "{debug}");
    }
}
