//! An authenticated HTTP client for the cloud APIs: bearer tokens from a
//! [`TokenCache`], a fresh token after a 401, and retries with backoff on what the
//! provider's classifier calls throttling or a transient failure (honouring
//! `Retry-After`). Answer bodies are read through a spill buffer: up to 32 MiB in memory,
//! the rest in a temporary file, never more than [`ApiClient::max_answer_bytes`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use legacyflo_core::spill::{SpillBuffer, SpillError, SpillLimits};
use legacyflo_core::{Error, ErrorKind, Result};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tracing::{debug, warn};

use crate::oauth::TokenCache;

/// What to do with an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Use it.
    Ok,
    /// Throttled: wait (the hinted delay, else the backoff) and send again.
    Throttled(Option<Duration>, String),
    /// A transient failure: back off and send again.
    Transient(String),
    /// Give up with this category and message.
    Fail(ErrorKind, String),
}

/// How often and how long to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff delay; doubled on each retry (with jitter).
    pub base_delay: Duration,
    /// Longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
        }
    }
}

/// Counters of one client, for reports, tests and benchmarks.
#[derive(Debug, Default)]
pub struct ApiStats {
    /// Requests sent (each retry counts).
    pub requests: AtomicU64,
    /// Answers classified as throttling (429, quota 403, 503 with Retry-After…).
    pub throttled: AtomicU64,
    /// Transient failures retried (5xx, dropped connections).
    pub transient: AtomicU64,
    /// 401 answers that led to a new token.
    pub reauthenticated: AtomicU64,
}

impl ApiStats {
    /// A snapshot: (requests, throttled, transient, reauthenticated).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
            self.transient.load(Ordering::Relaxed),
            self.reauthenticated.load(Ordering::Relaxed),
        )
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(3600.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(secs.unsigned_abs().min(3_600_000)))
}

/// Why [`ApiClient::send_checked`] gave up.
#[derive(Debug)]
pub struct Failed {
    /// The error, as [`ApiClient::send`] returns it.
    pub error: Error,
    /// The status of the last answer; `None` when none came (the request could not be
    /// sent, or the connection broke while the answer was read).
    pub status: Option<StatusCode>,
}

impl Failed {
    /// Whether the failure is the one resource's own: the server answered (after the
    /// retries), and not with throttling, an authentication failure or a cancel. A source
    /// reports such a message as unreadable and goes on; other failures (the network, the
    /// mailbox's quota, the credentials) end the stream with the error, so that the run is
    /// resumed rather than the rest of the mailbox skipped.
    pub fn is_per_item(&self) -> bool {
        self.status.is_some()
            && !matches!(self.error, Error::Cancelled)
            && !matches!(
                self.error.kind(),
                ErrorKind::Unauthenticated | ErrorKind::RateLimited
            )
    }
}

/// The default [`ApiClient::max_answer_bytes`]: 4 GiB.
pub const DEFAULT_MAX_ANSWER_BYTES: u64 = 4 << 30;

