//! `migrate`: creates `DATABASE_URL`'s database when it does not exist and applies the
//! migrations. The services apply them at start-up too; this is for a database prepared ahead.
//! A bad setting exits with status 78 (`EX_CONFIG`) and a message naming the variable.

use std::process::ExitCode;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use web_common::db::migrate;
use web_common::settings::DatabaseSettings;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let database = match web_common::env::load("migrate", DatabaseSettings::from_source) {
        Ok(database) => database,
        Err(status) => return status,
    };
    let result = async {
        if create_if_missing(&database.options).await? {
            eprintln!("migrate: created the database");
        }
        let pool = database.pool();
        migrate(&pool).await?;
        pool.close().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    match result {
        Ok(()) => {
            eprintln!("migrate: the database is up to date");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the database `options` names (by default, as Postgres does, the user's name) unless
/// it exists, through the same server's `postgres` database. `true` when it was created.
async fn create_if_missing(options: &PgConnectOptions) -> Result<bool, sqlx::Error> {
    let name = options
        .get_database()
        .unwrap_or_else(|| options.get_username())
        .to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    let created = if exists {
        false
    } else {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&create).execute(&mut admin).await {
            Ok(_) => true,
            // Another `migrate` (or a service) created it in between.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => false,
            Err(e) => return Err(e),
        }
    };
    admin.close().await?;
    Ok(created)
}
