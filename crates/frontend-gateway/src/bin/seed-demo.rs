//! `seed-demo`: makes sure a demo user (with a demo workspace) exists in `DATABASE_URL`, and
//! prints how to sign in. Used by `just dev`; safe to run again (it changes nothing then).
//! `DEMO_EMAIL` and `DEMO_PASSWORD` override the defaults.

use std::process::ExitCode;

use frontend_gateway::{password, startup::MIGRATOR, users};
use sqlx::PgPool;

const WORKSPACE: &str = "Demo workspace";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let email = std::env::var("DEMO_EMAIL").unwrap_or_else(|_| "demo@example.com".to_owned());
    let password = std::env::var("DEMO_PASSWORD").unwrap_or_else(|_| "demo-password".to_owned());
    match seed(&email, &password).await {
        Ok(created) => {
            let state = if created { "created" } else { "already there" };
            eprintln!("seed-demo: demo user {state}: sign in as {email} / {password}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn seed(email: &str, pass: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let pool = PgPool::connect(&url).await?;
    MIGRATOR.run(&pool).await?;
    if users::find_by_email(&pool, email).await?.is_some() {
        return Ok(false);
    }
    let hash = password::hash(pass.to_owned()).await?;
    let user = users::insert(&pool, email, "Demo User", &hash).await?;
    let workspace = uuid::Uuid::now_v7();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO workspaces (id, name, created_by) VALUES ($1, $2, $3)")
        .bind(workspace)
        .bind(WORKSPACE)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
    )
    .bind(workspace)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
