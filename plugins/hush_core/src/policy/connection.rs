//! The connection lifecycle as a pure state machine.
//!
//! Inputs are intents (connect, disconnect, retry now), transport events
//! tagged with the generation of the socket attempt they belong to, token
//! news, online/offline signals and clock ticks. Outputs are [`Action`]s the
//! caller carries out. Events of an older generation are ignored, so a stale
//! socket's late close can never tear down the live connection.
//!
//! What the seed got wrong and this does instead: it never gives up by default
//! (the delay is capped, not the attempts); an auth rejection (close 4001 or a
//! refused upgrade) is never retried with the same token; and the heartbeat
//! counts any received frame as life.

use std::time::Duration;

use super::backoff::BackoffPolicy;
use super::heartbeat::{Heartbeat, HeartbeatAction, HeartbeatPolicy};

/// Close code the client uses when the heartbeat finds the socket dead.
pub const CLOSE_HEARTBEAT: u16 = 4000;
/// Close code of an auth failure (hush-relay) that browsers can see.
pub const CLOSE_INVALID_TOKEN: u16 = 4001;
/// Normal closure, used for client-initiated disconnects.
pub const CLOSE_NORMAL: u16 = 1000;

/// Why the client is not connected and not trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The user (or app) asked to disconnect.
    ClientRequested,
    /// The server refused the credentials; needs the user.
    AuthFailed(String),
    /// The platform says there is no network; retries resume when it returns.
    Offline,
    /// The optional attempt cap was reached.
    GaveUp,
}

/// What the UI shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Disconnected {
        reason: Option<DisconnectReason>,
    },
    /// An attempt is under way (`attempt` 0 is the first connect).
    Connecting {
        attempt: u32,
    },
    Connected,
    /// Waiting to try again; `retry_at` is on the caller's clock.
    Reconnecting {
        attempt: u32,
        retry_at: Duration,
    },
}

/// How a socket attempt ended, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseKind {
    /// A close frame with this code and reason.
    Frame { code: u16, reason: String },
    /// The server refused the upgrade with this HTTP status.
    HandshakeStatus(u16),
    /// The network is unreachable (no route).
    Unreachable(String),
    /// Anything else: refused, reset, EOF, timeout, TLS failure.
    Error(String),
}

impl CloseKind {
    /// Whether the server rejected the token.
    pub fn is_auth_rejection(&self) -> bool {
        matches!(
            self,
            CloseKind::Frame {
                code: CLOSE_INVALID_TOKEN,
                ..
            } | CloseKind::HandshakeStatus(401 | 403)
        )
    }
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a socket for this generation with the current token.
    Open { generation: u64 },
    /// Close the socket of this generation (it is already considered gone).
    Close {
        generation: u64,
        code: u16,
        reason: &'static str,
    },
    /// Send `{"type":"ping"}` on the current socket.
    SendPing { generation: u64 },
    /// Obtain a (fresh) token, then call [`ConnectionMachine::token_ready`]
    /// or [`ConnectionMachine::token_failed`]. `stale` says the server just
    /// rejected the current one.
    NeedToken { stale: bool },
}

