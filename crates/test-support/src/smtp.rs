//! A real SMTP server as a test peer: [`MailSink`] runs `maildev` (the npm package, pinned in
//! `peers/maildev/`), which accepts every message over SMTP and shows what it received through
//! its REST API (`GET /email`, `DELETE /email/all`) and web page.
//!
//! Its npm packages are installed on first use under
//! `<target dir>/npm/maildev-<first 16 hex of sha256(package-lock.json)>/`, by the same rule and
//! file lock as the OpenID provider peer (`just peers` does the same ahead of time). It listens
//! on 127.0.0.1, on free ports, keeps its messages in a directory of its own (so
//! [`MailSink::start_again`] after [`MailSink::stop`] still shows what came before), and stops
//! when the [`MailSink`] is dropped or the test process dies (it exits when its stdin closes).
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! let sink = test_support::smtp::MailSink::start().await;
//! // ... point the code under test at sink.smtp_url(), make it send a message ...
//! let mail = sink
//!     .wait_for(|m| m.to == ["ada@example.com"], Duration::from_secs(10))
//!     .await;
//! assert!(mail.links()[0].starts_with("http://gateway.test/"));
//! # }
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::npm;

const PACKAGE_JSON: &str = include_str!("../peers/maildev/package.json");
const PACKAGE_LOCK: &str = include_str!("../peers/maildev/package-lock.json");
const SINK_JS: &str = include_str!("../peers/maildev/sink.js");

/// How long maildev may take to answer on both ports.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The addresses of `To`.
    pub to: Vec<String>,
    /// The `From` header as sent (`Gateway <no-reply@localhost>`).
    pub from: String,
    /// The decoded subject.
    pub subject: String,
    /// The plain-text part ("" when there is none).
    pub text: String,
    /// The HTML part ("" when there is none).
    pub html: String,
    /// The `Message-ID` header as sent, angle brackets included (`<id@domain>`).
    pub message_id: String,
    /// Every header by lower-case name (a repeated one joined with newlines).
    pub headers: BTreeMap<String, String>,
}

