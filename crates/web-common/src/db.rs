//! [`Lane`]: Postgres connections for the short reads on a service's hot path.
//!
//! sqlx 0.8's `PgPool` makes a round trip to the server when it hands a connection out
//! (`test_before_acquire`) and, unconditionally, another when the connection comes back (it
//! pings on release to flush whatever a cancelled query left on the wire). For a request that
//! runs one short statement, that is three round trips to Postgres instead of one; `just bench`
//! measured the two pings at about 40% of the backend's throughput.
//!
//! A lane skips both where that is safe:
//! - a connection goes back to the lane only when [`Lane::run`]'s work finished with `Ok`; an
//!   error, or a request dropped mid-statement (the client went away), closes the connection
//!   instead, so nothing half-read is ever handed to the next caller;
//! - a connection that sat idle for [`LaneSettings::check_after`] or more is pinged before it is
//!   used (the server may have restarted or closed it meanwhile; pgbouncer's
//!   `server_check_delay` does the same), and one idle for [`LaneSettings::max_idle`] is closed.
//!
//! What a lane does not do: transactions, or anything that may be retried after an error.
//! Those stay on `PgPool`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The project's migrations (the top-level `migrations/`), embedded in every binary that
/// applies them. Apply them with [`migrate`].
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The periodic jobs that run once per cluster, not once per replica: each is a transaction
/// holding the job's advisory lock ([`Job::begin`]), so while one instance does it, the others
/// skip their turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The gateway's sweep of expired sessions.
    SessionSweep,
    /// The gateway's identity upkeep (expired sign-in flows, logout token ids, mailed links,
    /// the limits' old keys).
    IdentityUpkeep,
    /// The gateway's clean-up of old outbox rows.
    MailCleanUp,
}

impl Job {
    /// The advisory lock's key (fixed, distinct per job).
    fn lock_id(self) -> i64 {
        0x6a6f_6200
            + match self {
                Self::SessionSweep => 1,
                Self::IdentityUpkeep => 2,
                Self::MailCleanUp => 3,
            }
    }

    /// A transaction holding this job's lock, or `None` when another instance holds it (and is
    /// doing the job right now). The lock goes with the transaction.
    pub async fn begin(
        self,
        pool: &sqlx::PgPool,
    ) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(self.lock_id())
            .fetch_one(&mut *tx)
            .await?;
        Ok(mine.then_some(tx))
    }

    /// Holds this job's lock on `conn` until [`Job::release`] (tests: another instance busy
    /// with it).
    pub async fn hold(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(self.lock_id())
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Releases what [`Job::hold`] took.
    pub async fn release(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.lock_id())
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Released migrations whose text was corrected afterwards in SQL comments only (what they do
/// is unchanged), with the SHA-384 of the text they were released with. sqlx records each
/// migration's checksum and refuses a database whose record differs from the embedded text;
/// [`migrate`] brings such a record up to date instead. A test holds each entry to the
/// released text (kept as a fixture) and to "comments only".
pub const REWORDED: &[(i64, &str)] = &[(
    20261127000002,
    "49825e5e8f15b04c203bc41fb659b00fa17afcb2e5116b511bfb0e73d381d9b966737e6be6574775291d77442be1eedb",
)];

/// The migration that adds `users.email_key` (nullable), and the one after it that makes it
/// NOT NULL and unique: [`migrate`] fills the column in between, in Rust (see [`crate::email`]).
pub const EMAIL_KEY_ADDED: i64 = 20261201000002;
/// See [`EMAIL_KEY_ADDED`].
pub const EMAIL_KEY_UNIQUE: i64 = 20261201000003;

/// Why [`migrate`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// sqlx could not apply a migration (or refused the database's record of them).
    #[error(transparent)]
    Migrations(#[from] sqlx::migrate::MigrateError),
    /// `MIGRATE_ON_START=false` and the database lacks migrations this build needs (see
    /// [`check_migrated`]).
    #[error(
        "the database is not migrated: {0}; apply the migrations first (the `migrate` command), \
         or start with MIGRATE_ON_START=true"
    )]
    Behind(String),
    /// A query of [`migrate`]'s own failed.
    #[error("filling users.email_key failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Accounts whose emails are one address once normalised: nothing was filled and the
    /// unique index was not created. Merge or change them, then migrate again.
    #[error("{}", shared_keys_message(.0))]
    SharedEmailKeys(Vec<SharedKey>),
}

