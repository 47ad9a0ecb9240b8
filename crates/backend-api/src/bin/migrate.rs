//! `migrate`: creates `DATABASE_URL`'s database when it does not exist and applies the
//! migrations. The services apply them at start-up too; this is for a database prepared ahead.

use std::process::ExitCode;

use sqlx::migrate::MigrateDatabase;
use sqlx::{Connection, PgConnection, Postgres};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("migrate: DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/app)");
        return ExitCode::from(2);
    };
    let result = async {
        if !Postgres::database_exists(&url).await? {
            Postgres::create_database(&url).await?;
            eprintln!("migrate: created the database");
        }
        let mut conn = PgConnection::connect(&url).await?;
        backend_api::MIGRATOR.run(&mut conn).await?;
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