/// Timing knobs of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionPolicy {
    pub backoff: BackoffPolicy,
    pub heartbeat: HeartbeatPolicy,
    /// An attempt that neither opens nor fails within this long is abandoned.
    pub connect_timeout: Duration,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        ConnectionPolicy {
            backoff: BackoffPolicy::default(),
            heartbeat: HeartbeatPolicy::default(),
            connect_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionMachine {
    pub policy: ConnectionPolicy,
    state: ConnState,
    /// The user wants to be connected.
    want: bool,
    online: bool,
    /// The current token is believed good.
    token_ok: bool,
    /// Waiting for a token before opening.
    awaiting_token: bool,
    generation: u64,
    /// Failed attempts since the last successful open.
    failures: u32,
    /// Auth rejections in a row (a fresh token rejected again backs off).
    auth_rejections: u32,
    attempt_started: Duration,
    heartbeat: Option<Heartbeat>,
    rng: u64,
}

impl ConnectionMachine {
    /// `seed` feeds the jitter; any value works, tests fix it.
    pub fn new(policy: ConnectionPolicy, seed: u64) -> Self {
        ConnectionMachine {
            policy,
            state: ConnState::Disconnected { reason: None },
            want: false,
            online: true,
            token_ok: false,
            awaiting_token: false,
            generation: 0,
            failures: 0,
            auth_rejections: 0,
            attempt_started: Duration::ZERO,
            heartbeat: None,
            rng: seed | 1,
        }
    }

    pub fn state(&self) -> &ConnState {
        &self.state
    }

    /// The generation of the current (or last) socket attempt.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_connected(&self) -> bool {
        self.state == ConnState::Connected
    }

    pub fn wants_connection(&self) -> bool {
        self.want
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    /// When the last frame arrived on the live socket.
    pub fn last_received(&self) -> Option<Duration> {
        self.heartbeat.as_ref().map(Heartbeat::last_received)
    }

    /// The next time [`Self::tick`] has something to do (a retry, a connect
    /// timeout, a ping or a heartbeat death), if any: a caller that sleeps
    /// until then and ticks misses none of the machine's timers.
    pub fn next_deadline(&self) -> Option<Duration> {
        match &self.state {
            ConnState::Reconnecting { retry_at, .. } => Some(*retry_at),
            ConnState::Connecting { .. } if !self.awaiting_token => {
                Some(self.attempt_started + self.policy.connect_timeout)
            }
            ConnState::Connected => self.heartbeat.as_ref().map(Heartbeat::next_deadline),
            _ => None,
        }
    }

    fn unit_random(&mut self) -> f64 {
        // xorshift64*: plenty for spreading reconnects.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn begin_attempt(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.state = ConnState::Connecting {
            attempt: self.failures,
        };
        self.attempt_started = now;
        self.heartbeat = None;
        if self.token_ok {
            self.awaiting_token = false;
            self.generation += 1;
            out.push(Action::Open {
                generation: self.generation,
            });
        } else {
            self.awaiting_token = true;
            out.push(Action::NeedToken {
                stale: self.auth_rejections > 0,
            });
        }
    }

    /// The current attempt failed: schedule the next, or stop.
    fn fail_attempt(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.heartbeat = None;
        self.awaiting_token = false;
        if !self.want {
            self.state = ConnState::Disconnected {
                reason: Some(DisconnectReason::ClientRequested),
            };
            return;
        }
        if !self.online {
            self.state = ConnState::Disconnected {
                reason: Some(DisconnectReason::Offline),
            };
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let r = self.unit_random();
        match self.policy.backoff.delay(self.failures, r) {
            Some(d) => {
                self.state = ConnState::Reconnecting {
                    attempt: self.failures,
                    retry_at: now + d,
                };
                if d.is_zero() {
                    self.begin_attempt(now, out);
                }
            }
            None => {
                self.want = false;
                self.state = ConnState::Disconnected {
                    reason: Some(DisconnectReason::GaveUp),
                }
            }
        }
    }

    /// The user (or app) wants a connection. A no-op while connecting or connected.
    pub fn connect(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.want = true;
        match self.state {
            ConnState::Connected | ConnState::Connecting { .. } => {}
            ConnState::Reconnecting { .. } => {}
            ConnState::Disconnected { .. } => {
                self.failures = 0;
                self.auth_rejections = 0;
                if self.online {
                    self.begin_attempt(now, &mut out);
                } else {
                    self.state = ConnState::Disconnected {
                        reason: Some(DisconnectReason::Offline),
                    };
                }
            }
        }
        out
    }

    /// The user asked to disconnect: close, and never reconnect on our own.
    pub fn disconnect(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.want = false;
        self.awaiting_token = false;
        if matches!(
            self.state,
            ConnState::Connected | ConnState::Connecting { .. }
        ) {
            out.push(Action::Close {
                generation: self.generation,
                code: CLOSE_NORMAL,
                reason: "Client disconnect",
            });
        }
        // Whatever that socket reports later belongs to an old generation.
        self.generation += 1;
        self.heartbeat = None;
        self.state = ConnState::Disconnected {
            reason: Some(DisconnectReason::ClientRequested),
        };
        out
    }

    /// Skip the backoff wait ("retry now", or the network came back).
    pub fn retry_now(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        let retryable = match &self.state {
            ConnState::Reconnecting { .. } => true,
            ConnState::Disconnected { reason } => matches!(
                reason,
                Some(DisconnectReason::GaveUp | DisconnectReason::Offline)
            ),
            _ => false,
        };
        if retryable && self.online {
            if matches!(
                self.state,
                ConnState::Disconnected {
                    reason: Some(DisconnectReason::GaveUp)
                }
            ) {
                // A fresh round of attempts, as after any manual connect.
                self.failures = 0;
            }
            self.want = true;
            self.begin_attempt(now, &mut out);
        }
        out
    }

    /// Platform online/offline signal.
    pub fn set_online(&mut self, online: bool, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if online == self.online {
            return out;
        }
        self.online = online;
        if online {
            if self.want
                && matches!(
                    self.state,
                    ConnState::Reconnecting { .. }
                        | ConnState::Disconnected {
                            reason: Some(DisconnectReason::Offline)
                        }
                )
            {
                self.failures = 0;
                self.begin_attempt(now, &mut out);
            }
        } else {
            match self.state {
                ConnState::Connecting { .. } => {
                    out.push(Action::Close {
                        generation: self.generation,
                        code: CLOSE_NORMAL,
                        reason: "Offline",
                    });
                    self.generation += 1;
                    self.awaiting_token = false;
                    self.state = ConnState::Disconnected {
                        reason: Some(DisconnectReason::Offline),
                    };
                }
                ConnState::Reconnecting { .. } => {
                    self.state = ConnState::Disconnected {
                        reason: Some(DisconnectReason::Offline),
                    };
                }
                // A live socket may well survive a blip; the heartbeat decides.
                ConnState::Connected | ConnState::Disconnected { .. } => {}
            }
        }
        out
    }

    /// A token is available (after [`Action::NeedToken`], or a proactive refresh).
    pub fn token_ready(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        self.token_ok = true;
        if self.awaiting_token && matches!(self.state, ConnState::Connecting { .. }) {
            self.begin_attempt(now, &mut out);
        }
        out
    }

    /// No token could be obtained. `fatal` (wrong words, no words) stops in
    /// the auth-failed state; otherwise (server unreachable, rate limited)
    /// it counts as a failed attempt and backs off.
    pub fn token_failed(&mut self, fatal: Option<String>, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.awaiting_token {
            return out;
        }
        self.awaiting_token = false;
        match fatal {
            Some(why) => {
                self.want = false;
                self.state = ConnState::Disconnected {
                    reason: Some(DisconnectReason::AuthFailed(why)),
                };
            }
            None => self.fail_attempt(now, &mut out),
        }
        out
    }

    /// The token was dropped (lock, or a new unlock): the next attempt asks
    /// for a new one.
    pub fn forget_token(&mut self) {
        self.token_ok = false;
    }

    /// The socket of `generation` opened.
    pub fn opened(&mut self, generation: u64, now: Duration) -> Vec<Action> {
        if generation != self.generation || !matches!(self.state, ConnState::Connecting { .. }) {
            // A stale socket: make sure it goes away.
            return vec![Action::Close {
                generation,
                code: CLOSE_NORMAL,
                reason: "Stale connection",
            }];
        }
        self.state = ConnState::Connected;
        self.failures = 0;
        self.auth_rejections = 0;
        self.heartbeat = Some(Heartbeat::new(self.policy.heartbeat, now));
        Vec::new()
    }

    /// A frame arrived on the socket of `generation`.
    pub fn received(&mut self, generation: u64, now: Duration) {
        if generation == self.generation
            && let Some(hb) = &mut self.heartbeat
        {
            hb.on_receive(now);
        }
    }

    /// The socket of `generation` ended.
    pub fn closed(&mut self, generation: u64, kind: &CloseKind, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if generation != self.generation
            || !matches!(
                self.state,
                ConnState::Connected | ConnState::Connecting { .. }
            )
        {
            return out;
        }
        if let CloseKind::Unreachable(_) = kind {
            self.online = false;
        }
        if kind.is_auth_rejection() {
            // Never retry with the token the server just refused.
            self.token_ok = false;
            self.auth_rejections += 1;
            if self.auth_rejections == 1 && self.want && self.online {
                self.heartbeat = None;
                self.begin_attempt(now, &mut out);
                return out;
            }
        }
        self.fail_attempt(now, &mut out);
        out
    }

    /// Drives the timers: backoff, connect timeout, heartbeat.
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state.clone() {
            ConnState::Reconnecting { retry_at, .. } if now >= retry_at => {
                self.begin_attempt(now, &mut out);
            }
            ConnState::Connecting { .. }
                if !self.awaiting_token
                    && now.saturating_sub(self.attempt_started) >= self.policy.connect_timeout =>
            {
                out.push(Action::Close {
                    generation: self.generation,
                    code: CLOSE_NORMAL,
                    reason: "Connect timeout",
                });
                self.generation += 1;
                self.fail_attempt(now, &mut out);
            }
            ConnState::Connected => {
                let action = self.heartbeat.as_mut().map(|hb| hb.poll(now));
                match action {
                    Some(HeartbeatAction::SendPing) => out.push(Action::SendPing {
                        generation: self.generation,
                    }),
                    Some(HeartbeatAction::Dead) => {
                        out.push(Action::Close {
                            generation: self.generation,
                            code: CLOSE_HEARTBEAT,
                            reason: "Heartbeat timeout",
                        });
                        self.generation += 1;
                        self.fail_attempt(now, &mut out);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn exact() -> ConnectionMachine {
        let mut m = ConnectionMachine::new(
            ConnectionPolicy {
                backoff: BackoffPolicy::exact(),
                ..ConnectionPolicy::default()
            },
            7,
        );
        m.token_ready(s(0));
        m
    }

    fn open_gen(actions: &[Action]) -> u64 {
        match actions {
            [Action::Open { generation }] => *generation,
            other => panic!("expected one Open, got {other:?}"),
        }
    }

    fn err() -> CloseKind {
        CloseKind::Error("connection refused".into())
    }

    #[test]
    fn connects_once_and_connecting_again_is_a_no_op() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        assert_eq!(m.state(), &ConnState::Connecting { attempt: 0 });
        assert!(m.connect(s(0)).is_empty());
        assert!(m.opened(g, s(0)).is_empty());
        assert!(m.is_connected());
        assert!(m.connect(s(1)).is_empty());
        assert_eq!(m.generation(), g);
    }

    #[test]
    fn reconnects_on_the_backoff_schedule_forever() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        m.opened(g, s(0));
        let mut now = s(10);
        let mut g = g;
        let mut delays = Vec::new();
        for _ in 0..12 {
            assert!(m.closed(g, &err(), now).is_empty());
            let ConnState::Reconnecting { retry_at, attempt } = m.state().clone() else {
                panic!("{:?}", m.state())
            };
            delays.push((retry_at - now).as_secs());
            // Nothing happens a moment before the retry time.
            assert!(m.tick(retry_at - Duration::from_millis(1)).is_empty());
            g = open_gen(&m.tick(retry_at));
            assert_eq!(m.state(), &ConnState::Connecting { attempt });
            now = retry_at;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30]);
        // Success resets the schedule.
        m.opened(g, now);
        m.closed(g, &err(), now);
        assert_eq!(
            m.state(),
            &ConnState::Reconnecting {
                attempt: 1,
                retry_at: now + s(1)
            }
        );
    }

    #[test]
    fn every_timer_of_the_machine_is_its_next_deadline() {
        let mut m = exact();
        assert_eq!(m.next_deadline(), None, "idle: nothing to wake for");
        let g = open_gen(&m.connect(s(0)));
        assert_eq!(m.next_deadline(), Some(s(15)), "the connect timeout");
        m.opened(g, s(1));
        assert_eq!(m.next_deadline(), Some(s(31)), "the first ping");
        assert_eq!(m.tick(s(31)), [Action::SendPing { generation: g }]);
        assert_eq!(m.next_deadline(), Some(s(61)), "death: nothing came back");
        m.received(g, s(40));
        assert_eq!(m.next_deadline(), Some(s(61)), "the next ping");
        m.closed(g, &err(), s(50));
        assert_eq!(m.next_deadline(), Some(s(51)), "the retry");
        assert!(m.tick(s(51) - Duration::from_millis(1)).is_empty());
        assert!(!m.tick(s(51)).is_empty());
        m.disconnect();
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn jittered_delays_stay_within_the_schedule() {
        let mut m = ConnectionMachine::new(ConnectionPolicy::default(), 42);
        m.token_ready(s(0));
        let mut g = open_gen(&m.connect(s(0)));
        let mut now = s(0);
        let mut seen = Vec::new();
        for k in 1..=8u32 {
            m.closed(g, &err(), now);
            match m.state().clone() {
                ConnState::Reconnecting { retry_at, .. } => {
                    let d = retry_at - now;
                    assert!(d <= BackoffPolicy::default().nominal(k), "{d:?} at {k}");
                    seen.push(d);
                    g = open_gen(&m.tick(retry_at));
                    now = retry_at;
                }
                // A zero delay retries at once.
                ConnState::Connecting { .. } => g = m.generation(),
                other => panic!("{other:?}"),
            }
        }
        // Not all equal to the nominal delay: jitter is on.
        assert!(
            seen.iter()
                .zip(1..)
                .any(|(d, k)| *d != BackoffPolicy::default().nominal(k))
        );
    }

    #[test]
    fn stale_generations_are_ignored() {
        let mut m = exact();
        let g1 = open_gen(&m.connect(s(0)));
        m.opened(g1, s(0));
        // The heartbeat kills g1 and a new attempt g2 opens.
        m.closed(g1, &err(), s(1));
        let g2 = open_gen(&m.tick(s(2)));
        assert_ne!(g1, g2);
        m.opened(g2, s(2));
        // g1's late close and frames change nothing.
        assert!(m.closed(g1, &err(), s(3)).is_empty());
        m.received(g1, s(100));
        assert!(m.is_connected());
        assert_eq!(m.last_received(), Some(s(2)));
        // A stale open is closed.
        assert_eq!(
            m.opened(g1, s(4)),
            vec![Action::Close {
                generation: g1,
                code: CLOSE_NORMAL,
                reason: "Stale connection"
            }]
        );
        assert!(m.is_connected());
    }

    #[test]
    fn heartbeat_pings_then_declares_death_and_reconnects() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        m.opened(g, s(0));
        assert_eq!(m.tick(s(30)), vec![Action::SendPing { generation: g }]);
        m.received(g, s(31)); // the pong
        assert_eq!(m.tick(s(61)), vec![Action::SendPing { generation: g }]);
        // Silence from here on (a half-open socket).
        assert!(m.tick(s(90)).len() <= 1);
        let a = m.tick(s(91));
        assert_eq!(
            a,
            vec![Action::Close {
                generation: g,
                code: CLOSE_HEARTBEAT,
                reason: "Heartbeat timeout"
            }]
        );
        assert_eq!(
            m.state(),
            &ConnState::Reconnecting {
                attempt: 1,
                retry_at: s(92)
            }
        );
        // The dead socket's own close arrives later and is ignored.
        assert!(m.closed(g, &err(), s(91)).is_empty());
        assert_ne!(open_gen(&m.tick(s(92))), g);
    }

    #[test]
    fn client_disconnect_never_reconnects() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        m.opened(g, s(0));
        assert_eq!(
            m.disconnect(),
            vec![Action::Close {
                generation: g,
                code: CLOSE_NORMAL,
                reason: "Client disconnect"
            }]
        );
        assert!(
            m.closed(
                g,
                &CloseKind::Frame {
                    code: 1000,
                    reason: String::new()
                },
                s(1)
            )
            .is_empty()
        );
        for t in 1..200 {
            assert!(m.tick(s(t)).is_empty());
        }
        assert_eq!(
            m.state(),
            &ConnState::Disconnected {
                reason: Some(DisconnectReason::ClientRequested)
            }
        );
    }

    #[test]
    fn auth_rejection_asks_for_a_fresh_token_and_never_reuses_the_old_one() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        let rejected = CloseKind::Frame {
            code: 4001,
            reason: "Invalid token".into(),
        };
        assert_eq!(
            m.closed(g, &rejected, s(0)),
            vec![Action::NeedToken { stale: true }]
        );
        // No Open until a token arrives, whatever the clock does.
        for t in 0..100 {
            assert!(m.tick(s(t)).is_empty(), "at {t}");
        }
        let g2 = open_gen(&m.token_ready(s(100)));
        // The fresh token is refused as well: back off before asking again.
        assert!(
            m.closed(g2, &CloseKind::HandshakeStatus(403), s(100))
                .is_empty()
        );
        assert!(matches!(
            m.state(),
            ConnState::Reconnecting { attempt: 1, .. }
        ));
        assert_eq!(m.tick(s(101)), vec![Action::NeedToken { stale: true }]);
        // The server says the words are wrong: stop.
        assert!(
            m.token_failed(Some("wrong words".into()), s(101))
                .is_empty()
        );
        assert_eq!(
            m.state(),
            &ConnState::Disconnected {
                reason: Some(DisconnectReason::AuthFailed("wrong words".into()))
            }
        );
        for t in 101..400 {
            assert!(m.tick(s(t)).is_empty());
        }
    }

    #[test]
    fn a_transient_token_failure_backs_off() {
        let mut m = ConnectionMachine::new(
            ConnectionPolicy {
                backoff: BackoffPolicy::exact(),
                ..ConnectionPolicy::default()
            },
            1,
        );
        assert_eq!(m.connect(s(0)), vec![Action::NeedToken { stale: false }]);
        assert!(m.token_failed(None, s(0)).is_empty());
        assert!(matches!(
            m.state(),
            ConnState::Reconnecting { attempt: 1, .. }
        ));
        assert_eq!(m.tick(s(1)), vec![Action::NeedToken { stale: false }]);
    }

    #[test]
    fn offline_pauses_and_online_retries_at_once() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        m.closed(g, &err(), s(0));
        m.set_online(false, s(0));
        assert_eq!(
            m.state(),
            &ConnState::Disconnected {
                reason: Some(DisconnectReason::Offline)
            }
        );
        for t in 0..500 {
            assert!(m.tick(s(t)).is_empty());
        }
        open_gen(&m.set_online(true, s(500)));
        assert_eq!(m.state(), &ConnState::Connecting { attempt: 0 });
    }

    #[test]
    fn an_unreachable_network_counts_as_offline() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        m.closed(g, &CloseKind::Unreachable("no route".into()), s(0));
        assert!(!m.is_online());
        assert_eq!(
            m.state(),
            &ConnState::Disconnected {
                reason: Some(DisconnectReason::Offline)
            }
        );
        open_gen(&m.set_online(true, s(3)));
    }

    #[test]
    fn retry_now_skips_the_wait() {
        let mut m = exact();
        let mut g = open_gen(&m.connect(s(0)));
        for _ in 0..5 {
            m.closed(g, &err(), s(0));
            g = m.generation();
            if let ConnState::Reconnecting { retry_at, .. } = m.state().clone() {
                g = open_gen(&m.tick(retry_at));
            }
        }
        m.closed(g, &err(), s(100));
        assert!(matches!(m.state(), ConnState::Reconnecting { .. }));
        open_gen(&m.retry_now(s(100)));
        // Retry now does nothing when already connected.
        let g = m.generation();
        m.opened(g, s(100));
        assert!(m.retry_now(s(101)).is_empty());
    }

    #[test]
    fn an_attempt_cap_gives_up_and_retry_now_revives() {
        let mut m = ConnectionMachine::new(
            ConnectionPolicy {
                backoff: BackoffPolicy {
                    max_attempts: Some(2),
                    ..BackoffPolicy::exact()
                },
                ..ConnectionPolicy::default()
            },
            3,
        );
        m.token_ready(s(0));
        let mut g = open_gen(&m.connect(s(0)));
        let mut now = s(0);
        loop {
            m.closed(g, &err(), now);
            match m.state().clone() {
                ConnState::Reconnecting { retry_at, .. } => {
                    now = retry_at;
                    g = open_gen(&m.tick(now));
                }
                other => {
                    assert_eq!(
                        other,
                        ConnState::Disconnected {
                            reason: Some(DisconnectReason::GaveUp)
                        }
                    );
                    break;
                }
            }
        }
        open_gen(&m.retry_now(now));
    }

    #[test]
    fn a_hanging_attempt_times_out() {
        let mut m = exact();
        let g = open_gen(&m.connect(s(0)));
        assert!(m.tick(s(14)).is_empty());
        let a = m.tick(s(15));
        assert_eq!(
            a[0],
            Action::Close {
                generation: g,
                code: CLOSE_NORMAL,
                reason: "Connect timeout"
            }
        );
        assert!(matches!(
            m.state(),
            ConnState::Reconnecting { attempt: 1, .. }
        ));
        // Its late open is stale.
        assert!(matches!(m.opened(g, s(16))[..], [Action::Close { .. }]));
    }
}