/// Accounts whose emails have one [`crate::email::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKey {
    /// The key they share.
    pub key: String,
    /// Each account: `users.id` and `users.email`.
    pub users: Vec<(uuid::Uuid, String)>,
}

fn shared_keys_message(shared: &[SharedKey]) -> String {
    let groups: Vec<String> = shared
        .iter()
        .map(|s| {
            let users: Vec<String> = s
                .users
                .iter()
                .map(|(id, email)| format!("{id} ({email:?})"))
                .collect();
            format!("{:?}: {}", s.key, users.join(", "))
        })
        .collect();
    format!(
        "these accounts have one email once normalised (users.email_key), so it cannot be unique; \
         merge them or change their emails, then migrate again: {}",
        groups.join("; ")
    )
}

/// Applies [`MIGRATOR`]'s migrations: both services at start-up (sqlx serialises concurrent
/// runs with an advisory lock), `migrate`, `seed-demo` and the tests' fresh databases.
///
/// * A database migrated with the released text of a [`REWORDED`] migration has that
///   record's checksum updated first (idempotent, so instances starting together do no harm).
/// * The migrations up to [`EMAIL_KEY_ADDED`] are applied, then every `users.email_key` still
///   NULL is filled with [`crate::email::key`] (one transaction, holding off inserts; only NULL
///   rows, so instances starting together fill once), then the rest. When two accounts share
///   a key, it stops before the unique index with [`MigrateError::SharedEmailKeys`] naming them.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), MigrateError> {
    repair_reworded(pool).await?;
    let until_email_key = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version <= EMAIL_KEY_ADDED)
            .cloned()
            .collect(),
        // The database may already have the later ones; the full run below checks them.
        ignore_missing: true,
        locking: MIGRATOR.locking,
        no_tx: MIGRATOR.no_tx,
    };
    until_email_key.run(pool).await?;
    fill_email_keys(pool).await?;
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// [`migrate`] when `migrate_on_start` (`MIGRATE_ON_START`), else [`check_migrated`]: how both
/// services prepare their database at start-up.
pub async fn migrate_or_check(
    pool: &sqlx::PgPool,
    migrate_on_start: bool,
) -> Result<(), MigrateError> {
    if migrate_on_start {
        migrate(pool).await
    } else {
        check_migrated(pool).await
    }
}

/// Checks, without changing anything, that every migration of [`MIGRATOR`] is applied, and
/// applied completely: for a service started with `MIGRATE_ON_START=false`, whose migrations
/// another process (the `migrate` command) applies. [`MigrateError::Behind`] names what is
/// missing. Migrations the database has and this build does not know are allowed (a newer
/// release migrated it; in a rolling upgrade, instances of the older one still run on it).
/// A [`REWORDED`] migration may carry either of its checksums.
pub async fn check_migrated(pool: &sqlx::PgPool) -> Result<(), MigrateError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Err(MigrateError::Behind(
            "it has no migrations applied (no _sqlx_migrations table)".to_owned(),
        ));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
            .fetch_all(pool)
            .await?;
    let applied: std::collections::HashMap<i64, (bool, Vec<u8>)> = applied
        .into_iter()
        .map(|(version, success, checksum)| (version, (success, checksum)))
        .collect();
    let mut missing = Vec::new();
    for m in MIGRATOR.iter() {
        let Some((success, checksum)) = applied.get(&m.version) else {
            missing.push(format!("{} ({})", m.version, m.description));
            continue;
        };
        if !success {
            return Err(MigrateError::Behind(format!(
                "migration {} ({}) did not finish",
                m.version, m.description
            )));
        }
        let released = REWORDED
            .iter()
            .find(|(v, _)| *v == m.version)
            .and_then(|(_, hex)| hex::decode(hex).ok());
        if checksum[..] != m.checksum[..] && released.as_deref() != Some(&checksum[..]) {
            return Err(MigrateError::Behind(format!(
                "migration {} ({}) was applied from a different text",
                m.version, m.description
            )));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::Behind(format!(
            "{} of {} migrations are not applied: {}",
            missing.len(),
            MIGRATOR.iter().count(),
            missing.join(", ")
        )))
    }
}

