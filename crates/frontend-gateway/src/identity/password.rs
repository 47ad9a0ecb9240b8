//! Password hashing and verification: argon2id with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane), always off the async workers, on threads of their own.
//!
//! Four things keep a burst of sign-ins from hurting everything else:
//!
//! * a [`Hasher`] runs at most `PASSWORD_HASH_CONCURRENCY` hashes at once (default
//!   [`default_concurrency`]: half the cores, at least one); the rest wait asynchronously for
//!   a permit, so a sign-in storm queues instead of taking every core (and 19 MiB per hash)
//!   from the proxy;
//! * that queue is bounded: at most `PASSWORD_HASH_QUEUE` requests wait (default
//!   [`default_queue`]: four times the concurrency). One more is refused at once with
//!   [`PasswordError::Busy`] (503 with `Retry-After: ` [`BUSY_RETRY_AFTER_SECS`]) instead of
//!   waiting seconds behind the others; sign-in, registration and password change share the one
//!   queue. A waiter whose request is dropped (its client went away) gives its place back and
//!   never hashes: the hash only starts from the poll that got the permit, and a hashing thread
//!   whose caller is gone by the time it runs does nothing;
//! * a hash runs on a thread whose scheduling priority is lowered by [`NICENESS`] (Linux), so
//!   when the CPU is contended the request workers go first and a storm costs the proxied
//!   traffic little (`just bench`, case "storm"); sign-ins are what slows down under load,
//!   which is the right way round for a credential-stuffing burst;
//! * each hash gets its own memory, reserved with a capacity above glibc's largest mmap
//!   threshold (32 MiB) so that it is always a fresh `mmap` and goes back to the kernel on
//!   `free`. argon2's own `vec!` of 19 MiB would come from the heap once glibc's sliding
//!   threshold has risen past it, and stay in the process after the hash. Only the 19 MiB the
//!   hash uses are ever touched, so RSS grows by that much per running hash, then shrinks.
//!
//! An unknown email is verified against [`dummy_hash`], made with the same parameters, so it
//! costs the same time as a wrong password and both answer the same.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{
    Decimal, Error as PhcError, Ident, Output, ParamsString, Salt, SaltString,
};
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
};
use opentelemetry::trace::SpanKind;
use prometheus::{Histogram, HistogramOpts, IntGauge};
use rand::RngCore;
use tokio::sync::Semaphore;
use web_common::metrics::{self, Metrics};
use web_common::trace;

/// Passwords shorter than this are refused at registration.
pub const MIN_LEN: usize = 8;
/// Passwords longer than this are refused (argon2 would take them, but nobody types more, and
/// an unbounded input is a cheap way to burn CPU).
pub const MAX_LEN: usize = 128;

/// Blocks (1 KiB each) reserved per hash at least: above glibc's `DEFAULT_MMAP_THRESHOLD_MAX`
/// (32 MiB on 64-bit), so the reservation is always its own mapping, unmapped when dropped.
const MMAP_BLOCKS: usize = 32 * 1024 + 1;

/// OWASP's argon2id parameters: m=19456 KiB, t=2, p=1.
pub fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("the OWASP parameters are valid")
}

/// How many hashes may run at once unless `PASSWORD_HASH_CONCURRENCY` says otherwise: half
/// the cores (rounded up), at least one.
pub fn default_concurrency() -> NonZeroUsize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cores.div_ceil(2)).unwrap_or(NonZeroUsize::MIN)
}

/// How many requests may wait for a hash unless `PASSWORD_HASH_QUEUE` says otherwise: four times
/// `concurrency` (a hash takes tens of milliseconds, so a full queue drains in well under a
/// second).
pub fn default_queue(concurrency: NonZeroUsize) -> usize {
    concurrency.get().saturating_mul(4)
}

/// The `Retry-After` (seconds) of a sign-in refused because the hashing queue is full: the
/// smallest whole value, since a full queue drains in a fraction of it.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// How much lower than the rest of the process a hashing thread is scheduled (`nice` +10:
/// roughly a tenth of a request worker's share of a contended core, all of an idle one).
pub const NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`NICENESS`]; Linux only (elsewhere `setpriority`
/// would change the whole process). Lowering needs no privilege; failure is only logged.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(Some(tid), current + NICENESS) {
            tracing::warn!(error = %e, "could not lower the hashing thread's priority");
        }
    }
}

/// argon2id with [`params`], hashing in memory that is returned to the kernel afterwards (see
/// the module docs). Verifies any argon2 PHC string (the parameters come from the hash).
#[derive(Debug, Clone, Copy, Default)]
pub struct MmapArgon2;