/// An authenticated client of one API for one mailbox.
pub struct ApiClient {
    backend: &'static str,
    http: reqwest::Client,
    tokens: Option<Arc<TokenCache>>,
    policy: RetryPolicy,
    max_answer: u64,
    stats: Arc<ApiStats>,
    /// Until when every request waits: the server asked this client (mailbox) to back off.
    pause: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiClient({}, {:?})", self.backend, self.tokens)
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl ApiClient {
    /// A client named `backend` (for errors) with tokens from `tokens`.
    pub fn new(
        backend: &'static str,
        http: reqwest::Client,
        tokens: Arc<TokenCache>,
        policy: RetryPolicy,
    ) -> ApiClient {
        ApiClient {
            backend,
            http,
            tokens: Some(tokens),
            policy,
            max_answer: DEFAULT_MAX_ANSWER_BYTES,
            stats: Arc::new(ApiStats::default()),
            pause: std::sync::Mutex::new(None),
        }
    }

    /// A client named `backend` that authenticates by itself (Basic auth in the request
    /// `build` makes): `build` is given an empty token, and a 401 is final.
    pub fn without_tokens(
        backend: &'static str,
        http: reqwest::Client,
        policy: RetryPolicy,
    ) -> ApiClient {
        ApiClient {
            backend,
            http,
            tokens: None,
            policy,
            max_answer: DEFAULT_MAX_ANSWER_BYTES,
            stats: Arc::new(ApiStats::default()),
            pause: std::sync::Mutex::new(None),
        }
    }

    /// The same client with another limit on an answer's body: a longer body is not read
    /// further and the request fails with [`ErrorKind::Protocol`] (not retried).
    pub fn with_max_answer_bytes(mut self, limit: u64) -> ApiClient {
        self.max_answer = limit;
        self
    }

    /// The largest answer body read.
    pub fn max_answer_bytes(&self) -> u64 {
        self.max_answer
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ApiStats> {
        self.stats.clone()
    }

    /// The token cache (`None` for a client built [`without_tokens`](Self::without_tokens)).
    pub fn tokens(&self) -> Option<&Arc<TokenCache>> {
        self.tokens.as_ref()
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(16));
        // Jitter from the clock's sub-second part: up to a quarter of the delay.
        let nanos = u64::from(chrono::Utc::now().timestamp_subsec_nanos());
        let jitter = exp.mul_f64((nanos % 1000) as f64 / 4000.0);
        (exp + jitter).min(self.policy.max_delay)
    }

    /// Sends the request `build` makes (given the client and a bearer token) until
    /// `classify` accepts the answer, retrying throttled and transient answers up to the
    /// policy's attempts. `what` names the request in errors (never a token).
    pub async fn send<B, C>(&self, what: &str, build: B, classify: C) -> Result<Answer>
    where
        B: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync,
        C: Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Send + Sync,
    {
        self.send_checked(what, build, classify)
            .await
            .map_err(|f| f.error)
    }

    /// [`send`](Self::send), saying on failure whether the server answered (see
    /// [`Failed::is_per_item`]).
    pub async fn send_checked<B, C>(
        &self,
        what: &str,
        build: B,
        classify: C,
    ) -> std::result::Result<Answer, Failed>
    where
        B: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync,
        C: Fn(StatusCode, &HeaderMap, &[u8]) -> Verdict + Send + Sync,
    {
        let mut attempt = 0u32;
        let mut reauth = 0u32;
        let fail = |error: Error, status: Option<StatusCode>| Failed { error, status };
        loop {
            self.wait_for_pause().await;
            let (token, generation) = match &self.tokens {
                Some(t) => {
                    let (token, g) = t
                        .token_with_generation()
                        .await
                        .map_err(|e| fail(e.into(), None))?;
                    (Some(token), g)
                }
                None => (None, 0),
            };
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = build(&self.http, token.as_ref().map_or("", |t| t.expose()))
                .send()
                .await;
            let (delay, reason, kind, last_status) = match sent {
                Err(e) => {
                    self.stats.transient.fetch_add(1, Ordering::Relaxed);
                    (
                        None,
                        format!("{}", e.without_url()),
                        ErrorKind::Temporary,
                        None,
                    )
                }
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = match read_body(resp, self.max_answer).await {
                        Ok(b) => b,
                        Err(BodyError::TooLarge(limit)) => {
                            return Err(fail(
                                self.error(
                                    ErrorKind::Protocol,
                                    what,
                                    format!(
                                        "the answer is larger than {limit} bytes; not read further"
                                    ),
                                    None,
                                ),
                                Some(status),
                            ));
                        }
                        Err(BodyError::Spill(e)) => {
                            return Err(fail(
                                self.error(ErrorKind::Other, what, e.to_string(), None),
                                None,
                            ));
                        }
                        Err(BodyError::Transport(e)) => {
                            self.stats.transient.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                            if attempt >= self.policy.max_attempts {
                                return Err(fail(
                                    self.error(
                                        ErrorKind::Temporary,
                                        what,
                                        format!("reading the answer: {}", e.without_url()),
                                        None,
                                    ),
                                    None,
                                ));
                            }
                            tokio::time::sleep(self.backoff(attempt)).await;
                            continue;
                        }
                    };
                    if let (Some(tokens), true) = (
                        &self.tokens,
                        status == StatusCode::UNAUTHORIZED && reauth < 2,
                    ) {
                        // Expired or revoked: drop the token and ask for a new one.
                        reauth += 1;
                        self.stats.reauthenticated.fetch_add(1, Ordering::Relaxed);
                        debug!(backend = self.backend, what, "401: fetching a new token");
                        tokens.invalidate(generation).await;
                        continue;
                    }
                    match classify(status, &headers, &body) {
                        Verdict::Ok => {
                            return Ok(Answer {
                                status,
                                headers,
                                body,
                            });
                        }
                        Verdict::Throttled(d, why) => {
                            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                            (d, why, ErrorKind::RateLimited, Some(status))
                        }
                        Verdict::Transient(why) => {
                            self.stats.transient.fetch_add(1, Ordering::Relaxed);
                            (None, why, ErrorKind::Temporary, Some(status))
                        }
                        Verdict::Fail(kind, why) => {
                            return Err(fail(self.error(kind, what, why, None), Some(status)));
                        }
                    }
                }
            };
            attempt += 1;
            if attempt >= self.policy.max_attempts {
                return Err(fail(
                    self.error(
                        kind,
                        what,
                        format!("{reason} (after {attempt} attempts)"),
                        delay,
                    ),
                    last_status,
                ));
            }
            let wait = delay
                .map(|d| d.min(self.policy.max_delay))
                .unwrap_or_else(|| self.backoff(attempt));
            if let Some(d) = delay {
                // The hint holds for the mailbox: every request of this client waits.
                self.pause_for(d.min(self.policy.max_delay));
            }
            warn!(backend = self.backend, what, %reason, ?wait, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn pause_for(&self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        if let Ok(mut p) = self.pause.lock() {
            *p = Some(p.map_or(until, |old| old.max(until)));
        }
    }

    async fn wait_for_pause(&self) {
        let until = self.pause.lock().ok().and_then(|p| *p);
        if let Some(u) = until {
            tokio::time::sleep_until(u).await;
        }
    }

    fn error(
        &self,
        kind: ErrorKind,
        what: &str,
        message: String,
        retry_after: Option<Duration>,
    ) -> Error {
        let mut e = Error::backend(self.backend, kind, format!("{what}: {message}"));
        if let Error::Backend { retry_after: r, .. } = &mut e {
            *r = retry_after;
        }
        e
    }
}

/// Why an answer's body was not read.
enum BodyError {
    /// The connection broke.
    Transport(reqwest::Error),
    /// It is longer than the limit.
    TooLarge(u64),
    /// The temporary file failed.
    Spill(SpillError),
}

/// Reads a body piece by piece into a spill buffer, no further than `limit` bytes (an
/// announced `Content-Length` is only a hint).
async fn read_body(
    mut resp: reqwest::Response,
    limit: u64,
) -> std::result::Result<Bytes, BodyError> {
    let limits = SpillLimits {
        max_bytes: limit,
        ..SpillLimits::default()
    };
    let mut buf = match SpillBuffer::with_expected(limits, None, resp.content_length().unwrap_or(0))
    {
        Ok(b) => b,
        Err(SpillError::TooLarge { limit }) => return Err(BodyError::TooLarge(limit)),
        Err(e) => return Err(BodyError::Spill(e)),
    };
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        match buf.push(&chunk) {
            Ok(()) => {}
            Err(SpillError::TooLarge { limit }) => return Err(BodyError::TooLarge(limit)),
            Err(e) => return Err(BodyError::Spill(e)),
        }
    }
    buf.finish().map_err(BodyError::Spill)
}
