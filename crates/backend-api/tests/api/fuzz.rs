//! HTTP-level fuzzing of the backend: random JSON values, JSON-shaped
//! objects, raw bytes and content types as the body of every POST and PATCH, and random
//! `limit`/`cursor` query strings. Whatever arrives, the answer is never a 5xx, every 4xx is an
//! `application/problem+json` body with its status, and every 2xx is JSON.
//!
//! Property-based (proptest) rather than coverage-guided, so it runs on stable Rust. The number
//! of cases per property comes from `FUZZ_CASES` (default 256, so `just test` stays quick;
//! `just fuzz` runs many more). A failure prints the shrunk input.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

/// Cases per property: `FUZZ_CASES`, default 256.
pub fn fuzz_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::with_cases(fuzz_cases())
    })
}

/// A running backend with a workspace whose owner is the main caller.
struct Fixture {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    owner: TestUser,
    viewer: TestUser,
    member: TestUser,
    w: Uuid,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Close the pool while its runtime is still alive; the database itself is dropped by
        // `TestDatabase` (kept when the test failed).
        self.rt.block_on(self.app.db.pool.close());
    }
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, owner, viewer, member, w) = rt.block_on(async {
            let app = TestApp::spawn().await;
            let owner = app.user("owner@example.com").await;
            let viewer = app.user("viewer@example.com").await;
            let member = app.user("member@example.com").await;
            app.user("outsider@example.com").await;
            let w = app.workspace(&owner, "Fuzzed").await;
            app.join(w, &viewer, "viewer").await;
            app.join(w, &member, "member").await;
            for i in 0..3 {
                app.workspace(&owner, &format!("Page {i}")).await;
            }
            (app, owner, viewer, member, w)
        });
        Self {
            rt,
            app,
            owner,
            viewer,
            member,
            w,
        }
    }

    /// Sends a raw request and checks the answer's shape.
    fn check(
        &self,
        method: Method,
        path: &str,
        caller: &TestUser,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<u16, TestCaseError> {
        self.rt.block_on(async {
            let mut req = self
                .app
                .client
                .request(method.clone(), format!("{}{path}", self.app.base))
                .bearer_auth(&caller.token);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            let res = req
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: no answer: {e}")))?;
            let status = res.status();
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = res.bytes().await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {text}"
            );
            if status.is_client_error() {
                prop_assert_eq!(&ct, "application/problem+json", "{} {}", method, path);
                let problem: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    TestCaseError::fail(format!("{method} {path}: problem is not JSON: {e}"))
                })?;
                prop_assert_eq!(&problem["status"], &json!(status.as_u16()));
                prop_assert!(problem["title"].is_string(), "{}", text);
                prop_assert!(problem["request_id"].is_string(), "{}", text);
            } else if !bytes.is_empty() {
                prop_assert!(ct.starts_with("application/json"), "{method} {path}: {ct}");
                prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok(), "{}", text);
            }
            Ok(status.as_u16())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Strings a handler might trip on: control characters, NUL, very long, Unicode edge cases,
