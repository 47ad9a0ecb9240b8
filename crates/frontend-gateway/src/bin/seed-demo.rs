//! `seed-demo [email] [password]`: makes sure a demo user (with a demo workspace) exists in
//! `DATABASE_URL`, and prints how to sign in. Used by `just dev`; safe to run again (it changes
//! nothing then). The defaults are `demo@example.com` / `demo-password`.

use std::process::ExitCode;

use frontend_gateway::identity::password::{Hasher, default_concurrency};
use frontend_gateway::identity::users;
use sqlx::PgPool;
use web_common::db::migrate;
use web_common::settings::DatabaseSettings;

const WORKSPACE: &str = "Demo workspace";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let email = args.next().unwrap_or_else(|| "demo@example.com".to_owned());
    let password = args.next().unwrap_or_else(|| "demo-password".to_owned());
    let database = match web_common::env::load("seed-demo", DatabaseSettings::from_source) {
        Ok(database) => database,
        Err(code) => return code,
    };
    match seed(&database.pool(), &email, &password).await {
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

async fn seed(pool: &PgPool, email: &str, pass: &str) -> Result<bool, Box<dyn std::error::Error>> {
    migrate(pool).await?;
    let email =
        web_common::email::parse(email).map_err(|refused| format!("the email {refused}"))?;
    if users::find_by_email(pool, email.key()).await?.is_some() {
        return Ok(false);
    }
    let hash = Hasher::new(default_concurrency(), 0)
        .hash(pass.to_owned())
        .await?;
    // Created verified: its address is a placeholder no mail reaches.
    let user = users::insert(
        pool,
        &email,
        "Demo User",
        Some(&hash),
        users::Address::Verified,
    )
    .await?;
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
