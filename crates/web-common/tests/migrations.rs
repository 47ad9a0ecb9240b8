//! The migrations against a real Postgres: applying them, a database migrated with the
//! released text of a migration whose comments were corrected later, and the check made
//! instead of migrating (`MIGRATE_ON_START=false`).

use sha2::{Digest, Sha384};
use sqlx::{Connection, PgConnection};
use test_support::TestDatabase;
use web_common::db::{
    EMAIL_KEY_ADDED, EMAIL_KEY_UNIQUE, MIGRATOR, MigrateError, REWORDED, check_migrated, migrate,
    migrate_or_check,
};

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

/// `db`'s schema emptied and migrated up to `version` only, as a database deployed before the
/// later migrations existed.
async fn at_version(db: &TestDatabase, version: i64) {
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&db.pool)
        .await
        .unwrap();
    let before = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&db.pool).await.unwrap();
}

/// Inserts users as the code before `users.email_key` did; their ids, in order.
async fn old_users(db: &TestDatabase, emails: &[&str]) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for email in emails {
        let id = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, email, name) VALUES ($1, $2, 'Someone')")
            .bind(id)
            .bind(email)
            .execute(&db.pool)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn index_exists(db: &TestDatabase, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn existing_users_get_their_email_keys_and_the_unique_index() {
    let db = TestDatabase::new().await;
    at_version(&db, EMAIL_KEY_ADDED - 1).await;
    let emails = [
        "Ada@Example.com",
        "ｂｏｂ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        " Straße@x.io",
        "\u{212A}im@x.io",
    ];
    let ids = old_users(&db, &emails).await;
    // Both services start at once: one fills, the other finds it done.
    let (a, b) = tokio::join!(migrate(&db.pool), migrate(&db.pool));
    a.unwrap();
    b.unwrap();
    let expected = [
        "ada@example.com",
        "bob@example.com",
        "strasse@x.io",
        "kim@x.io",
    ];
    for ((id, email), key) in ids.iter().zip(emails).zip(expected) {
        let (stored, stored_key): (String, String) =
            sqlx::query_as("SELECT email, email_key FROM users WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(stored, email, "the email stays as typed");
        assert_eq!(stored_key, key, "{email:?}");
    }
    assert!(index_exists(&db, "users_email_key_key").await);
    assert!(!index_exists(&db, "users_email_lower_key").await);
    let duplicate = sqlx::query(
        "INSERT INTO users (id, email, email_key, name) VALUES ($1, 'STRASSE@x.io', 'strasse@x.io', 'B')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert_eq!(
        duplicate.as_database_error().and_then(|e| e.constraint()),
        Some("users_email_key_key")
    );
    migrate(&db.pool).await.expect("and again: nothing to do");
}

#[tokio::test]
async fn accounts_sharing_an_email_key_stop_the_migration_by_name_before_the_index() {
    let db = TestDatabase::new().await;
    at_version(&db, EMAIL_KEY_ADDED - 1).await;
    // lower() tells these apart, so the old index let both in.
    let ids = old_users(&db, &["Straße@x.io", "STRASSE@x.io", "ada@example.com"]).await;
    let refused = migrate(&db.pool).await.unwrap_err();
    let MigrateError::SharedEmailKeys(shared) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].key, "strasse@x.io");
    assert_eq!(
        shared[0].users,
        [
            (ids[0], "Straße@x.io".to_owned()),
            (ids[1], "STRASSE@x.io".to_owned())
        ]
    );
    let message = refused.to_string();
    for named in [
        ids[0].to_string(),
        ids[1].to_string(),
        "Straße@x.io".into(),
        "STRASSE@x.io".into(),
    ] {
        assert!(message.contains(&named), "{message}");
    }
    assert!(!index_exists(&db, "users_email_key_key").await);
    let filled: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email_key IS NOT NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(filled, 0, "nothing is filled");
    let unique_applied: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1)")
            .bind(EMAIL_KEY_UNIQUE)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!unique_applied);

    // Once one of them changes their email, migrating succeeds.
    sqlx::query("UPDATE users SET email = 'strasse2@x.io' WHERE id = $1")
        .bind(ids[1])
        .execute(&db.pool)
        .await
        .unwrap();
    migrate(&db.pool).await.unwrap();
    assert!(index_exists(&db, "users_email_key_key").await);
}

#[tokio::test]
async fn the_check_passes_a_migrated_database_and_names_what_another_lacks() {
    let db = TestDatabase::new().await;
    check_migrated(&db.pool).await.expect("migrated");
    // A newer release's migration, unknown to this build: fine (a rolling upgrade).
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer release', true, '\\x00', 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    check_migrated(&db.pool)
        .await
        .expect("a newer migration is allowed");
    // A reworded migration recorded with its released checksum: fine (`migrate` updates it).
    for (version, released) in REWORDED {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $2 WHERE version = $1")
            .bind(version)
            .bind(hex::decode(released).unwrap())
            .execute(&db.pool)
            .await
            .unwrap();
    }
    check_migrated(&db.pool)
        .await
        .expect("the released checksum is allowed");

    let first = MIGRATOR.iter().next().unwrap();
    let last = MIGRATOR.iter().last().unwrap();
    let behind = |e: MigrateError| match e {
        MigrateError::Behind(why) => why,
        other => panic!("not Behind: {other}"),
    };
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x01' WHERE version = $1")
        .bind(first.version)
        .execute(&db.pool)
        .await
        .unwrap();
    let why = behind(check_migrated(&db.pool).await.unwrap_err());
    assert!(
        why.contains(&first.version.to_string()) && why.contains("different text"),
        "{why}"
    );
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $2 WHERE version = $1")
        .bind(first.version)
        .bind(&first.checksum[..])
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(last.version)
        .execute(&db.pool)
        .await
        .unwrap();
    let why = behind(check_migrated(&db.pool).await.unwrap_err());
    assert!(why.contains("did not finish"), "{why}");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last.version)
        .execute(&db.pool)
        .await
        .unwrap();
    let err = migrate_or_check(&db.pool, false).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("{} ({})", last.version, last.description))
            && message.contains("MIGRATE_ON_START=true"),
        "{message}"
    );
    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(&db.pool)
        .await
        .unwrap();
    let why = behind(check_migrated(&db.pool).await.unwrap_err());
    assert!(why.contains("no migrations applied"), "{why}");
}