impl PasswordHasher for MmapArgon2 {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        self.hash_password_customized(
            password,
            Some(Algorithm::Argon2id.ident()),
            Some(Version::V0x13.into()),
            params(),
            salt,
        )
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        alg_id: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let algorithm = alg_id
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let blocks = params.block_count();
        let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(MMAP_BLOCKS));
        memory.resize(blocks, Block::new());
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = Output::init_with(output_len, |out| {
            argon2
                .hash_password_into_with_memory(password, salt_bytes, out, &mut memory[..])
                .map_err(PhcError::from)
        })?;
        drop(memory);
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// Why a password could not be hashed or checked (never "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// argon2 refused (a malformed stored hash, ...).
    #[error("argon2 failed: {0}")]
    Argon2(argon2::password_hash::Error),
    /// The hashing thread could not start, or panicked.
    #[error("the hashing thread failed")]
    Task,
    /// `PASSWORD_HASH_QUEUE` requests already wait for a hash: try again shortly.
    #[error("the password hashing queue is full")]
    Busy,
}

impl From<PasswordError> for crate::error::Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy {
                retry_after_secs: BUSY_RETRY_AFTER_SECS,
            },
            e => Self::Internal {
                what: "password hashing",
                source: Box::new(e),
            },
        }
    }
}

/// A hash of a random password, made once with the real parameters.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let mut password = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut password);
        hash_blocking(&hex::encode(password)).expect("hashing a random password works")
    });
    &DUMMY
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    MmapArgon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Argon2)
}

fn verify_blocking(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(hash).map_err(PasswordError::Argon2)?;
    match MmapArgon2.verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(PasswordError::Argon2(e)),
    }
}

/// Hashes and checks passwords, at most `concurrency` at once with at most `queue` more waiting
/// (cheap to clone: the permits and counters are shared).
#[derive(Debug, Clone)]
pub struct Hasher {
    concurrency: usize,
    /// One per hash running.
    permits: Arc<Semaphore>,
    /// One per request running or waiting (`concurrency + queue`); none left: [`PasswordError::Busy`].
    places: Arc<Semaphore>,
    places_total: usize,
    started: Arc<AtomicU64>,
    /// `gateway_password_hash_duration_seconds`: one hash's (or check's) time on its thread.
    duration: Histogram,
}

