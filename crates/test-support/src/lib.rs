//! A fresh, migrated Postgres database for each test.
//!
//! The server comes from `DATABASE_URL` when it is set (CI and `just test` set it); otherwise,
//! when a Docker engine answers, from one Postgres container started with testcontainers for
//! the whole test binary; otherwise the test fails and says how to provide one.
//!
//! Each [`TestDatabase`] is a new database named `test_<uuid>` with every migration in
//! `migrations/` applied. It is dropped when the test passes and kept (its name printed) when
//! the test fails, so the rows can be inspected.
//!
//! [`mint_token`] makes a gateway token for a test the one way tokens are made (the
//! auth-contract signer; scripts use its `mint-token` binary), and [`worker_threads`] counts a
//! process's actix request workers.
//!
//! The identity-provider peers: [`oidc_provider`] (the real `oidc-provider`, on Node.js),
//! [`hostile`] (an OpenID provider that misbehaves on purpose) and [`github`] (GitHub's
//! documented shapes).
//!
//! [`service`] runs a service binary as a child process (its own port, a real SIGTERM, its exit
//! status), for the start-up and shutdown tests.
//!
//! The mail peer: [`smtp`] (the real `maildev`, an SMTP server whose REST API lists what it
//! received: [`smtp::MailSink`]).

mod db;
pub mod github;
pub mod hostile;
mod npm;
pub mod oidc_provider;
pub mod service;
pub mod smtp;

pub use db::{TestDatabase, mint_token, worker_threads};
