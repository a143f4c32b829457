//! Local stand-ins for the cloud APIs that cannot be reached from here: token endpoints
//! (Google JWT bearer grant, Microsoft client credentials), the Gmail API and Microsoft
//! Graph. Each answers as the provider's documentation specifies (status codes, JSON
//! shapes, paging, batch format, throttling headers and error bodies), listens on
//! 127.0.0.1 at a random port, and stops when its handle is dropped.
//!
//! Access tokens are HS256 JWTs (`sub`, `scope`, `iat`, `nbf`, `exp`) signed with
//! [`jwt_secret`], the same secret the test Dovecot validates XOAUTH2 tokens with, so one
//! token endpoint serves the API servers and real IMAP alike.

pub mod ews;
pub mod gmail;
pub mod graph;
pub mod token;
pub mod xml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use legacyflo_core::{Flag, FolderPath, Message};
use serde::{Deserialize, Serialize};

/// The HS256 secret of access tokens: `TEST_JWT_HS256_SECRET` (set by the test servers'
/// env file) or the test Dovecot's default.
pub fn jwt_secret() -> String {
    std::env::var("TEST_JWT_HS256_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "test-hmac-secret-0123456789abcdef".to_string())
}

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The mailbox (Google) or `app:{client_id}` (Microsoft).
    pub sub: String,
    /// The granted scope.
    pub scope: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
}

/// Mints an access token for `sub` with `scope`, valid for `ttl`.
pub fn mint_access_token(sub: &str, scope: &str, ttl: Duration) -> String {
    let now = Utc::now().timestamp();
    let claims = AccessClaims {
        sub: sub.to_string(),
        scope: scope.to_string(),
        iat: now,
        nbf: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(jwt_secret().as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// Verifies an `Authorization` header's bearer token: signature, expiry (no leeway) and
/// that its scope includes `scope`. `Err` says why, for the 401 body.
pub fn verify_bearer(header: Option<&str>, scope: &str) -> Result<AccessClaims, String> {
    let h = header.ok_or("no Authorization header")?;
    let token = h
        .strip_prefix("Bearer ")
        .ok_or("Authorization is not a Bearer token")?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 0;
    v.validate_nbf = true;
    v.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
    let data = jsonwebtoken::decode::<AccessClaims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(jwt_secret().as_bytes()),
        &v,
    )
    .map_err(|e| format!("invalid token: {e}"))?;
    if !data.claims.scope.split(' ').any(|s| s == scope) {
        return Err(format!(
            "token scope `{}` lacks `{scope}`",
            data.claims.scope
        ));
    }
    Ok(data.claims)
}

/// A message as a cloud server stores it.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// The server's id.
    pub id: String,
    /// The folder (Graph) or the label name (Gmail) it was seeded under.
    pub folder: FolderPath,
    /// Its bytes.
    pub raw: Bytes,
    /// When it was received.
    pub received: DateTime<Utc>,
    /// Its flags.
    pub flags: Vec<Flag>,
}

/// The date a seeded message is stored with: its internal date, else its `Date:` header,
/// else 2020-01-01.
pub fn received_of(m: &Message) -> DateTime<Utc> {
    m.effective_date()
        .unwrap_or_else(|| DateTime::<Utc>::from_timestamp(1_577_836_800, 0).expect("date"))
}

/// A running server: its base URL; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Serves `app` on 127.0.0.1 at a random port (needs a tokio runtime).
pub async fn serve(app: axum::Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr: SocketAddr = listener.local_addr().expect("local addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        base: format!("http://{addr}"),
        stop: Some(tx),
    }
}

/// A sliding-window counter of units, as the providers enforce quotas.
#[derive(Debug)]
pub struct Window {
    limit: u64,
    window: Duration,
    spent: std::collections::VecDeque<(std::time::Instant, u64)>,
}

impl Window {
    /// `limit` units per `window`.
    pub fn new(limit: u64, window: Duration) -> Window {
        Window {
            limit,
            window,
            spent: Default::default(),
        }
    }

    /// Spends `n` units if they fit; else `Err(time until they would)`.
    pub fn try_spend(&mut self, n: u64) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        while self
            .spent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
        {
            self.spent.pop_front();
        }
        let used: u64 = self.spent.iter().map(|(_, u)| u).sum();
        if used + n <= self.limit {
            self.spent.push_back((now, n));
            Ok(())
        } else {
            let wait = self
                .spent
                .front()
                .map(|(t, _)| (*t + self.window).saturating_duration_since(now))
                .unwrap_or_default();
            Err(wait)
        }
    }
}

/// Counters shared by a server and its test.
#[derive(Debug, Default)]
pub struct Counters {
    /// API requests served (batch parts count one each).
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests refused for quota or rate (403/429).
    pub throttled: std::sync::atomic::AtomicU64,
    /// 401 answers.
    pub unauthorized: std::sync::atomic::AtomicU64,
    /// Injected 5xx answers.
    pub failed: std::sync::atomic::AtomicU64,
    /// Most requests in flight at once.
    pub max_in_flight: std::sync::atomic::AtomicU64,
}

impl Counters {
    /// Loads one counter.
    pub fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Shared handle type of counters.
pub type SharedCounters = Arc<Counters>;