/// What a [`Hasher`] is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HasherLoad {
    /// Hashes running (or about to start on their thread).
    pub running: usize,
    /// Requests waiting for a permit.
    pub waiting: usize,
    /// Hashes started since the hasher was made.
    pub started: u64,
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once, with at most `queue` more
    /// requests waiting for a turn.
    pub fn new(concurrency: NonZeroUsize, queue: usize) -> Self {
        let concurrency = concurrency.get();
        let places_total = concurrency
            .saturating_add(queue)
            .min(Semaphore::MAX_PERMITS);
        Self {
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            places: Arc::new(Semaphore::new(places_total)),
            places_total,
            started: Arc::new(AtomicU64::new(0)),
            duration: Histogram::with_opts(
                HistogramOpts::new(
                    "gateway_password_hash_duration_seconds",
                    "Time one argon2 hash or check takes on its thread (not the wait for a turn).",
                )
                .buckets(metrics::LATENCY_BUCKETS.to_vec()),
            )
            .expect("a valid metric"),
        }
    }

    /// Reports this hasher in `metrics`: the hash durations, and
    /// `gateway_password_hash_queue_depth` (requests waiting for a turn, read when scraped).
    pub fn report_to(&self, metrics: &Metrics) {
        let depth = IntGauge::new(
            "gateway_password_hash_queue_depth",
            "Requests waiting for a turn to hash or check a password.",
        )
        .expect("a valid metric");
        metrics.register(vec![
            Box::new(self.duration.clone()),
            Box::new(depth.clone()),
        ]);
        let hasher = self.clone();
        metrics.on_scrape(move || depth.set(hasher.load().waiting as i64));
    }

    /// How many hashes run and wait now, and how many ever started.
    pub fn load(&self) -> HasherLoad {
        let running = self.concurrency - self.permits.available_permits();
        let in_use = self.places_total - self.places.available_permits();
        HasherLoad {
            running,
            waiting: in_use.saturating_sub(running),
            started: self.started.load(Ordering::Relaxed),
        }
    }

    /// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `hash`, or against [`dummy_hash`] when there is no user.
    /// Returns `Ok(false)` for a wrong password and always for a missing user.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move || match hash {
            Some(hash) => verify_blocking(&password, &hash),
            None => verify_blocking(&password, dummy_hash()).map(|_| false),
        })
        .await?
    }

    /// Runs `f` (password work: CPU-heavy, blocking) under this hasher's limits: a place in
    /// the queue at once or [`PasswordError::Busy`], then, once a permit is free (waiting
    /// without blocking), `f` on a low-priority thread of its own. A thread per hash costs tens
    /// of microseconds against a hash's tens of milliseconds, and leaves nothing behind between
    /// storms.
    ///
    /// Dropping the returned future while it waits gives back its place and its turn, and `f`
    /// never runs: the thread starts only from the poll that got the permit, and a thread whose
    /// caller has gone by the time it is scheduled returns without calling `f`.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let hashing = trace::span("password.hash", SpanKind::Internal);
        let place = Arc::clone(&self.places).try_acquire_owned().map_err(|_| {
            hashing.fail("the hashing queue is full");
            PasswordError::Busy
        })?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Task)?;
        let span = tracing::Span::current();
        let started = Arc::clone(&self.started);
        let duration = self.duration.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("argon2".into())
            .spawn(move || {
                let turn = (place, permit);
                if done.is_closed() {
                    return;
                }
                started.fetch_add(1, Ordering::Relaxed);
                lower_this_threads_priority();
                let began = std::time::Instant::now();
                let out = span.in_scope(f);
                duration.observe(began.elapsed().as_secs_f64());
                // The turn ends before the answer leaves: a client whose next request follows
                // its answer at once finds its place free again.
                drop(turn);
                let _ = done.send(out);
            })
            .map_err(|e| {
                tracing::error!(error = %e, "could not start a hashing thread");
                PasswordError::Task
            })?;
        // A panic drops `done` (and the permit) without sending.
        result.await.map_err(|_| PasswordError::Task)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt as _;

    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(default_concurrency(), default_queue(default_concurrency()))
    }

    async fn hash(password: String) -> Result<String, PasswordError> {
        hasher().hash(password).await
    }

    async fn verify(password: String, hash: Option<String>) -> Result<bool, PasswordError> {
        hasher().verify(password, hash).await
    }

    #[tokio::test]
    async fn a_hash_uses_argon2id_with_the_owasp_parameters_and_verifies() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_hash_with_the_same_parameters() {
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn hashes_match_the_argon2_crates_own_in_both_directions() {
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let ours = MmapArgon2.hash_password(b"pw", &salt).unwrap().to_string();
        let theirs = reference.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(ours, theirs);
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(MmapArgon2.verify_password(b"pw", &parsed).is_ok());
        assert!(MmapArgon2.verify_password(b"px", &parsed).is_err());
        // Other parameters and variants still verify (they come from the stored hash).
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 1, 2, Some(16)).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(verify_blocking("pw", &other).unwrap());
        assert!(!verify_blocking("px", &other).unwrap());
    }

    #[tokio::test]
    async fn a_storm_of_hashes_all_complete_under_the_limit() {
        let hasher = hasher();
        let hashes =
            futures_util::future::join_all((0..4).map(|i| hasher.hash(format!("password {i}"))))
                .await;
        for (i, h) in hashes.into_iter().enumerate() {
            let h = h.unwrap();
            assert!(verify(format!("password {i}"), Some(h)).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_panicking_hash_is_an_error_and_frees_its_permit() {
        // A leaked permit would make the last rounds wait forever.
        let hasher = hasher();
        for _ in 0..=default_concurrency().get() {
            let run = hasher.run(|| panic!("boom"));
            let result: Result<(), _> = tokio::time::timeout(Duration::from_secs(30), run)
                .await
                .expect("a permit is free again");
            assert!(matches!(result, Err(PasswordError::Task)));
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_at_once_and_a_dropped_waiter_never_runs() {
        let hasher = Hasher::new(NonZeroUsize::MIN, 1);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move || held.recv()).await }
        });
        while hasher.load().running == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // One waits (polled once, so it holds its place), the next is refused without waiting.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut waiter = Box::pin(hasher.run({
            let ran = Arc::clone(&ran);
            move || ran.store(true, Ordering::SeqCst)
        }));
        assert!(waiter.as_mut().now_or_never().is_none());
        assert_eq!(hasher.load().waiting, 1);
        assert!(matches!(hasher.run(|| ()).await, Err(PasswordError::Busy)));
        // The waiter is dropped: its place is free again, and it never runs.
        drop(waiter);
        assert_eq!(hasher.load().waiting, 0);
        let next = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(|| "next").await }
        });
        release.send(()).unwrap();
        running.await.unwrap().unwrap().unwrap();
        assert_eq!(next.await.unwrap().unwrap(), "next");
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(hasher.load().started, 2);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_below_the_request_workers_priority() {
        let ours = rustix::process::getpriority_process(None).unwrap();
        let hashing = hasher()
            .run(|| rustix::process::getpriority_process(None).unwrap())
            .await
            .unwrap();
        assert_eq!(hashing, (ours + NICENESS).min(19));
        // Only the hashing thread was lowered.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), ours);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        assert!(verify("x".into(), Some("not a hash".into())).await.is_err());
    }
}
