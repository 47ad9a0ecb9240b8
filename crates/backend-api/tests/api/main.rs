//! backend-api end to end: the real service on port 0, real HTTP, a fresh Postgres database
//! per test.

mod auth;
mod concurrency;
mod errors;
mod fuzz;
mod health;
mod helpers;
mod invitations;
mod members;
mod roles;
mod routes;
mod security;
mod workspaces;
