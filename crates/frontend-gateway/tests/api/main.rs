//! Integration tests: real Postgres, real HTTP, the gateway in-process on port 0.

mod auth;
mod email_flows;
mod flow;
mod github;
mod helpers;
mod hostile;
mod mail;
mod mail_shutdown;
mod observability;
mod oidc;
mod pages;
mod proxy;
mod replicas;
mod retry;
mod security;
mod security_emails;
mod security_proxy;
mod security_sessions;
mod sessions;
mod upstream;
