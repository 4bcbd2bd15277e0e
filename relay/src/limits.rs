//! Rate limits, on the `governor` crate (GCRA): keyed by client address for
//! HTTP, and one per WebSocket connection for `message` frames.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

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

    /// The same rate as a governor quota (at least one token per hour, and
    /// a burst of at least one).
    fn quota(self) -> Quota {
        let per_token = Duration::from_secs_f64(60.0 / self.per_minute.clamp(1.0 / 60.0, 1e9));
        let burst = NonZeroU32::new(self.burst.clamp(1.0, u32::MAX as f64) as u32)
            .unwrap_or(NonZeroU32::MIN);
        Quota::with_period(per_token)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst)
    }
}

/// Limiters keyed by client address. Addresses whose bucket is full again
/// are forgotten every so often, so a scan of many addresses cannot grow the
/// map without end.
pub struct IpLimiter {
    inner: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

/// How many addresses the map may hold before full buckets are dropped.
const PRUNE_ABOVE: usize = 4_096;

impl IpLimiter {
    pub fn new(rate: Rate) -> Self {
        IpLimiter {
            inner: DefaultKeyedRateLimiter::keyed(rate.quota()),
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token for `ip`, or says how long until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.inner.len() > PRUNE_ABOVE {
            self.inner.retain_recent();
            self.inner.shrink_to_fit();
        }
        self.inner
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// One connection's limiter.
pub struct Bucket {
    inner: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Bucket {
    pub fn new(rate: Rate) -> Self {
        Bucket {
            inner: DefaultDirectRateLimiter::direct(rate.quota()),
            clock: DefaultClock::default(),
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self) -> Result<(), Duration> {
        self.inner
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let mut b = Bucket::new(Rate::new(60.0, 3.0));
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(800),
            "{wait:?}"
        );
    }

    #[test]
    fn addresses_are_limited_apart_and_full_buckets_are_forgotten() {
        let l = IpLimiter::new(Rate::new(600.0, 2.0));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_err());
        assert!(l.check(b).is_ok(), "another address has its own budget");
        // A scan of many addresses: each takes one token, and refills
        // within 100 ms, after which the map is pruned.
        for i in 0..(PRUNE_ABOVE as u32 + 10) {
            let _ = l.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(l.len() > PRUNE_ABOVE);
        std::thread::sleep(Duration::from_millis(250));
        let _ = l.check(a);
        assert!(l.len() < 10, "pruned to the recent ones: {}", l.len());
    }

    #[test]
    fn odd_rates_still_make_a_quota() {
        for r in [
            Rate::new(0.0, 0.0),
            Rate::new(1e12, 1e12),
            Rate::new(0.5, 1.0),
        ] {
            let mut b = Bucket::new(r);
            assert!(b.take().is_ok(), "{r:?}");
        }
    }
}
