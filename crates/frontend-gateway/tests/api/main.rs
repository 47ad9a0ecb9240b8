//! Integration tests: real Postgres, real HTTP, the gateway in-process on port 0.

mod auth;
mod flow;
mod github;
mod helpers;
mod hostile;
mod oidc;
mod pages;
mod proxy;
mod security;
mod sessions;
mod upstream;