/// SQL and path syntax, valid roles and emails (so some requests get deep into the handlers).
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,120}",
        "[\\x00-\\x1f\\x7f]{1,8}",
        Just(String::new()),
        Just(" ".repeat(200)),
        Just("x".repeat(101)),
        Just("é".repeat(100)),
        Just("\u{0}".to_owned()),
        Just("a\u{0}b@example.com".to_owned()),
        Just("\u{202e}\u{feff}\u{200b}".to_owned()),
        Just("'; DROP TABLE users; --".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("%00%2e%2e".to_owned()),
        Just("owner".to_owned()),
        Just("admin".to_owned()),
        Just("member".to_owned()),
        Just("viewer".to_owned()),
        Just("OWNER".to_owned()),
        Just("owner@example.com".to_owned()),
        Just("OUTSIDER@example.com".to_owned()),
        Just("member@example.com".to_owned()),
        "[a-z]{1,10}@example\\.com",
        any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "name", "email", "role", "id", "workspace_id", "user_id", "created_by", "Name",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// An object with the fields the handlers read (each maybe absent), of any type.
fn shaped_object() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        3 => nasty_string().prop_map(Value::String),
        1 => json_value(),
    ];
    prop::collection::btree_map(field_name(), field, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// An object with `name`, `email` and `role`, each usually plausible (a real role, an
/// existing user's email, perhaps with a control character spliced in) and sometimes nasty:
/// this is what gets past the first checks and into the queries.
fn near_valid_object() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        3 => prop::sample::select(vec!["owner", "admin", "member", "viewer"]).prop_map(str::to_owned),
        1 => nasty_string(),
    ];
    let email = prop_oneof![
        2 => prop::sample::select(vec![
            "owner@example.com", "member@example.com", "viewer@example.com",
            "outsider@example.com", "OUTSIDER@EXAMPLE.COM",
        ])
        .prop_map(str::to_owned),
        2 => (any::<prop::sample::Index>(), "[\\x00-\\x1f\\x7f%_\\\\']{1,3}").prop_map(|(i, junk)| {
            let mut e = "outsider@example.com".to_owned();
            e.insert_str(i.index(e.len()), &junk);
            e
        }),
        2 => nasty_string(),
    ];
    let name = prop_oneof![2 => "[ -~]{1,40}", 1 => nasty_string()];
    let drop = || prop::bool::weighted(0.1);
    (name, email, role, (drop(), drop(), drop())).prop_map(|(n, e, r, (dn, de, dr))| {
        let mut o = Map::new();
        if !dn {
            o.insert("name".into(), Value::String(n));
        }
        if !de {
            o.insert("email".into(), Value::String(e));
        }
        if !dr {
            o.insert("role".into(), Value::String(r));
        }
        Value::Object(o)
    })
}

/// A body: JSON text of any value or a shaped object, or raw bytes; with a content type.
fn body() -> impl Strategy<Value = (Option<String>, Option<Vec<u8>>)> {
    let content_type = prop_oneof![
        8 => Just(Some("application/json".to_owned())),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("application/problem+json".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let payload = prop_oneof![
        6 => near_valid_object().prop_map(|v| Some(v.to_string().into_bytes())),
        4 => shaped_object().prop_map(|v| Some(v.to_string().into_bytes())),
        2 => json_value().prop_map(|v| Some(v.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(Some),
        1 => "\\PC{0,200}".prop_map(|s| Some(s.into_bytes())),
        // Deeply nested, and just past the 16 KiB limit.
        1 => (1usize..400).prop_map(|n| Some(format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes())),
        1 => Just(Some(json!({ "name": "x".repeat(17 * 1024) }).to_string().into_bytes())),
        1 => Just(None),
    ];
    (content_type, payload)
}

/// A percent-encoded query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// `limit` values: numbers in and out of range, overflowing, and garbage.
fn limit() -> impl Strategy<Value = String> {
    prop_oneof![
        (-5i64..110).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999".to_owned()),
        Just("1e2".to_owned()),
        Just("+5".to_owned()),
        Just(" 5".to_owned()),
        Just(String::new()),
        nasty_string(),
    ]
}

/// `cursor` values: well-formed cursors with any timestamp (far past and future included),
/// malformed ones, and garbage.
fn cursor() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<i128>(), any::<u128>())
            .prop_map(|(n, id)| b64(&format!("{n}_{}", Uuid::from_u128(id)))),
        (
            -400_000_000_000_000_000_000i128..400_000_000_000_000_000_000i128,
            any::<u128>()
        )
            .prop_map(|(n, id)| b64(&format!("{n}_{}", Uuid::from_u128(id)))),
        (any::<i64>(), nasty_string()).prop_map(|(n, s)| b64(&format!("{n}_{s}"))),
        nasty_string().prop_map(|s| b64(&s)),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        }),
        nasty_string(),
    ]
}

