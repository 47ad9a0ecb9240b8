//! The proxy's one retry: a bodiless GET, HEAD or OPTIONS whose upstream connection failed
//! before any of the answer is sent again, once, on another connection; a request with a body
//! never is, nor one whose upstream had started answering. Against a raw upstream that misbehaves
//! on a script and counts the requests it read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, Upstream};

/// What the upstream does with one request.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// `200 ok`, keeping the connection open.
    Answer,
    /// Closes the connection without a byte (a replica going away; a keep-alive connection
    /// closed under the request).
    Close,
    /// Closes the connection with a reset (the request left unread).
    Reset,
    /// Sends these bytes, then closes.
    Partial(&'static str),
}

/// An upstream acting out `script(n)` on the `n`th request it reads (from 0, over every
/// connection); returns its URL and the count of requests read.
async fn scripted(script: fn(usize) -> Act) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, script, counter.clone()));
        }
    });
    (url, requests)
}

async fn serve(mut stream: TcpStream, script: fn(usize) -> Act, requests: Arc<AtomicUsize>) {
    loop {
        if let Act::Reset = script(requests.load(Ordering::SeqCst)) {
            // Wait for the request, count it, and close with it unread: the kernel resets.
            let mut peek = [0u8; 1];
            if !matches!(stream.peek(&mut peek).await, Ok(1)) {
                return;
            }
            requests.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let n = requests.fetch_add(1, Ordering::SeqCst);
        match script(n) {
            Act::Answer => {
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            Act::Close | Act::Reset => return,
            Act::Partial(bytes) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
                return;
            }
        }
    }
}

async fn gateway(url: String) -> TestApp {
    TestApp::spawn_with(Upstream::Url(url), |_| {}).await
}

#[tokio::test]
async fn a_get_whose_first_connection_closes_unanswered_is_answered_by_the_second_attempt() {
    let (url, requests) = scripted(|n| if n == 0 { Act::Close } else { Act::Answer }).await;
    let app = gateway(url).await;
    let res = reqwest::get(format!("{}/api/things", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_get_whose_first_connection_is_reset_is_answered_by_the_second_attempt() {
    let (url, requests) = scripted(|n| if n == 0 { Act::Reset } else { Act::Answer }).await;
    let app = gateway(url).await;
    for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
        requests.store(0, Ordering::SeqCst);
        let res = reqwest::Client::new()
            .request(method.clone(), format!("{}/api/things", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method}");
        assert_eq!(requests.load(Ordering::SeqCst), 2, "{method}");
    }
}

#[tokio::test]
async fn a_stale_keep_alive_connection_closed_under_a_get_is_replaced_by_a_new_one() {
    // The first request is answered and its connection kept; the upstream then closes that
    // connection as the second request arrives (a backend replica shutting down).
    let (url, requests) = scripted(|n| if n == 1 { Act::Close } else { Act::Answer }).await;
    let app = gateway(url).await;
    let client = reqwest::Client::new();
    for expected in [1, 3] {
        let res = client
            .get(format!("{}/api/things", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "ok");
        assert_eq!(requests.load(Ordering::SeqCst), expected);
    }
}

#[tokio::test]
async fn a_post_with_a_body_is_never_retried() {
    let (url, requests) = scripted(|n| if n == 0 { Act::Close } else { Act::Answer }).await;
    let app = gateway(url).await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/things", app.address))
        .header("content-type", "application/json")
        .body(r#"{"name":"once"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "a problem"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1, "seen once, not twice");
}

#[tokio::test]
async fn a_get_whose_upstream_had_started_answering_is_not_retried() {
    // Part of the head, then the connection closes.
    let (url, requests) = scripted(|n| {
        if n == 0 {
            Act::Partial("HTTP/1.1 200 OK\r\ncontent-le")
        } else {
            Act::Answer
        }
    })
    .await;
    let app = gateway(url).await;
    let res = reqwest::get(format!("{}/api/things", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // The whole head and part of the body: what reaches the client breaks off (the head may
    // not even be flushed before the connection closes), and the upstream is not asked again.
    let (url, requests) = scripted(|n| {
        if n == 0 {
            Act::Partial("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart")
        } else {
            Act::Answer
        }
    })
    .await;
    let app = gateway(url).await;
    let answer = match reqwest::get(format!("{}/api/things", app.address)).await {
        Ok(res) => res.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(answer.is_err(), "the answer breaks off: {answer:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
