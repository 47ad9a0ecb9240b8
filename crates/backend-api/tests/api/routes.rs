//! The route table, the OpenAPI document and what the server answers agree: every documented
//! operation is served, every served route is documented (or marked undocumented in the
//! table), and every other method on a known path is a 405 naming exactly the path's methods.

use std::collections::{BTreeMap, BTreeSet};

use backend_api::routes::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

/// Every method tried on every path.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// `path` with each `{parameter}` replaced by a fresh UUID.
fn fill(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("a closed parameter") + start;
        out.push_str(&rest[..start]);
        out.push_str(&Uuid::now_v7().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_document_the_route_table_and_the_server_agree_on_every_route() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let res = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.body;

    // The document's (path, method) pairs are exactly the table's documented ones.
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            let method = method.to_uppercase();
            if METHODS.contains(&method.as_str()) || method == "TRACE" {
                documented.entry(path.clone()).or_default().insert(method);
            }
        }
    }
    let table = |documented: bool| -> BTreeMap<String, BTreeSet<String>> {
        ROUTES
            .iter()
            .filter(|r| r.documented == documented)
            .map(|r| {
                let methods = r.methods.iter().map(|m| (*m).to_owned()).collect();
                (r.path.to_owned(), methods)
            })
            .collect()
    };
    assert_eq!(documented, table(true), "the document and the route table");
    let undocumented = table(false);
    assert!(
        undocumented.contains_key("/openapi.json"),
        "{undocumented:?}"
    );
    for path in undocumented.keys() {
        assert!(doc["paths"][path].is_null(), "{path} is documented");
    }

    let served: BTreeMap<String, BTreeSet<String>> =
        documented.into_iter().chain(undocumented).collect();
    for (path, methods) in &served {
        // Every operation reaches its handler: neither a 405 nor the unknown-route 404.
        for method in methods {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let res = app
                .send(method.clone(), &fill(path), Some(&ada), Some(json!({})))
                .await;
            assert_ne!(
                res.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                res.body
            );
            assert!(
                !(res.status == StatusCode::NOT_FOUND && res.body["detail"] == "No such route."),
                "{method} {path} is not routed"
            );
        }
        // Every other method is a 405 whose `Allow` lists exactly the path's methods.
        for other in METHODS.iter().filter(|m| !methods.contains(**m)) {
            let method = Method::from_bytes(other.as_bytes()).unwrap();
            let res = app
                .send(method.clone(), &fill(path), Some(&ada), None)
                .await;
            assert_eq!(
                res.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow: BTreeSet<String> = res
                .header("allow")
                .unwrap_or_default()
                .split(", ")
                .map(str::to_owned)
                .collect();
            assert_eq!(&allow, methods, "Allow of {method} {path}");
        }
    }
}
