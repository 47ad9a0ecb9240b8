//! The migrations against a real Postgres: applying them, and a database migrated with the
//! released text of a migration whose comments were corrected later.

use sha2::{Digest, Sha384};
use sqlx::{Connection, PgConnection};
use test_support::TestDatabase;
use web_common::db::{MIGRATOR, REWORDED, migrate};

/// SQL without its `--` comments and blank lines: what a migration does.
fn statements(sql: &str) -> Vec<String> {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or_default().trim_end())
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn released_text(version: i64) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&version.to_string()))
        })
        .unwrap_or_else(|| panic!("no released text of {version} in {dir}"));
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn a_reworded_migration_changed_only_in_comments_since_its_release() {
    for (version, released) in REWORDED {
        let text = released_text(*version);
        assert_eq!(
            hex::encode(Sha384::digest(text.as_bytes())),
            *released,
            "{version}: the fixture is the released text"
        );
        let current = MIGRATOR.iter().find(|m| m.version == *version).unwrap();
        assert_ne!(&current.checksum[..], &Sha384::digest(text.as_bytes())[..]);
        assert_eq!(
            statements(&current.sql),
            statements(&text),
            "{version}: only comments may change in a released migration"
        );
    }
}

#[tokio::test]
async fn a_database_migrated_with_the_released_text_is_brought_up_to_date() {
    let db = TestDatabase::new().await;
    // As if every reworded migration had been applied with its released text.
    for (version, released) in REWORDED {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
            .bind(hex::decode(released).unwrap())
            .bind(version)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // On a connection of its own: sqlx returns this error still holding its advisory lock,
    // which goes away only with the connection.
    let mut alone = PgConnection::connect_with(&db.options).await.unwrap();
    let refused = MIGRATOR.run(&mut alone).await;
    assert!(
        matches!(
            refused,
            Err(sqlx::migrate::MigrateError::VersionMismatch(_))
        ),
        "sqlx alone refuses such a database: {refused:?}"
    );
    alone.close().await.unwrap();
    migrate(&db.pool).await.expect("migrate repairs the record");
    migrate(&db.pool).await.expect("and again: idempotent");
    MIGRATOR.run(&db.pool).await.expect("sqlx is content now");
}

#[tokio::test]
async fn migrating_an_up_to_date_database_changes_nothing() {
    let db = TestDatabase::new().await;
    migrate(&db.pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);
}
