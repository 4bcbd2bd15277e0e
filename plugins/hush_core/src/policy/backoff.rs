//! Reconnect backoff: 1, 2, 4, 8, 16, 30, 30 … seconds, optionally with full
//! jitter and an attempt cap.
//!
//! The seed gave up after 10 attempts (about three minutes); a chat client that
//! stops reconnecting loses messages, so the default caps the delay, never the
//! attempts.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay between two attempts.
    pub cap: Duration,
    /// Full jitter: each delay is uniform in `[0, nominal]`, so many clients
    /// dropped at once do not return in lockstep.
    pub jitter: bool,
    /// Give up after this many attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            jitter: true,
            max_attempts: None,
        }
    }
}

impl BackoffPolicy {
    /// The same schedule without jitter: exact delays, for tests.
    pub fn exact() -> Self {
        BackoffPolicy {
            jitter: false,
            ..Self::default()
        }
    }

    /// The un-jittered delay before attempt `attempt` (1-based):
    /// `min(base · 2^(attempt−1), cap)`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay before attempt `attempt`, or `None` once the cap on attempts
    /// is passed. `unit_random` is a sample from `[0, 1)`, used only with jitter.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Option<Duration> {
        if self.max_attempts.is_some_and(|max| attempt > max) {
            return None;
        }
        let nominal = self.nominal(attempt);
        Some(if self.jitter {
            nominal.mul_f64(unit_random.clamp(0.0, 1.0))
        } else {
            nominal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_seed_schedule_and_caps_the_delay() {
        let p = BackoffPolicy::exact();
        let secs: Vec<u64> = (1..=9)
            .map(|a| p.delay(a, 0.7).unwrap().as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30, 30]);
        // Keeps trying by default, long after the seed's ten attempts.
        assert_eq!(p.delay(10_000, 0.0), Some(Duration::from_secs(30)));
        assert_eq!(p.delay(u32::MAX, 0.0), Some(Duration::from_secs(30)));
    }

    #[test]
    fn full_jitter_stays_within_the_nominal_delay() {
        let p = BackoffPolicy::default();
        assert_eq!(p.delay(4, 0.0), Some(Duration::ZERO));
        assert_eq!(p.delay(4, 0.5), Some(Duration::from_secs(4)));
        assert_eq!(p.delay(6, 0.999_999).unwrap().as_secs(), 29);
        // Out-of-range samples are clamped, never longer than nominal.
        assert_eq!(p.delay(2, 7.0), Some(Duration::from_secs(2)));
        assert_eq!(p.delay(2, -1.0), Some(Duration::ZERO));
    }

    #[test]
    fn optional_attempt_cap() {
        let p = BackoffPolicy {
            max_attempts: Some(10),
            ..BackoffPolicy::exact()
        };
        assert!(p.delay(10, 0.0).is_some());
        assert_eq!(p.delay(11, 0.0), None);
    }
}
