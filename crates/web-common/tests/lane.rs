//! `web_common::db::Lane` against a real Postgres: reuse, and every way a connection must not
//! be reused.

use std::time::Duration;

use sqlx::PgConnection;
use test_support::TestDatabase;
use web_common::db::{Lane, LaneSettings};

async fn backend_pid(lane: &Lane) -> i32 {
    lane.run(async |c: &mut PgConnection| {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(c)
            .await
    })
    .await
    .expect("the lane answers")
}

async fn select_one(lane: &Lane) -> Result<(), sqlx::Error> {
    lane.run(async |c: &mut PgConnection| sqlx::query("SELECT 1").execute(c).await)
        .await
        .map(drop)
}

/// The server ends the backend process `pid` (as on a restart or an idle-session timeout).
async fn terminate(db: &TestDatabase, pid: i32) {
    db.admin_execute(&format!("SELECT pg_terminate_backend({pid})"))
        .await;
    assert!(gone_within(db, pid, Duration::from_secs(5)).await);
}

/// Whether the server still has a backend process with `pid` (polled: closing is asynchronous).
async fn gone_within(db: &TestDatabase, pid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if !alive {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connects_on_demand_and_reuses_a_connection_whose_work_succeeded() {
    let db = TestDatabase::new().await;
    let lane = Lane::new(db.options.clone(), LaneSettings::new(4));
    assert_eq!(lane.idle_connections(), 0, "nothing is opened up front");
    let first = backend_pid(&lane).await;
    assert_eq!(lane.idle_connections(), 1);
    for _ in 0..5 {
        assert_eq!(
            backend_pid(&lane).await,
            first,
            "the same connection, reused"
        );
    }
    assert_eq!(lane.idle_connections(), 1);
}

#[tokio::test]
async fn a_failed_statement_closes_its_connection() {
    let db = TestDatabase::new().await;
    let lane = Lane::new(db.options.clone(), LaneSettings::new(4));
    let first = backend_pid(&lane).await;
    let err = lane
        .run(async |c: &mut PgConnection| {
            sqlx::query_scalar::<_, i32>("SELECT 1 / 0")
                .fetch_one(c)
                .await
        })
        .await
        .unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("22012"), "division_by_zero: {err}");
    assert_eq!(lane.idle_connections(), 0, "not parked after an error");
    assert!(gone_within(&db, first, Duration::from_secs(5)).await);
    let next = backend_pid(&lane).await;
    assert_ne!(next, first);
}

#[tokio::test]
async fn a_caller_dropped_mid_statement_never_hands_its_connection_on() {
    let db = TestDatabase::new().await;
    let lane = Lane::new(db.options.clone(), LaneSettings::new(1));
    let first = backend_pid(&lane).await;
    // The request goes away (client disconnected, timeout) while Postgres is still answering.
    let slow = lane.run(async |c: &mut PgConnection| {
        sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.3)")
            .fetch_one(c)
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err()
    );
    assert_eq!(lane.idle_connections(), 0);
    // The next caller (the lane's only slot) gets a fresh connection and its own answer, not the
    // abandoned statement's 7.
    let answer: i32 = lane
        .run(async |c: &mut PgConnection| sqlx::query_scalar("SELECT 42").fetch_one(c).await)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    assert_ne!(backend_pid(&lane).await, first);
    assert!(gone_within(&db, first, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_pinged_and_replaced() {
    let db = TestDatabase::new().await;
    let settings = LaneSettings {
        check_after: Duration::ZERO,
        ..LaneSettings::new(2)
    };
    let lane = Lane::new(db.options.clone(), settings);
    let first = backend_pid(&lane).await;
    terminate(&db, first).await;
    // The ping finds it dead; the caller never sees an error.
    let next = backend_pid(&lane).await;
    assert_ne!(next, first);
    assert_eq!(lane.idle_connections(), 1);
}

#[tokio::test]
async fn a_recently_used_connection_that_died_fails_once_and_is_not_reused() {
    let db = TestDatabase::new().await;
    let settings = LaneSettings {
        check_after: Duration::from_secs(3600),
        ..LaneSettings::new(2)
    };
    let lane = Lane::new(db.options.clone(), settings);
    let first = backend_pid(&lane).await;
    terminate(&db, first).await;
    // Not idle long enough to be pinged: the statement fails (the server is gone), and the
    // connection is closed rather than parked.
    assert!(select_one(&lane).await.is_err());
    assert_eq!(lane.idle_connections(), 0);
    assert_ne!(backend_pid(&lane).await, first);
}

#[tokio::test]
async fn a_connection_idle_past_max_idle_is_closed_not_reused() {
    let db = TestDatabase::new().await;
    let settings = LaneSettings {
        max_idle: Duration::ZERO,
        ..LaneSettings::new(2)
    };
    let lane = Lane::new(db.options.clone(), settings);
    let first = backend_pid(&lane).await;
    let second = backend_pid(&lane).await;
    assert_ne!(first, second);
    assert!(gone_within(&db, first, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn callers_beyond_max_connections_wait_then_time_out() {
    let db = TestDatabase::new().await;
    let settings = LaneSettings {
        acquire_timeout: Duration::from_millis(200),
        ..LaneSettings::new(1)
    };
    let lane = Lane::new(db.options.clone(), settings);
    // The holder keeps the only connection until told to let go (no timing involved).
    let (acquired, has_it) = tokio::sync::oneshot::channel::<()>();
    let (release, let_go) = tokio::sync::oneshot::channel::<()>();
    let busy = lane.clone();
    let holder = tokio::spawn(async move {
        busy.run(async |c: &mut PgConnection| {
            sqlx::query("SELECT 1").execute(&mut *c).await?;
            acquired.send(()).unwrap();
            let_go.await.unwrap();
            Ok(())
        })
        .await
    });
    has_it.await.unwrap();
    let waited = select_one(&lane).await;
    assert!(
        matches!(waited, Err(sqlx::Error::PoolTimedOut)),
        "{waited:?}"
    );
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    // The one connection is free again and still good.
    backend_pid(&lane).await;
    assert_eq!(lane.idle_connections(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    let db = TestDatabase::new().await;
    db.cut_off().await;
    let settings = LaneSettings {
        acquire_timeout: Duration::from_secs(2),
        ..LaneSettings::new(1)
    };
    let lane = Lane::new(db.options.clone(), settings);
    assert!(select_one(&lane).await.is_err());
    db.restore().await;
    backend_pid(&lane).await;
}

#[tokio::test]
async fn a_closed_lane_says_goodbye_to_its_idle_connections_and_serves_no_more() {
    let db = TestDatabase::new().await;
    let lane = Lane::new(db.options.clone(), LaneSettings::new(2));
    let pid = backend_pid(&lane).await;
    assert_eq!(lane.idle_connections(), 1);
    lane.close().await;
    assert_eq!(lane.idle_connections(), 0);
    assert!(gone_within(&db, pid, Duration::from_secs(2)).await);
    assert!(matches!(
        select_one(&lane).await,
        Err(sqlx::Error::PoolClosed)
    ));
}
