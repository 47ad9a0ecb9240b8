//! Calls to identity providers: one awc client per worker, every call bounded by
//! `AUTH_PROVIDER_TIMEOUT_SECS` (connecting, sending and reading the whole body), bodies capped,
//! no redirects followed. A provider that hangs costs a sign-in its timeout, never a worker.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;

/// The largest provider answer read (discovery documents and key sets are a few KiB).
const MAX_BODY: usize = 256 * 1024;

/// What GitHub insists on, and what provider logs show.
const USER_AGENT: &str = concat!("frontend-gateway/", env!("CARGO_PKG_VERSION"));

/// Why a call to a provider failed (logged; the browser sees a next-auth error code).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Connecting or sending failed.
    #[error("could not reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// No whole answer within the timeout.
    #[error("{url} did not answer within {secs} s")]
    Timeout {
        /// Where.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// An answer that is not what was asked for (a status, or a body that does not parse).
    #[error("{url} answered {status}: {reason}")]
    Answer {
        /// Where.
        url: String,
        /// Its status.
        status: StatusCode,
        /// What was wrong (an OAuth `error` code, or the parse error).
        reason: String,
    },
}

/// A provider client (one per worker: awc's client is per thread).
#[derive(Clone)]
pub struct ProviderHttp {
    client: awc::Client,
    timeout: Duration,
}

impl std::fmt::Debug for ProviderHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHttp")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How a client authenticates at a token endpoint.
#[derive(Debug, Clone, Copy)]
pub enum ClientAuth<'a> {
    /// `Authorization: Basic` with the form-encoded id and secret (RFC 6749, section 2.3.1).
    Basic {
        /// The client id.
        id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
    /// `client_id` and `client_secret` in the form.
    Post {
        /// The client id.
        id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
}

impl ProviderHttp {
    /// A client whose calls each take at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        // rustls needs one process-wide crypto provider for https; an `Err` only means one is
        // installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = awc::Client::builder()
            .connector(awc::Connector::new().timeout(timeout))
            .timeout(timeout)
            .disable_redirects()
            .add_default_header((header::USER_AGENT, USER_AGENT))
            .finish();
        Self { client, timeout }
    }

    /// `GET url` (with `Authorization: Bearer` when `bearer` is given) as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
        accept: &str,
    ) -> Result<T, CallError> {
        let mut req = self.client.get(url).insert_header((header::ACCEPT, accept));
        if let Some(token) = bearer {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        }
        self.bounded(url, async {
            let res = req.send().await.map_err(|e| self.unreachable(url, &e))?;
            read_json(url, res).await
        })
        .await
    }

    /// `POST url` with a form (and the client's authentication), answered with JSON. An OAuth
    /// error answer (`{"error": ...}`, whatever its status) is a [`CallError::Answer`] naming it.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        auth: ClientAuth<'_>,
    ) -> Result<T, CallError> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut req = self
            .client
            .post(url)
            .insert_header((header::ACCEPT, "application/json"));
        match auth {
            ClientAuth::Basic { id, secret } => {
                let pair = format!("{}:{}", form_encode(id), form_encode(secret));
                req = req.insert_header((
                    header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(pair)),
                ));
            }
            ClientAuth::Post { id, secret } => {
                fields.push(("client_id", id));
                fields.push(("client_secret", secret));
            }
        }
        self.bounded(url, async {
            let res = req
                .send_form(&fields)
                .await
                .map_err(|e| self.unreachable(url, &e))?;
            read_json(url, res).await
        })
        .await
    }

    fn unreachable(&self, url: &str, e: &awc::error::SendRequestError) -> CallError {
        match e {
            awc::error::SendRequestError::Timeout => CallError::Timeout {
                url: url.to_owned(),
                secs: self.timeout.as_secs(),
            },
            other => CallError::Unreachable {
                url: url.to_owned(),
                reason: other.to_string(),
            },
        }
    }

    async fn bounded<T>(
        &self,
        url: &str,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                url: url.to_owned(),
                secs: self.timeout.as_secs(),
            }),
        }
    }
}

/// The body of `res` as JSON of type `T`; an error status, or an OAuth `{"error"}` body, is an
/// error naming the code.
async fn read_json<T: DeserializeOwned, S>(
    url: &str,
    mut res: awc::ClientResponse<S>,
) -> Result<T, CallError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status();
    let answer = |reason: String| CallError::Answer {
        url: url.to_owned(),
        status,
        reason,
    };
    let body = res
        .body()
        .limit(MAX_BODY)
        .await
        .map_err(|e| answer(format!("unreadable body ({e})")))?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| answer(format!("not JSON ({e})")))?;
    if let Some(code) = value.get("error").and_then(serde_json::Value::as_str) {
        return Err(answer(format!("error {}", printable(code, 64))));
    }
    if !status.is_success() {
        return Err(answer("an error status".to_owned()));
    }
    serde_json::from_value(value).map_err(|e| answer(format!("unexpected shape ({e})")))
}

/// `application/x-www-form-urlencoded` of one value.
pub fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `text` cut to `max` characters, control characters replaced: what a provider said, fit for
/// a log line.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
