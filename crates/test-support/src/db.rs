//! Fresh, migrated Postgres databases for tests, gateway tokens, worker counts (see the crate
//! docs).

use std::process::{Command, Stdio};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, PgPool};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use tokio::sync::OnceCell;

use web_common::db::migrate;

/// A database that lives as long as the test.
#[derive(Debug)]
pub struct TestDatabase {
    /// A pool on the new database.
    pub pool: PgPool,
    /// Options that connect to the new database (hand them to the service under test).
    pub options: PgConnectOptions,
    /// Its name.
    pub name: String,
    /// A `postgres://` URL of the new database (for services configured by `DATABASE_URL`).
    pub url: String,
    admin: PgConnectOptions,
}

/// Where the server is: `DATABASE_URL`, or the container started for this test binary.
struct Server {
    admin: PgConnectOptions,
    admin_url: String,
    _container: Option<ContainerAsync<Postgres>>,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                let admin = PgConnectOptions::from_str(&url)
                    .unwrap_or_else(|e| panic!("DATABASE_URL is not a Postgres URL: {e}"));
                return Server {
                    admin,
                    admin_url: url,
                    _container: None,
                };
            }
            if !docker_answers() {
                panic!(
                    "These tests need Postgres. Set DATABASE_URL to a server this user may create \
                     databases on (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres), \
                     or start a Docker engine so a throwaway container can be used."
                );
            }
            let container = Postgres::default()
                .start()
                .await
                .unwrap_or_else(|e| panic!("could not start a Postgres container: {e}"));
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .unwrap_or_else(|e| panic!("the Postgres container has no port: {e}"));
            let admin = PgConnectOptions::new()
                .host("127.0.0.1")
                .port(port)
                .username("postgres")
                .password("postgres")
                .database("postgres");
            Server {
                admin,
                admin_url: format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
                _container: Some(container),
            }
        })
        .await
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(i) => &base[..authority_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

fn url_database(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or(base)
}

fn docker_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl TestDatabase {
    /// Creates and migrates a new database.
    pub async fn new() -> Self {
        let server = server().await;
        let admin = server.admin.clone();
        let url = with_database(
            &server.admin_url,
            &format!("test_{}", uuid::Uuid::new_v4().simple()),
        );
        let name = url_database(&url).to_owned();
        let mut conn = admin
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test Postgres server: {e}"));
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        conn.close().await.ok();

        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options.clone())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {name}: {e}"));
        migrate(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrations failed on {name}: {e}"));
        Self {
            pool,
            options,
            name,
            url,
            admin,
        }
    }
}

impl TestDatabase {
    /// Runs `sql` on the maintenance database.
    pub async fn admin_execute(&self, sql: &str) {
        let mut conn = self.admin.connect().await.expect("admin connection");
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
    }

    /// Makes the database unreachable: forbids new connections and ends the open ones.
    pub async fn cut_off(&self) {
        let name = &self.name;
        self.admin_execute(&format!(
            r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#
        ))
        .await;
        self.admin_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
    }

    /// Undoes [`TestDatabase::cut_off`].
    pub async fn restore(&self) {
        let name = &self.name;
        self.admin_execute(&format!(
            r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true"#
        ))
        .await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: its database `{}` is kept for inspection",
                self.name
            );
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived thread
        // with its own runtime does the clean-up.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn: PgConnection = admin.connect().await.ok()?;
                conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database `{}`", self.name);
        }
    }
}

/// A gateway token for `user`, signed with `secret` by the auth-contract signer exactly as the
/// gateway signs its own, living `lifetime`.
pub fn mint_token(
    secret: &str,
    user: uuid::Uuid,
    email: &str,
    lifetime: std::time::Duration,
) -> String {
    let secret = auth_contract::Secret::new(secret).expect("a test secret of at least 32 bytes");
    auth_contract::Signer::new(&secret)
        .sign(&auth_contract::Claims::with_lifetime(user, email, lifetime))
        .expect("claims always serialise")
}

/// How many actix request workers this process runs: its threads named `actix-server worker
/// N` (Linux; read from `/proc/self/task`, where a thread's name is cut to 15 bytes).
pub fn worker_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "actix-server wo")
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "test_1"),
            "postgres://u:p@h:5432/test_1"
        );
        assert_eq!(
            with_database("postgres://h/postgres?sslmode=disable", "t"),
            "postgres://h/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "t"), "postgres://h:5/t");
        assert_eq!(url_database("postgres://h/t?x=1"), "t");
    }
}
