//! Heartbeat liveness: ping every 30 s while connected; the connection is dead
//! when nothing at all was received for 60 s.
//!
//! Any frame counts as life (a stock server's own `heartbeat` included). A
//! stock server that met a malformed frame stops answering without closing the
//! socket: only this timer notices.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatPolicy {
    /// Interval between pings.
    pub ping_every: Duration,
    /// Silence after which the connection is considered dead.
    pub dead_after: Duration,
}

impl Default for HeartbeatPolicy {
    fn default() -> Self {
        HeartbeatPolicy {
            ping_every: Duration::from_secs(30),
            dead_after: Duration::from_secs(60),
        }
    }
}

/// What the connection should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAction {
    Idle,
    SendPing,
    /// Close (code 4000) and reconnect.
    Dead,
}

/// The liveness state of one connection. Times are the caller's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub policy: HeartbeatPolicy,
    last_received: Duration,
    last_ping: Duration,
}

impl Heartbeat {
    /// Starts when the connection opens.
    pub fn new(policy: HeartbeatPolicy, now: Duration) -> Self {
        Heartbeat {
            policy,
            last_received: now,
            last_ping: now,
        }
    }

    /// Any frame arrived.
    pub fn on_receive(&mut self, now: Duration) {
        self.last_received = self.last_received.max(now);
    }

    pub fn last_received(&self) -> Duration {
        self.last_received
    }

    /// Decides what to do at `now`. Returns `SendPing` at most once per
    /// interval (the caller sends it).
    pub fn poll(&mut self, now: Duration) -> HeartbeatAction {
        if now.saturating_sub(self.last_received) >= self.policy.dead_after {
            return HeartbeatAction::Dead;
        }
        if now.saturating_sub(self.last_ping) >= self.policy.ping_every {
            self.last_ping = now;
            return HeartbeatAction::SendPing;
        }
        HeartbeatAction::Idle
    }

    /// The next time [`Self::poll`] can return something other than `Idle`:
    /// a loop that sleeps until then misses no ping and no death.
    pub fn next_deadline(&self) -> Duration {
        (self.last_ping + self.policy.ping_every).min(self.last_received + self.policy.dead_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    #[test]
    fn pings_every_thirty_seconds() {
        let mut hb = Heartbeat::new(HeartbeatPolicy::default(), s(100));
        assert_eq!(hb.poll(s(129)), HeartbeatAction::Idle);
        assert_eq!(hb.poll(s(130)), HeartbeatAction::SendPing);
        assert_eq!(hb.poll(s(131)), HeartbeatAction::Idle);
        hb.on_receive(s(131));
        assert_eq!(hb.poll(s(160)), HeartbeatAction::SendPing);
    }

    #[test]
    fn dead_after_sixty_silent_seconds() {
        let mut hb = Heartbeat::new(HeartbeatPolicy::default(), s(0));
        assert_eq!(hb.poll(s(30)), HeartbeatAction::SendPing);
        // No pong ever comes.
        assert_eq!(hb.poll(s(59)), HeartbeatAction::Idle);
        assert_eq!(hb.poll(s(60)), HeartbeatAction::Dead);
    }

    #[test]
    fn the_next_deadline_is_the_next_ping_or_the_death() {
        let mut hb = Heartbeat::new(HeartbeatPolicy::default(), s(100));
        assert_eq!(hb.next_deadline(), s(130));
        assert_eq!(hb.poll(hb.next_deadline()), HeartbeatAction::SendPing);
        // Pinged at 130, nothing received since 100: death at 160 comes first.
        assert_eq!(hb.next_deadline(), s(160));
        assert_eq!(hb.poll(s(159)), HeartbeatAction::Idle);
        assert_eq!(hb.poll(hb.next_deadline()), HeartbeatAction::Dead);
        hb.on_receive(s(150));
        assert_eq!(hb.next_deadline(), s(160));
    }

    #[test]
    fn any_frame_keeps_it_alive() {
        let mut hb = Heartbeat::new(HeartbeatPolicy::default(), s(0));
        for t in (10..600).step_by(10) {
            hb.on_receive(s(t));
            assert_ne!(hb.poll(s(t + 5)), HeartbeatAction::Dead);
        }
        // A clock that runs backwards never resurrects an older time.
        hb.on_receive(s(1));
        assert_eq!(hb.last_received(), s(590));
    }
}
