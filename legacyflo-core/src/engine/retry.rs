//! Retry policy: exponential backoff with jitter, honouring the service's hint.

use std::time::Duration;

/// How temporary failures are retried.
///
/// Defaults: 6 retries, 500 ms first delay, doubling, at most 60 s. A delay the service
/// asks for (`Retry-After`, "Suggested Backoff Time") is used as given, even when longer
/// than `max_backoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries in a row without progress before giving up.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Largest computed delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (1-based), or the service's `hint`.
    /// Jitter of up to 25% is subtracted so that parallel workers spread out.
    pub fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        if let Some(h) = hint {
            return h;
        }
        let exp = attempt.saturating_sub(1).min(20);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
        base.saturating_sub(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_and_honours_hints() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, None) <= Duration::from_millis(500));
        assert!(p.delay(1, None) >= Duration::from_millis(375));
        assert!(p.delay(3, None) >= Duration::from_millis(1500));
        assert!(p.delay(30, None) <= Duration::from_secs(60));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(300))),
            Duration::from_secs(300)
        );
    }
}
