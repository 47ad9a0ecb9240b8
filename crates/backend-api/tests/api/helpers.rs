//! A running backend-api on port 0 against a fresh database, and request helpers.

use auth_contract::{DEFAULT_TTL, Secret};
use backend_api::{Application, Settings};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use test_support::{TestDatabase, mint_token};
use uuid::Uuid;

pub const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";
pub const PREVIOUS_SECRET: &str = "previous-secret-0123456789-0123456789-xyz";

pub struct TestApp {
    pub base: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json body with this status, and returns it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status, "body: {}", self.body);
        assert!(self.body["title"].is_string());
        self.body
            .get("request_id")
            .expect("problem carries the request id");
        &self.body
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_previous(&[]).await
    }

    /// With `API_SECRET_PREVIOUS` set to `previous`.
    pub async fn spawn_with_previous(previous: &[&str]) -> Self {
        Self::spawn_with(previous, &[]).await
    }

    /// With `API_SECRET_PREVIOUS` set to `previous`, and more settings (`NAME`, value).
    pub async fn spawn_with(previous: &[&str], more: &[(&str, &str)]) -> Self {
        let db = TestDatabase::new().await;
        // The first of a name wins: `more` before the defaults.
        let vars: Vec<(String, String)> = more
            .iter()
            .copied()
            .chain([
                ("DATABASE_URL", db.url.as_str()),
                ("API_SECRET", SECRET),
                ("BACKEND_API_ADDR", "127.0.0.1:0"),
                ("HTTP_WORKERS", "2"),
                ("DATABASE_MAX_CONNECTIONS", "20"),
            ])
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut settings = Settings::from_source(&vars).expect("test settings");
        settings.database.options = db.options.clone();
        settings.api_secret_previous = previous.iter().map(|s| Secret::new(s).unwrap()).collect();
        let app = Application::build(settings)
            .await
            .expect("backend-api starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            db,
            client: reqwest::Client::new(),
        }
    }

    /// Inserts a user directly (the gateway owns registration), with a verified email, and
    /// mints a token for them.
    pub async fn user(&self, email: &str) -> TestUser {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO users (id, email, email_key, name, password_hash, email_verified_at) \
             VALUES ($1, $2, $3, $4, $5, now())",
        )
        .bind(id)
        .bind(email)
        .bind(web_common::email::key(email))
        .bind(email.split('@').next().unwrap())
        .bind("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA")
        .execute(&self.db.pool)
        .await
        .unwrap();
        let token = mint_token(SECRET, id, email, DEFAULT_TTL);
        TestUser {
            id,
            email: email.to_owned(),
            token,
        }
    }

    /// Sends a request, as `user` when given, with an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(u) = user {
            req = req.bearer_auth(&u.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request reaches the server")).await
    }

    pub async fn get(&self, path: &str, user: &TestUser) -> TestResponse {
        self.send(Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, path: &str, user: &TestUser, body: Value) -> TestResponse {
        self.send(Method::POST, path, Some(user), Some(body)).await
    }

    pub async fn patch(&self, path: &str, user: &TestUser, body: Value) -> TestResponse {
        self.send(Method::PATCH, path, Some(user), Some(body)).await
    }

    pub async fn delete(&self, path: &str, user: &TestUser) -> TestResponse {
        self.send(Method::DELETE, path, Some(user), None).await
    }

    /// Creates a workspace through the API; `owner` becomes its owner.
    pub async fn workspace(&self, owner: &TestUser, name: &str) -> Uuid {
        let res = self
            .post("/workspaces", owner, serde_json::json!({ "name": name }))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Makes `user` a member of `workspace` with `role`, directly in the database.
    pub async fn join(&self, workspace: Uuid, user: &TestUser, role: &str) {
        sqlx::query("INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3::workspace_role)")
            .bind(workspace)
            .bind(user.id)
            .bind(role)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Marks `user`'s email verified (now) or unverified, directly in the database.
    pub async fn set_verified(&self, user: &TestUser, verified: bool) {
        sqlx::query(
            "UPDATE users SET email_verified_at = CASE WHEN $2 THEN now() END WHERE id = $1",
        )
        .bind(user.id)
        .bind(verified)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    /// Invites `email` to `workspace` with `role` as `inviter` through the API; the
    /// invitation's id (the answer must be 201).
    pub async fn invite(
        &self,
        inviter: &TestUser,
        workspace: Uuid,
        email: &str,
        role: &str,
    ) -> Uuid {
        let res = self
            .post(
                &format!("/workspaces/{workspace}/invitations"),
                inviter,
                serde_json::json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// The queued mails, oldest first: `(kind, recipient, data)`.
    pub async fn outbox(&self) -> Vec<(String, String, Value)> {
        sqlx::query_as("SELECT kind, recipient, data::text FROM mail_outbox ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(kind, recipient, data): (String, String, String)| {
                (kind, recipient, serde_json::from_str(&data).unwrap())
            })
            .collect()
    }

    /// An invitation's stored status (None: no such row).
    pub async fn invitation_status(&self, invitation: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status::text FROM workspace_invitations WHERE id = $1")
            .bind(invitation)
            .fetch_optional(&self.db.pool)
            .await
            .unwrap()
    }

    /// `user`'s role in `workspace` according to the database.
    pub async fn role_in_db(&self, workspace: Uuid, user: &TestUser) -> Option<String> {
        sqlx::query_scalar(
            "SELECT role::text FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        )
        .bind(workspace)
        .bind(user.id)
        .fetch_optional(&self.db.pool)
        .await
        .unwrap()
    }

    pub async fn owner_count(&self, workspace: Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner'",
        )
        .bind(workspace)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }
}

pub async fn read(res: reqwest::Response) -> TestResponse {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    TestResponse {
        status,
        headers,
        body,
    }
}

/// A problem body without the per-request fields, to compare two answers.
pub fn without_request_fields(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("request_id");
        o.remove("instance");
    }
    b
}