async fn repair_reworded(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(pool)
            .await?;
    if recorded.is_none() {
        return Ok(());
    }
    for (version, released) in REWORDED {
        let Some(current) = MIGRATOR.iter().find(|m| m.version == *version) else {
            continue;
        };
        let released = hex::decode(released).unwrap_or_default();
        sqlx::query(
            "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
        )
        .bind(&current.checksum[..])
        .bind(version)
        .bind(released)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Fills the NULL `users.email_key`s, unless [`EMAIL_KEY_UNIQUE`] is applied (the column is
/// then NOT NULL, and later migrations may have changed it).
async fn fill_email_keys(pool: &sqlx::PgPool) -> Result<(), MigrateError> {
    let mut tx = pool.begin().await?;
    // Self-conflicting: a second instance waits here, then finds the keys filled; inserts
    // wait too, so no row escapes the check below.
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let unique: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1)")
            .bind(EMAIL_KEY_UNIQUE)
            .fetch_one(&mut *tx)
            .await?;
    if unique {
        return Ok(());
    }
    let rows: Vec<(uuid::Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT id, email, email_key FROM users ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
    let mut by_key: std::collections::BTreeMap<String, Vec<(uuid::Uuid, String)>> =
        std::collections::BTreeMap::new();
    let (mut ids, mut keys) = (Vec::new(), Vec::new());
    for (id, email, stored) in rows {
        let key = match stored {
            Some(key) => key,
            None => {
                let key = crate::email::key(&email);
                ids.push(id);
                keys.push(key.clone());
                key
            }
        };
        by_key.entry(key).or_default().push((id, email));
    }
    let shared: Vec<SharedKey> = by_key
        .into_iter()
        .filter(|(_, users)| users.len() > 1)
        .map(|(key, users)| SharedKey { key, users })
        .collect();
    if !shared.is_empty() {
        return Err(MigrateError::SharedEmailKeys(shared));
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE users SET email_key = v.key \
             FROM UNNEST($1::uuid[], $2::text[]) AS v(id, key) \
             WHERE users.id = v.id AND users.email_key IS NULL",
        )
        .bind(&ids)
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        tracing::info!(users = ids.len(), "filled users.email_key");
    }
    tx.commit().await?;
    Ok(())
}

/// How a [`Lane`] sizes and checks its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneSettings {
    /// The most connections open at once (each one a Postgres backend process).
    pub max_connections: u32,
    /// How long a caller may wait for a connection (all busy, or connecting) before
    /// `sqlx::Error::PoolTimedOut`.
    pub acquire_timeout: Duration,
    /// An idle connection older than this is pinged before it is handed out.
    pub check_after: Duration,
    /// An idle connection older than this is closed instead of handed out.
    pub max_idle: Duration,
}

impl LaneSettings {
    /// Defaults for `max_connections` connections: a 5 s acquire timeout (the default of
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`), a ping after 1 s idle, closed after 10 minutes idle.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            check_after: Duration::from_secs(1),
            max_idle: Duration::from_secs(600),
        }
    }
}

/// A pool of Postgres connections for single short reads; cheap to clone (shared).
#[derive(Clone)]
pub struct Lane {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    settings: LaneSettings,
    permits: Arc<Semaphore>,
    /// Most recently parked last: handed out first, warm and least likely to be stale.
    idle: Mutex<Vec<Parked>>,
    /// Callers waiting for a permit (reported by [`Lane::state`]).
    waiting: AtomicUsize,
}

/// Counts a caller waiting for a permit while it lives (a dropped wait included).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Parked {
    conn: PgConnection,
    since: Instant,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("settings", &self.inner.settings)
            .field("idle", &self.idle_connections())
            .finish_non_exhaustive()
    }
}

impl Lane {
    /// A lane that connects with `options` on demand (nothing is opened here).
    pub fn new(options: PgConnectOptions, settings: LaneSettings) -> Self {
        let max = usize::try_from(settings.max_connections.max(1)).unwrap_or(1);
        Self {
            inner: Arc::new(Inner {
                options,
                settings,
                permits: Arc::new(Semaphore::new(max)),
                idle: Mutex::new(Vec::with_capacity(max)),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs `work` on a connection. The connection returns to the lane only when `work`
    /// returns `Ok`; after an error, or when this future is dropped before it finishes, it is
    /// closed.
    pub async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut checkout = self.checkout().await?;
        let Some(conn) = checkout.conn.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        let out = work(conn).await;
        if out.is_ok() {
            checkout.park();
        }
        out
    }

    /// Closes the lane: later [`Lane::run`]s fail with `sqlx::Error::PoolClosed`, and the idle
    /// connections say goodbye to the server (connections lent out close when they come
    /// back).
    pub async fn close(&self) {
        self.inner.permits.close();
        let idle: Vec<Parked> = std::mem::take(&mut *self.inner.idle());
        for Parked { conn, .. } in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
        }
    }

    /// Connections open and waiting for work.
    pub fn idle_connections(&self) -> usize {
        self.inner.idle().len()
    }

    /// Idle connections, connections lent out (or connecting), and callers waiting (for
    /// `db_pool_connections`).
    pub fn state(&self) -> crate::metrics::PoolState {
        let max = usize::try_from(self.inner.settings.max_connections.max(1)).unwrap_or(1);
        crate::metrics::PoolState {
            idle: self.idle_connections(),
            in_use: max.saturating_sub(self.inner.permits.available_permits()),
            waiting: Some(self.inner.waiting.load(Ordering::Relaxed)),
            max,
        }
    }

    async fn checkout(&self) -> Result<Checkout, sqlx::Error> {
        let settings = &self.inner.settings;
        let deadline = Instant::now() + settings.acquire_timeout;
        let waiting = Waiting::new(&self.inner.waiting);
        let permit = tokio::time::timeout_at(
            deadline.into(),
            Arc::clone(&self.inner.permits).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        drop(waiting);
        loop {
            let Some(Parked { mut conn, since }) = self.inner.idle().pop() else {
                let conn = tokio::time::timeout_at(deadline.into(), self.inner.options.connect())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                return Ok(self.checked_out(conn, permit));
            };
            let idle_for = since.elapsed();
            if idle_for >= settings.max_idle {
                close_in_background(conn);
                continue;
            }
            if idle_for >= settings.check_after {
                let ping = tokio::time::timeout_at(deadline.into(), conn.ping()).await;
                if !matches!(ping, Ok(Ok(()))) {
                    tracing::debug!("lane: an idle connection failed its ping; dropped");
                    continue;
                }
            }
            return Ok(self.checked_out(conn, permit));
        }
    }

    fn checked_out(&self, conn: PgConnection, permit: OwnedSemaphorePermit) -> Checkout {
        Checkout {
            conn: Some(conn),
            lane: Arc::clone(&self.inner),
            _permit: permit,
        }
    }
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        // The lock is never held across an await or a panic-prone call; a poisoned list is
        // still a valid list.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection lent out by [`Lane::run`]; closed on drop unless parked.
struct Checkout {
    conn: Option<PgConnection>,
    lane: Arc<Inner>,
    // Released after `conn` is parked or closed (fields drop in declaration order).
    _permit: OwnedSemaphorePermit,
}

impl Checkout {
    fn park(mut self) {
        if self.lane.permits.is_closed() {
            return; // Dropped: closed.
        }
        if let Some(conn) = self.conn.take() {
            self.lane.idle().push(Parked {
                conn,
                since: Instant::now(),
            });
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            close_in_background(conn);
        }
    }
}

/// Says goodbye to the server (a `Terminate` message) without making anyone wait; a
/// connection whose state is unknown is never reused.
fn close_in_background(conn: PgConnection) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
            });
        }
        Err(_) => drop(conn),
    }
}

/// `true` when Postgres cannot be reached (as opposed to a query that failed).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| unavailable_sqlstate(&c)))
}

/// SQLSTATEs meaning "cannot use the database right now": connection exceptions (08),
/// insufficient resources (53), operator intervention (57P), a database that is gone (3D000)
/// or refusing connections (55000).
fn unavailable_sqlstate(code: &str) -> bool {
    ["08", "53", "57P"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "3D000" | "55000")
}
