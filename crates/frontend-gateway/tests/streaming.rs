//! 100 MB up and down through the gateway with flat memory. Its own test binary, so no other
//! test's allocations show in the process's peak memory.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "api/upstream.rs"]
#[allow(dead_code)]
mod upstream;

use bytes::Bytes;
use futures_util::StreamExt;
use helpers::{TestApp, Upstream};

const SIZE: usize = 100 * 1024 * 1024;
/// What the whole process (client, gateway, upstream) may grow by; buffering either body
/// would take at least 100 MB.
const MAX_GROWTH_KB: u64 = 40 * 1024;

/// The peak resident set size, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_stream_through_with_flat_memory() {
    let app = TestApp::spawn_with(Upstream::Url(upstream::spawn()), |_| {}).await;
    let browser = app.browser();
    // Warm up (pools, buffers) before measuring.
    assert_eq!(browser.get("/api/download/1024").await.status(), 200);
    let before = peak_rss_kb();

    let chunk = Bytes::from(vec![b'u'; 64 * 1024]);
    let chunks = SIZE / chunk.len();
    let body = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let res = browser
        .send(
            browser
                .request(reqwest::Method::POST, "/api/upload")
                .header("content-length", SIZE)
                .body(reqwest::Body::wrap_stream(body)),
        )
        .await;
    assert_eq!(res.status(), 200);
    let echo: serde_json::Value = res.json().await.unwrap();
    assert_eq!(echo["bytes"], SIZE);

    let res = browser.get(&format!("/api/download/{SIZE}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], SIZE.to_string().as_str());
    let mut received = 0;
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, SIZE);

    let growth = peak_rss_kb().saturating_sub(before);
    eprintln!("peak memory grew by {growth} KiB (before: {before} KiB)");
    assert!(growth < MAX_GROWTH_KB, "peak memory grew by {growth} KiB");
}