impl Mail {
    /// The absolute `http://` and `https://` URLs in the text part, in order.
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(start) = ["http://", "https://"]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min()
        {
            let tail = &rest[start..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
                .unwrap_or(tail.len());
            let link = tail[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
            links.push(link.to_owned());
            rest = &tail[end..];
        }
        links
    }
}

/// maildev's JSON for one message (`GET /email`).
#[derive(Deserialize)]
struct WireMail {
    #[serde(default)]
    to: Vec<WireAddress>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct WireAddress {
    address: String,
}

impl From<WireMail> for Mail {
    fn from(wire: WireMail) -> Self {
        let headers: BTreeMap<String, String> = wire
            .headers
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::String(s) => s,
                    Value::Array(values) => values
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    other => other.to_string(),
                };
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        Mail {
            to: wire.to.into_iter().map(|a| a.address).collect(),
            from: headers.get("from").cloned().unwrap_or_default(),
            subject: wire.subject,
            text: wire.text.unwrap_or_default(),
            html: wire.html.unwrap_or_default(),
            message_id: headers.get("message-id").cloned().unwrap_or_default(),
            headers,
        }
    }
}

/// A running maildev; dropping it stops the process and deletes its messages.
#[derive(Debug)]
pub struct MailSink {
    process: Option<Process>,
    dir: PathBuf,
    mail_dir: PathBuf,
    smtp_port: u16,
    web_port: u16,
    client: reqwest::Client,
}

#[derive(Debug)]
struct Process {
    child: Child,
    /// Held open: maildev exits when it closes (also when this process dies).
    _stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
}

impl MailSink {
    /// Installs the npm packages if needed and starts maildev on free ports of 127.0.0.1;
    /// waits (30 s at most) until it answers on both. Panics with its output if it does not.
    pub async fn start() -> MailSink {
        let dir = tokio::task::spawn_blocking(|| {
            npm::install(
                "maildev",
                PACKAGE_JSON,
                PACKAGE_LOCK,
                &[("sink.js", SINK_JS)],
            )
        })
        .await
        .unwrap_or_else(|e| panic!("installing maildev failed: {e}"));
        static SINKS: AtomicUsize = AtomicUsize::new(0);
        let mail_dir = std::env::temp_dir().join(format!(
            "mail-sink-{}-{}",
            std::process::id(),
            SINKS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&mail_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", mail_dir.display()));
        let mut sink = MailSink {
            process: None,
            dir,
            mail_dir,
            smtp_port: free_port(),
            web_port: free_port(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a reqwest client"),
        };
        sink.start_again().await;
        sink
    }

    /// `smtp://127.0.0.1:<port>` (no TLS, no credentials).
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp_port)
    }

    /// The web page and REST API, `http://127.0.0.1:<port>`.
    pub fn web_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    /// Every message received so far (across [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again)), oldest first. Panics when the sink is stopped.
    pub async fn messages(&self) -> Vec<Mail> {
        assert!(self.process.is_some(), "the mail sink is stopped");
        let url = format!("{}/email", self.web_url());
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        let wire: Vec<WireMail> = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not the expected JSON: {e}"));
        wire.into_iter().map(Mail::from).collect()
    }

    /// Deletes every message received so far.
    pub async fn clear(&self) {
        let url = format!("{}/email/all", self.web_url());
        let response = self
            .client
            .delete(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
        assert!(
            response.status().is_success(),
            "DELETE {url}: {}",
            response.status()
        );
    }

    /// The first message that `matches`, waiting for it up to `timeout` (polling); panics with
    /// the list of what did arrive when none does.
    pub async fn wait_for(&self, matches: impl Fn(&Mail) -> bool, timeout: Duration) -> Mail {
        let started = Instant::now();
        loop {
            let messages = self.messages().await;
            if let Some(mail) = messages.iter().find(|m| matches(m)) {
                return mail.clone();
            }
            if started.elapsed() >= timeout {
                let seen: Vec<String> = messages
                    .iter()
                    .map(|m| format!("  to {:?}: {:?} {}", m.to, m.subject, m.message_id))
                    .collect();
                panic!(
                    "no matching message within {timeout:?}; {} arrived:\n{}",
                    messages.len(),
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (both ports close; an SMTP client now finds nothing there). What it
    /// received is kept for [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    /// Starts the server (again) on the same ports, with the messages it had; waits until it
    /// answers. Does nothing when it is running.
    pub async fn start_again(&mut self) {
        if self.process.is_some() {
            return;
        }
        let mut child = Command::new("node")
            .arg(self.dir.join("sink.js"))
            .args(["--ip", "127.0.0.1", "--silent"])
            .args(["--smtp", &self.smtp_port.to_string()])
            .args(["--web", &self.web_port.to_string()])
            .arg("--mail-directory")
            .arg(&self.mail_dir)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `node` (Node.js 18 or later must be on PATH): {e}")
            });
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let mut process = Process {
            _stdin: child.stdin.take(),
            child,
            log,
        };
        let started = Instant::now();
        let healthz = format!("{}/healthz", self.web_url());
        loop {
            let smtp_up = tokio::net::TcpStream::connect(("127.0.0.1", self.smtp_port))
                .await
                .is_ok();
            let web_up = smtp_up
                && self
                    .client
                    .get(&healthz)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
            if web_up {
                break;
            }
            let exited = process.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() >= START_TIMEOUT {
                let _ = process.child.kill();
                let _ = process.child.wait();
                let log = process
                    .log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                panic!(
                    "maildev did not start on ports {} and {} ({}); its output:\n{log}",
                    self.smtp_port,
                    self.web_port,
                    exited.map_or_else(
                        || format!("not up within {START_TIMEOUT:?}"),
                        |s| format!("exited: {s}")
                    )
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.process = Some(process);
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(process) = &self.process
        {
            let log = process.log.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("maildev on {} output:\n{log}", self.smtp_url());
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

/// A port nobody listens on now (the OS's pick for port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_the_absolute_urls_of_the_text() {
        let mail = Mail {
            to: vec![],
            from: String::new(),
            subject: String::new(),
            text: "Go to https://a.example/x?t=1&u=2.\nOr (http://b.example/y), not ftp://c.\n\
                   <https://d.example/z>"
                .into(),
            html: String::new(),
            message_id: String::new(),
            headers: BTreeMap::new(),
        };
        assert_eq!(
            mail.links(),
            [
                "https://a.example/x?t=1&u=2",
                "http://b.example/y",
                "https://d.example/z"
            ]
        );
    }

    #[tokio::test]
    async fn a_message_sent_over_smtp_is_listed_and_kept_across_a_restart() {
        let mut sink = MailSink::start().await;
        assert!(sink.messages().await.is_empty());
        let message = "From: Tester <tester@example.com>\r\nTo: ada@example.com\r\n\
                       Subject: Hello\r\nMessage-ID: <one@example.com>\r\n\r\n\
                       See https://app.example/a\r\n";
        smtp_send(sink.smtp_port, "ada@example.com", message).await;
        let mail = sink
            .wait_for(|m| m.subject == "Hello", Duration::from_secs(5))
            .await;
        assert_eq!(mail.to, ["ada@example.com"]);
        assert_eq!(mail.from, "Tester <tester@example.com>");
        assert_eq!(mail.message_id, "<one@example.com>");
        assert_eq!(mail.links(), ["https://app.example/a"]);

        sink.stop();
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", sink.smtp_port))
                .await
                .is_err(),
            "stopped means nobody listens"
        );
        sink.start_again().await;
        assert_eq!(sink.messages().await, [mail]);
        sink.clear().await;
        assert!(sink.messages().await.is_empty());
    }

    /// A bare SMTP client: enough for one plain message.
    async fn smtp_send(port: u16, to: &str, message: &str) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        async fn reply(
            lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
        ) -> String {
            loop {
                let line = lines.next_line().await.unwrap().expect("an SMTP reply");
                if line.as_bytes().get(3) != Some(&b'-') {
                    return line;
                }
            }
        }
        assert!(reply(&mut lines).await.starts_with("220"));
        for (command, expected) in [
            ("EHLO test\r\n".to_owned(), "250"),
            ("MAIL FROM:<tester@example.com>\r\n".to_owned(), "250"),
            (format!("RCPT TO:<{to}>\r\n"), "250"),
            ("DATA\r\n".to_owned(), "354"),
            (format!("{message}.\r\n"), "250"),
            ("QUIT\r\n".to_owned(), "221"),
        ] {
            write.write_all(command.as_bytes()).await.unwrap();
            let answer = reply(&mut lines).await;
            assert!(answer.starts_with(expected), "{command:?}: {answer}");
        }
    }
}
