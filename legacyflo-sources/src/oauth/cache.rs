//! The token cache: one token at a time, refreshed before it expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use legacyflo_core::request::Secret;
use tokio::sync::Mutex;
use tracing::debug;

use super::{OAuthError, TokenFetcher};
use crate::imap::{ImapError, TokenProvider};

struct Held {
    token: Secret,
    refresh_at: Instant,
    generation: u64,
}

/// Hands out a valid access token, asking the endpoint again when the held one is within
/// its refresh margin of expiry (a tenth of its lifetime, at most 5 minutes) or after
/// [`invalidate`](TokenCache::invalidate). Concurrent callers share one refresh.
pub struct TokenCache {
    fetcher: Arc<dyn TokenFetcher>,
    held: Mutex<Option<Held>>,
    generation: std::sync::atomic::AtomicU64,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({})", self.fetcher.describe())
    }
}

/// When a token of lifetime `life` should be replaced.
fn refresh_margin(life: Duration) -> Duration {
    (life / 10).min(Duration::from_secs(300))
}

impl TokenCache {
    /// A cache over `fetcher`; nothing is fetched until the first [`token`](Self::token).
    pub fn new(fetcher: Arc<dyn TokenFetcher>) -> TokenCache {
        TokenCache {
            fetcher,
            held: Mutex::new(None),
            generation: 0.into(),
            fetches: 0.into(),
        }
    }

    /// A valid token and its generation (pass the generation to
    /// [`invalidate`](Self::invalidate) when the API refuses the token).
    pub async fn token_with_generation(&self) -> Result<(Secret, u64), OAuthError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref()
            && Instant::now() < h.refresh_at
        {
            return Ok((h.token.clone(), h.generation));
        }
        let fresh = self.fetcher.fetch().await?;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let life = fresh.expires_in;
        debug!(what = %self.fetcher.describe(), ?life, "new access token");
        *held = Some(Held {
            token: fresh.access_token.clone(),
            refresh_at: Instant::now() + life.saturating_sub(refresh_margin(life)),
            generation,
        });
        Ok((fresh.access_token, generation))
    }

    /// A valid token.
    pub async fn token(&self) -> Result<Secret, OAuthError> {
        Ok(self.token_with_generation().await?.0)
    }

    /// Drops the token of `generation` (the API said it is expired or revoked), so that the
    /// next call fetches a new one. A newer token is kept.
    pub async fn invalidate(&self, generation: u64) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.generation == generation) {
            *held = None;
        }
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the tokens are for.
    pub fn describe(&self) -> String {
        self.fetcher.describe()
    }
}

#[async_trait]
impl TokenProvider for TokenCache {
    async fn token(&self, _user: &str) -> Result<Secret, ImapError> {
        // IMAP asks on every login; a login refused with a token calls `refused`, which
        // drops it, and the login is tried once more with a fresh one.
        TokenCache::token(self).await.map_err(|e| match e {
            // An unreachable or failing token endpoint may recover: retryable.
            OAuthError::Transport { .. } => ImapError::Io {
                command: "fetch an OAuth2 token".into(),
                source: std::io::Error::other(e.to_string()),
            },
            _ => ImapError::Config(e.to_string()),
        })
    }

    async fn refused(&self, _user: &str, token: &Secret) {
        let mut held = self.held.lock().await;
        if held
            .as_ref()
            .is_some_and(|h| h.token.expose() == token.expose())
        {
            debug!(what = %self.fetcher.describe(), "IMAP refused the token: dropped");
            *held = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting(AtomicU64, Duration);

    #[async_trait]
    impl TokenFetcher for Counting {
        async fn fetch(&self) -> Result<super::super::FreshToken, OAuthError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(super::super::FreshToken {
                access_token: Secret::new(format!("t{n}")),
                expires_in: self.1,
            })
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[tokio::test]
    async fn caches_refreshes_and_invalidates() {
        let c = TokenCache::new(Arc::new(Counting(
            AtomicU64::new(0),
            Duration::from_secs(3600),
        )));
        let (a, g) = c.token_with_generation().await.unwrap();
        assert_eq!(a.expose(), "t0");
        assert_eq!(c.token().await.unwrap().expose(), "t0");
        c.invalidate(g + 7).await; // an older or other generation: kept
        assert_eq!(c.token().await.unwrap().expose(), "t0");
        c.invalidate(g).await;
        assert_eq!(c.token().await.unwrap().expose(), "t1");
        assert_eq!(c.fetches(), 2);
        assert!(!format!("{c:?}").contains("t1"));

        // A 200 ms token is replaced once 180 ms have passed.
        let c = TokenCache::new(Arc::new(Counting(
            AtomicU64::new(0),
            Duration::from_millis(200),
        )));
        assert_eq!(c.token().await.unwrap().expose(), "t0");
        tokio::time::sleep(Duration::from_millis(190)).await;
        assert_eq!(c.token().await.unwrap().expose(), "t1");
    }
}
