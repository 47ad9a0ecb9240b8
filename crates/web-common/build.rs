//! `sqlx::migrate!` embeds `migrations/` at compile time; stable Rust cannot tell cargo to
//! watch that folder from the macro, so this does: a new or edited migration rebuilds the crate.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