/// A whole query string: `limit` and `cursor` (each maybe absent or repeated), other keys,
/// or raw text.
fn query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        3 => limit().prop_map(|v| format!("limit={}", encode(&v))),
        3 => cursor().prop_map(|v| format!("cursor={}", encode(&v))),
        1 => (nasty_string(), nasty_string()).prop_map(|(k, v)| format!("{}={}", encode(&k), encode(&v))),
        1 => Just("limit".to_owned()),
        1 => Just("cursor".to_owned()),
    ];
    prop_oneof![
        4 => prop::collection::vec(pair, 0..4).prop_map(|p| p.join("&")),
        1 => "[!-~&&[^#]]{0,80}",
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

#[test]
fn fuzz_json_bodies_of_every_post_and_patch_never_5xx_and_4xx_are_problems() {
    let fx = Fixture::new();
    let w = fx.w;
    let routes = [
        (Method::POST, "/workspaces".to_owned()),
        (Method::PATCH, format!("/workspaces/{w}")),
        (Method::POST, format!("/workspaces/{w}/invitations")),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", fx.member.id),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", fx.viewer.id),
        ),
        (
            Method::PATCH,
            format!("/workspaces/{w}/members/{}", Uuid::now_v7()),
        ),
    ];
    let strategy = (0..routes.len(), 0..3usize, body());
    runner()
        .run(&strategy, |(route, who, (content_type, payload))| {
            let (method, path) = &routes[route];
            let caller = [&fx.owner, &fx.member, &fx.viewer][who];
            fx.check(
                method.clone(),
                path,
                caller,
                content_type.as_deref(),
                payload,
            )?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The owner is still an owner of the fuzzed workspace: no body could take it away.
    let owners = fx.rt.block_on(fx.app.owner_count(w));
    assert!(owners >= 1);
    // Whatever was invited, nobody joined without accepting.
    let members: i64 = fx
        .rt
        .block_on(
            sqlx::query_scalar("SELECT count(*) FROM workspace_members WHERE workspace_id = $1")
                .bind(w)
                .fetch_one(&fx.app.db.pool),
        )
        .unwrap();
    assert_eq!(members, 3, "owner, viewer, member");
}

#[test]
fn fuzz_limit_and_cursor_query_strings_never_5xx_and_4xx_are_problems() {
    let fx = Fixture::new();
    runner()
        .run(&query(), |q| {
            let status = fx.check(
                Method::GET,
                &format!("/workspaces?{q}"),
                &fx.owner,
                None,
                None,
            )?;
            prop_assert!(status == 200 || status == 400, "?{}: {}", q, status);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn fuzz_path_ids_never_5xx_and_4xx_are_problems() {
    // Ids in the path: random strings where a UUID belongs, on every method of every route.
    let fx = Fixture::new();
    let segment = prop_oneof![
        nasty_string().prop_map(|s| encode(&s)),
        any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        Just(fx.w.to_string()),
        Just(fx.member.id.to_string()),
        Just(fx.w.simple().to_string()),
        Just(fx.w.to_string().to_uppercase()),
    ];
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ]);
    let strategy = (method, segment.clone(), segment, 0..7usize, body());
    runner()
        .run(&strategy, |(method, a, b, shape, (ct, payload))| {
            let path = match shape {
                0 => format!("/workspaces/{a}"),
                1 => format!("/workspaces/{a}/members"),
                2 => format!("/workspaces/{a}/members/{b}"),
                3 => format!("/workspaces/{a}/invitations"),
                4 => format!("/workspaces/{a}/invitations/{b}"),
                5 => format!("/invitations/{a}/accept"),
                _ => format!("/invitations/{a}/decline"),
            };
            // The viewer: deletes and changes are refused, so the fixture survives.
            fx.check(method, &path, &fx.viewer, ct.as_deref(), payload)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// Regressions: what the fuzzers found, pinned as plain tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fuzz_regression_control_characters_in_an_email_are_422_not_500() {
    // Postgres refuses NUL in a text parameter; the lookup used to answer 500.
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    app.user("outsider@example.com").await;
    let w = app.workspace(&owner, "Team").await;
    for email in [
        "out\u{0}sider@example.com",
        "\u{0}",
        "outsider@example.com\u{1b}",
    ] {
        let res = app
            .post(
                &format!("/workspaces/{w}/invitations"),
                &owner,
                json!({ "email": email, "role": "member" }),
            )
            .await;
        assert_eq!(res.problem(422)["errors"][0]["field"], "email", "{email:?}");
    }
}

#[tokio::test]
async fn fuzz_regression_a_cursor_outside_postgres_range_is_400_not_500() {
    // `time` accepts years Postgres' timestamptz cannot hold; such a cursor used to reach the
    // query as a parameter Postgres refused (500).
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    for nanos in ["-210866803200000000000", "253402300800000000000"] {
        let cursor = b64(&format!("{nanos}_{}", Uuid::nil()));
        let res = app
            .get(&format!("/workspaces?cursor={cursor}"), &owner)
            .await;
        assert_eq!(res.problem(400)["errors"][0]["field"], "cursor", "{nanos}");
    }
}
