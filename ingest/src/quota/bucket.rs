//! A token bucket: `rate` tokens a second, holding at most `burst`.

use std::time::Duration;

/// One cluster's allowance of one kind (samples, or log bytes). Times are the quota clock's
/// monotonic offsets, so tests drive it without sleeping.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Duration,
}

impl Bucket {
    /// A full bucket at time `now`.
    pub(crate) fn new(rate: f64, burst: f64, now: Duration) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = self.at.max(now);
    }

    /// Takes `n` tokens, or answers how long until they are there. A request larger than the
    /// whole burst is admitted once the bucket is full (leaving it in debt), so no request is
    /// refused forever; the debt then delays the next ones.
    pub(crate) fn take(&mut self, n: f64, now: Duration) -> Result<(), Duration> {
        self.refill(now);
        let need = n.min(self.burst);
        if self.tokens >= need {
            self.tokens -= n;
            return Ok(());
        }
        Err(Duration::from_secs_f64((need - self.tokens) / self.rate))
    }

    /// Gives back tokens a refused request took (another cluster of the same request was over).
    pub(crate) fn refund(&mut self, n: f64) {
        self.tokens = (self.tokens + n).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(f64) -> Duration = Duration::from_secs_f64;

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let mut b = Bucket::new(100.0, 1000.0, S(0.0));
        assert!(b.take(1000.0, S(0.0)).is_ok());
        // Empty: 50 tokens need half a second.
        assert_eq!(b.take(50.0, S(0.0)), Err(S(0.5)));
        assert!(b.take(50.0, S(0.5)).is_ok());
        // A long pause refills to the burst, not beyond.
        assert!(b.take(1000.0, S(100.0)).is_ok());
        let wait = b.take(1.0, S(100.0)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.01).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn a_request_over_the_burst_passes_on_a_full_bucket_and_leaves_debt() {
        let mut b = Bucket::new(10.0, 100.0, S(0.0));
        assert!(b.take(250.0, S(0.0)).is_ok());
        // 150 in debt: the next single token is 15.1 s away.
        let wait = b.take(1.0, S(0.0)).unwrap_err();
        assert!((wait.as_secs_f64() - 15.1).abs() < 1e-9, "{wait:?}");
        // And the next big one waits until the bucket is full again (25 s).
        assert_eq!(b.take(250.0, S(0.0)), Err(S(25.0)));
        assert!(b.take(250.0, S(25.0)).is_ok());
    }

    #[test]
    fn refunds_restore_what_was_taken() {
        let mut b = Bucket::new(1.0, 10.0, S(0.0));
        assert!(b.take(10.0, S(0.0)).is_ok());
        b.refund(10.0);
        assert!(b.take(10.0, S(0.0)).is_ok());
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = Bucket::new(1.0, 10.0, S(5.0));
        assert!(b.take(10.0, S(5.0)).is_ok());
        assert_eq!(b.take(1.0, S(1.0)), Err(S(1.0)));
    }
}
