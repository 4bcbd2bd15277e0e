//! Rate limits: token buckets per client address (HTTP) and per connection
//! (WebSocket message frames).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `per_minute` tokens refill continuously, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_minute: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_minute: f64, burst: f64) -> Self {
        Rate { per_minute, burst }
    }
}

/// One token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Rate) -> Self {
        Bucket {
            rate,
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate.per_minute / 60.0).min(self.rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let per_sec = self.rate.per_minute / 60.0;
            Err(Duration::from_secs_f64(
                ((1.0 - self.tokens) / per_sec.max(1e-9)).min(3600.0),
            ))
        }
    }
}

/// Buckets keyed by client address.
pub struct IpLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl IpLimiter {
    pub fn new(rate: Rate) -> Self {
        IpLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut b = self.buckets.lock().expect("limiter lock");
        if b.len() > 100_000 {
            // Forget full buckets so a scan of many addresses cannot grow this forever.
            b.retain(|_, bucket| bucket.tokens < bucket.rate.burst);
        }
        b.entry(ip)
            .or_insert_with(|| Bucket::new(self.rate))
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let mut b = Bucket::new(Rate::new(60.0, 3.0));
        let t0 = Instant::now();
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        let wait = b.take(t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
        assert!(b.take(t0 + Duration::from_secs(1)).is_ok());
    }
}
