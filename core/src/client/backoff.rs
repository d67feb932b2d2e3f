//! Reconnection delays: exponential backoff with jitter, the same formula as socket.io-client's
//! `backo2` (factor 2).

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min_ms: f64,
    max_ms: f64,
    jitter: f64,
    pub attempts: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Self {
        let jitter = if jitter > 0.0 && jitter <= 1.0 {
            jitter
        } else {
            0.0
        };
        Backoff {
            min_ms: min.as_millis() as f64,
            max_ms: max.as_millis() as f64,
            jitter,
            attempts: 0,
        }
    }

    /// The next delay; counts one attempt.
    pub fn duration(&mut self) -> Duration {
        self.duration_with(rand::random::<f64>())
    }

    fn duration_with(&mut self, rand: f64) -> Duration {
        let mut ms = self.min_ms * 2f64.powi(self.attempts.min(64) as i32);
        self.attempts = self.attempts.saturating_add(1);
        if self.jitter > 0.0 {
            let deviation = (rand * self.jitter * ms).floor();
            ms = if ((rand * 10.0).floor() as u64) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        Duration::from_millis(ms.min(self.max_ms).max(0.0) as u64)
    }

    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(5000),
            0.0,
        );
        let d: Vec<u64> = (0..5).map(|_| b.duration().as_millis() as u64).collect();
        assert_eq!(d, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(b.attempts, 5);
        b.reset();
        assert_eq!(b.duration(), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_bounds() {
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(5000),
            0.5,
        );
        // rand 0.25: floor(2.5)=2 even -> minus 125
        assert_eq!(b.duration_with(0.25), Duration::from_millis(875));
        // rand 0.15: floor(1.5)=1 odd -> plus 150 of 2000
        assert_eq!(b.duration_with(0.15), Duration::from_millis(2150));
        for _ in 0..100 {
            b.reset();
            let d = b.duration().as_millis();
            assert!((500..=1500).contains(&d), "{d}");
        }
    }
}
