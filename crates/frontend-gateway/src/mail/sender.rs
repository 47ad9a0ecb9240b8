//! The background sender: turns every `mail_outbox` row into a delivered message.
//!
//! It wakes on `LISTEN mail_outbox` (the notification [`web_common::outbox::enqueue`] sends on
//! commit, heard through the process's one listener, [`web_common::notify::Hub`]) and, as a
//! fallback for a missed notification or a lost connection, every
//! [`poll_interval`](MailSettings::poll_interval) and whenever the next retry is due. Each pass
//! claims due rows one at a time (`FOR UPDATE SKIP LOCKED`, with a lease in `locked_until`), so
//! any number of gateway instances may run it and none sends a row another holds; a row whose
//! holder died mid-send is taken again once its lease is over.
//!
//! A sent row gets `sent_at`, its `data` emptied (its links may hold single-use tokens) and its
//! lease cleared. A failure (the SMTP server down or refusing, a row that cannot be rendered)
//! counts an attempt, records `last_error` and waits before the next: the base back-off,
//! doubling with each attempt, at most [`max_backoff`](MailSettings::max_backoff), plus up to
//! a tenth of it at random (so instances do not retry in step). A row is given up (logged as an
//! error, `next_attempt_at` set to `infinity`, `data` emptied) after
//! [`PERMANENT_ATTEMPTS`] attempts that all ended in a permanent refusal (an SMTP 5xx, a row
//! that cannot be rendered), or when it is still unsent [`GIVE_UP_AFTER`] after it was written.
//!
//! Every message carries `Message-ID: <{row id}@{domain of MAIL_FROM}>`, the same on every
//! attempt, so a retry after a lost answer is recognisable as the same message.
//!
//! At shutdown (once [`Shutdown::stopped`] resolves) the sender finishes the row it holds (its
//! attempt is bounded by the SMTP timeout) and records the outcome, then claims nothing more:
//! no message is cut mid-send, and no row stays leased by an instance that is gone.
//!
//! Without `SMTP_URL` (development only) each message is written to the log at info level
//! instead (recipient, subject, plain-text body with its links) and counted as sent.
//!
//! Sent rows, and rows given up, are deleted [`KEEP`] after they were sent (written), by one
//! instance at a time ([`web_common::db::Job::MailCleanUp`]).

use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;
use web_common::db::Job;
use web_common::notify::{Hub, Notice};
use web_common::outbox::{CHANNEL, MailKind};
use web_common::shutdown::Shutdown;

use super::settings::MailSettings;
use super::templates;
use crate::origin::PublicOrigin;

/// Attempts ending in a permanent refusal after which a row is given up.
pub const PERMANENT_ATTEMPTS: i32 = 5;
/// How long after it was written an unsent row is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(2 * 86_400);
/// How long sent (and given up) rows are kept.
pub const KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How often old rows are deleted.
const UPKEEP_EVERY: Duration = Duration::from_secs(600);
/// The shortest sleep between two passes (no spinning on a row that is due again at once).
const MIN_SLEEP: Duration = Duration::from_millis(20);
/// The longest `last_error` kept.
const MAX_ERROR_LEN: usize = 1000;

/// The sender of one gateway instance.
pub struct Sender {
    pool: PgPool,
    /// The outbox's notifications (from the process's one listener).
    notices: broadcast::Receiver<Notice>,
    settings: MailSettings,
    origin: PublicOrigin,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A claimed row.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    recipient: String,
    data: Value,
    attempts: i32,
    /// Seconds since the row was written.
    age: f64,
}

/// How one attempt ended.
enum Outcome {
    Sent,
    Failed { reason: String, permanent: bool },
}

impl Sender {
    /// A sender on `pool`, woken by `hub`'s notifications of the outbox; connects to nothing
    /// until [`run`](Self::run).
    pub fn new(pool: PgPool, hub: &Hub, settings: MailSettings, origin: PublicOrigin) -> Self {
        let transport = settings
            .smtp
            .as_ref()
            .map(|url| url.transport(settings.smtp_timeout));
        Self {
            pool,
            notices: hub.subscribe(CHANNEL),
            settings,
            origin,
            transport,
        }
    }

