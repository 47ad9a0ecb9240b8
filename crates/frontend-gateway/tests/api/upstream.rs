//! A test upstream that tells what it received.
//!
//! * any path: `{method, path, query, headers: {name: [values]}}`, with two `Set-Cookie`s in
//!   the answer;
//! * `POST /upload`: counts the streamed body, `{bytes}`;
//! * `GET /download/{n}`: streams `n` bytes;
//! * `GET /stall`: answers after 5 s;
//! * `GET /events`: server-sent events, one every 200 ms, forever;
//! * `GET /events-then-silence`: one event, then nothing (and no end), forever;
//! * `GET /missing`: its own 404, in plain text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use futures_util::StreamExt;

/// Starts the upstream on port 0; returns its base URL.
pub fn spawn() -> String {
    spawn_counting().0
}

/// Like [`spawn`], also counting the TCP connections it accepts.
pub fn spawn_counting() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let server = HttpServer::new(|| {
        App::new()
            .route("/upload", web::post().to(upload))
            .route("/download/{n}", web::get().to(download))
            .route("/stall", web::get().to(stall))
            .route("/events", web::get().to(events))
            .route("/events-then-silence", web::get().to(events_then_silence))
            .route("/missing", web::get().to(missing))
            .default_service(web::to(echo))
    })
    .on_connect(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), connections)
}

/// Starts an upstream that answers every connection with the bytes of `response` (for headers
/// actix-web would not let a handler send, such as its own `Connection`); returns its base URL.
pub async fn spawn_raw(response: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

async fn echo(req: HttpRequest, body: Bytes) -> HttpResponse {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap_or("<binary>").to_owned());
    }
    HttpResponse::Ok()
        .append_header(("set-cookie", "upstream-a=1; Path=/"))
        .append_header(("set-cookie", "upstream-b=2; Path=/"))
        .append_header(("x-upstream-kept", "yes"))
        .json(serde_json::json!({
            "method": req.method().as_str(),
            "path": req.path(),
            "query": req.query_string(),
            "headers": headers,
            "body_len": body.len(),
        }))
}

async fn missing() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain")
        .body("the upstream has no such page")
}

async fn upload(mut payload: web::Payload) -> HttpResponse {
    let mut bytes = 0usize;
    while let Some(chunk) = payload.next().await {
        bytes += chunk.unwrap().len();
    }
    HttpResponse::Ok().json(serde_json::json!({ "bytes": bytes }))
}

async fn download(n: web::Path<usize>) -> HttpResponse {
    const CHUNK: usize = 64 * 1024;
    let total = n.into_inner();
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let chunk = chunk.clone();
        async move {
            if sent >= total {
                return None;
            }
            let len = CHUNK.min(total - sent);
            Some((Ok::<_, std::io::Error>(chunk.slice(..len)), sent + len))
        }
    });
    HttpResponse::Ok()
        .no_chunking(total as u64)
        .content_type("application/octet-stream")
        .streaming(stream)
}

async fn stall() -> HttpResponse {
    tokio::time::sleep(Duration::from_secs(5)).await;
    HttpResponse::Ok().finish()
}

fn event_stream(
    stream: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(stream)
}

async fn events() -> HttpResponse {
    event_stream(futures_util::stream::unfold(0u64, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some((
            Ok::<_, std::io::Error>(Bytes::from(format!("id: {n}\ndata: tick {n}\n\n"))),
            n + 1,
        ))
    }))
}

async fn events_then_silence() -> HttpResponse {
    let first = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(b"data: hello\n\n"))
    });
    event_stream(first.chain(futures_util::stream::pending()))
}
