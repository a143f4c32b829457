//! A sliding-window quota limiter: at most `units` per `window`, as the providers count
//! them (Gmail: 15,000 units per user per minute).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Spends quota units so that no sliding window of `window` ever holds more than `units`.
/// Callers wait (in order) until their units fit. The window is kept 2% (at least 20 ms)
/// longer than the provider's, so that requests that reach the server late never add up
/// to more than the limit in its own window.
#[derive(Debug)]
pub struct QuotaLimiter {
    units: u64,
    window: Duration,
    spent: Mutex<VecDeque<(Instant, u64)>>,
}

impl QuotaLimiter {
    /// A limiter of `units` per `window` (`units` is at least 1).
    pub fn new(units: u64, window: Duration) -> QuotaLimiter {
        let margin = (window / 50).max(Duration::from_millis(20));
        QuotaLimiter {
            units: units.max(1),
            window: window + margin,
            spent: Mutex::new(VecDeque::new()),
        }
    }

    /// The limit per window.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// The window, with the safety margin.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until `n` units fit in the window, then spends them. A request larger than
    /// the whole limit is clamped to it (it then waits for an empty window).
    pub async fn acquire(&self, n: u64) {
        let n = n.min(self.units);
        let mut spent = self.spent.lock().await;
        loop {
            let now = Instant::now();
            while spent
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
            {
                spent.pop_front();
            }
            let used: u64 = spent.iter().map(|(_, u)| u).sum();
            if used + n <= self.units {
                spent.push_back((now, n));
                return;
            }
            // Wait until enough of the oldest spends leave the window.
            let mut free = self.units - used;
            let mut until = now;
            for (t, u) in spent.iter() {
                free += u;
                until = *t + self.window;
                if free >= n {
                    break;
                }
            }
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_more_than_the_limit_per_window() {
        let q = QuotaLimiter::new(10, Duration::from_millis(200));
        let start = Instant::now();
        let mut stamps = Vec::new();
        for _ in 0..25 {
            q.acquire(2).await;
            stamps.push(start.elapsed());
        }
        for (i, t) in stamps.iter().enumerate() {
            let in_window = stamps[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_millis(200))
                .count();
            assert!(in_window <= 5, "{in_window} spends of 2 within one window");
        }
        // 25 spends of 2 at 10 per window need at least 4 full windows.
        assert!(start.elapsed() >= Duration::from_millis(800));
    }
}