    /// Sends due messages until `shutdown` stops the service (run it next to the server); the
    /// message being sent then is finished and recorded first.
    pub async fn run(mut self, shutdown: Shutdown) {
        match &self.settings.smtp {
            Some(url) => {
                tracing::info!(smtp = %url.redacted(), from = %self.settings.from, "mail goes over SMTP")
            }
            None => tracing::warn!(
                "SMTP_URL is not set: mail is written to the log instead of being sent"
            ),
        }
        let mut upkept: Option<Instant> = None;
        let stopped = shutdown.stopped();
        let mut stopped = std::pin::pin!(stopped);
        loop {
            if shutdown.is_stopping() {
                break;
            }
            self.deliver_due(&shutdown).await;
            if upkept.is_none_or(|at| at.elapsed() >= UPKEEP_EVERY) {
                self.delete_old().await;
                upkept = Some(Instant::now());
            }
            let sleep = self.until_next_due().await;
            // A notification (or word that some were missed, or that this sender lagged behind
            // them) wakes it at once; the poll covers the rest.
            tokio::select! {
                notice = self.notices.recv() => {
                    if notice == Err(broadcast::error::RecvError::Closed) {
                        tokio::select! {
                            () = tokio::time::sleep(sleep) => {}
                            () = &mut stopped => break,
                        }
                    }
                }
                () = tokio::time::sleep(sleep) => {}
                () = &mut stopped => break,
            }
        }
    }

    /// How long to sleep: until the next retry or lease end, at most the poll interval.
    async fn until_next_due(&self) -> Duration {
        let next: Result<Option<f64>, _> = sqlx::query_scalar(
            "SELECT extract(epoch FROM min(greatest(next_attempt_at, \
                    coalesce(locked_until, next_attempt_at))) - now())::float8 \
             FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at < 'infinity'",
        )
        .fetch_one(&self.pool)
        .await;
        let poll = self.settings.poll_interval;
        match next {
            Ok(Some(secs)) if secs.is_finite() => {
                Duration::from_secs_f64(secs.max(0.0)).clamp(MIN_SLEEP, poll.max(MIN_SLEEP))
            }
            _ => poll,
        }
    }

    /// Claims and sends due rows until none is left, or the service stops.
    async fn deliver_due(&self, shutdown: &Shutdown) {
        while !shutdown.is_stopping() {
            match self.claim().await {
                Ok(Some(row)) => self.attempt(row).await,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the mail outbox");
                    return;
                }
            }
        }
    }

    /// One due row nobody holds, now held by this instance for a lease.
    async fn claim(&self) -> Result<Option<Row>, sqlx::Error> {
        let lease = self.settings.smtp_timeout + Duration::from_secs(30);
        sqlx::query_as(
            "UPDATE mail_outbox SET locked_until = now() + make_interval(secs => $1) \
             WHERE id = (SELECT id FROM mail_outbox \
                         WHERE sent_at IS NULL AND next_attempt_at <= now() \
                           AND (locked_until IS NULL OR locked_until < now()) \
                         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, recipient, data, attempts, \
                       extract(epoch FROM now() - created_at)::float8 AS age",
        )
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
    }

    #[tracing::instrument(skip_all, fields(id = %row.id, kind = %row.kind, attempt = row.attempts + 1))]
    async fn attempt(&self, row: Row) {
        let outcome = self.deliver(&row).await;
        let recorded = match outcome {
            Outcome::Sent => self.record_sent(row.id).await,
            Outcome::Failed { reason, permanent } => {
                self.record_failure(&row, &reason, permanent).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the row is tried again (with the same Message-ID).
            tracing::warn!(error = %e, "cannot record the outcome of a mail attempt");
        }
    }

    async fn deliver(&self, row: &Row) -> Outcome {
        let failed = |reason: String| Outcome::Failed {
            reason,
            permanent: true,
        };
        let Some(kind) = MailKind::parse(&row.kind) else {
            return failed(format!("unknown kind {:?}", row.kind));
        };
        let rendered = match templates::render(kind, &row.data, &self.origin) {
            Ok(r) => r,
            Err(e) => return failed(format!("cannot render: {e}")),
        };
        let Some(transport) = &self.transport else {
            tracing::info!(
                to = %row.recipient,
                subject = %rendered.subject,
                "mail (not sent: SMTP_URL is not set)\n{}",
                rendered.text
            );
            return Outcome::Sent;
        };
        let to: Mailbox = match row.recipient.trim().parse() {
            Ok(address) => Mailbox::new(None, address),
            Err(e) => return failed(format!("the recipient is not an address ({e})")),
        };
        let message = Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(message_id(row.id, self.settings.domain())))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ));
        let message = match message {
            Ok(m) => m,
            Err(e) => return failed(format!("cannot build the message: {e}")),
        };
        match tokio::time::timeout(self.settings.smtp_timeout, transport.send(message)).await {
            Ok(Ok(_)) => {
                tracing::info!("mail sent");
                Outcome::Sent
            }
            Ok(Err(e)) => Outcome::Failed {
                reason: format!("SMTP: {e}"),
                permanent: e.is_permanent(),
            },
            Err(_) => Outcome::Failed {
                reason: format!("SMTP: no answer within {:?}", self.settings.smtp_timeout),
                permanent: false,
            },
        }
    }

    async fn record_sent(&self, id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE mail_outbox SET sent_at = now(), data = '{}', locked_until = NULL, \
                    attempts = attempts + 1 \
             WHERE id = $1 AND sent_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        row: &Row,
        reason: &str,
        permanent: bool,
    ) -> Result<(), sqlx::Error> {
        let attempts = row.attempts.saturating_add(1);
        let give_up =
            (permanent && attempts >= PERMANENT_ATTEMPTS) || row.age >= GIVE_UP_AFTER.as_secs_f64();
        let delay = backoff(
            attempts,
            self.settings.base_backoff,
            self.settings.max_backoff,
        );
        let reason: String = reason.chars().take(MAX_ERROR_LEN).collect();
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, locked_until = NULL, \
                    next_attempt_at = CASE WHEN $3 THEN 'infinity' \
                                           ELSE now() + make_interval(secs => $4) END, \
                    data = CASE WHEN $3 THEN '{}' ELSE data END \
             WHERE id = $1 AND sent_at IS NULL",
        )
        .bind(row.id)
        .bind(&reason)
        .bind(give_up)
        .bind(delay.as_secs_f64())
        .execute(&self.pool)
        .await?;
        if give_up {
            tracing::error!(error = %reason, attempts, "mail given up: it will not be sent");
        } else {
            tracing::warn!(error = %reason, permanent, retry_in = ?delay, "mail not sent; retrying later");
        }
        Ok(())
    }

    async fn delete_old(&self) {
        // Once per cluster: while another instance cleans up, this one skips its turn.
        let mut tx = match Job::MailCleanUp.begin(&self.pool).await {
            Ok(Some(tx)) => tx,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not clean up old mail outbox rows");
                return;
            }
        };
        let deleted = sqlx::query(
            "DELETE FROM mail_outbox \
             WHERE (sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)) \
                OR (sent_at IS NULL AND next_attempt_at = 'infinity' \
                    AND created_at < now() - make_interval(secs => $1))",
        )
        .bind(KEEP.as_secs_f64())
        .execute(&mut *tx)
        .await;
        let deleted = match deleted {
            Ok(done) => tx.commit().await.map(|()| done),
            Err(e) => Err(e),
        };
        match deleted {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(
                    deleted = done.rows_affected(),
                    "old mail outbox rows deleted"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete old mail outbox rows"),
        }
    }
}

/// `<{id}@{domain}>`: the same for every attempt at one row.
pub fn message_id(id: Uuid, domain: &str) -> String {
    format!("<{id}@{domain}>")
}

/// The wait after the `attempts`-th failure: `base` doubled `attempts - 1` times, at most
/// `max`, plus up to a tenth more at random.
pub fn backoff(attempts: i32, base: Duration, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let wait = base.saturating_mul(1 << doublings).min(max);
    let jitter = rand::thread_rng().gen_range(0.0..=0.1);
    wait + wait.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_the_base_up_to_the_cap_with_a_little_jitter() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(600));
        for (attempts, expected) in [(1, 5), (2, 10), (3, 20), (8, 600), (9, 600), (500, 600)] {
            let wait = backoff(attempts, base, max);
            let expected = Duration::from_secs(expected);
            assert!(
                wait >= expected && wait <= expected + expected / 10,
                "{attempts}: {wait:?}"
            );
        }
    }

    #[test]
    fn the_message_id_is_the_row_id_at_the_senders_domain() {
        let id = Uuid::nil();
        assert_eq!(
            message_id(id, "example.com"),
            "<00000000-0000-0000-0000-000000000000@example.com>"
        );
    }
}
