//! The outbox: a documented state machine for sending, after
//! matrix-rust-sdk's send queue.
//!
//! Design note.
//! - A message is encrypted and persisted *before* it goes on the wire; the
//!   local echo shows at once. The same blob (same IV) and the same
//!   `client_message_id` are resent on every retry, so a relay stores it once
//!   and a stock server's echo (or the catch-up after a reconnect) still
//!   identifies it.
//! - Order is kept per thread: entries go out in order, at most `window` of a
//!   thread in flight at once. A server processes one connection's frames in
//!   order, so a window keeps the order and takes the round trip off the
//!   per-message path. With `window` 1 (stop-and-wait, what a stock server
//!   needs: its errors name no message) the next entry goes only after the
//!   previous one was acknowledged. The one case a window can reorder: the
//!   server refuses an entry transiently (rate limited) while later ones are
//!   already on their way; the refused one is then stored after them.
//!   Threads do not wait for each other.
//! - A thread's entries go only when the caller says the thread is ready
//!   (caught up on this connection, and created on the server).
//! - An attempt ends with an ack (done), a refusal or a timeout. Transient
//!   failures wait with backoff and retry; after `max_attempts`, or at once
//!   for a refusal that cannot succeed later, the entry is `Failed` — visible,
//!   never dropped — until the user retries or cancels it. A failed entry does
//!   not hold back later ones; a retried one is sent after what is queued.
//! - A lost connection is nobody's fault: in-flight entries go back to
//!   `Queued` without counting an attempt.

use std::collections::BTreeMap;
use std::time::Duration;

use super::backoff::BackoffPolicy;
use crate::ids::ThreadId;
use crate::wire::{ErrorCode, MessageSent, WireMessage};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxPolicy {
    /// Automatic attempts before an entry is `Failed`.
    pub max_attempts: u32,
    /// Wait between attempts (no jitter needed: one client's own queue).
    pub retry: BackoffPolicy,
    /// An unacknowledged send counts as failed after this long.
    pub send_timeout: Duration,
    /// Entries of one thread in flight at once (at least 1).
    pub window: usize,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy {
            max_attempts: 5,
            retry: BackoffPolicy {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
                jitter: false,
                max_attempts: None,
            },
            send_timeout: Duration::from_secs(10),
            window: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    Queued,
    /// Sent on the connection of `generation` at `since`.
    InFlight {
        since: Duration,
        generation: u64,
    },
    /// A failed attempt; try again at `until`.
    Waiting {
        until: Duration,
        last_error: String,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub thread: ThreadId,
    pub client_message_id: String,
    pub ciphertext: String,
    pub iv: String,
    /// Attempts that failed (timeouts and refusals).
    pub attempts: u32,
    pub state: EntryState,
}

impl Entry {
    /// The message the server stored for this entry, by its [ext]
    /// `message_sent` ack (which carries the id and time, not the blob):
    /// this entry's own blob under them. `None` if the ack is another
    /// thread's.
    pub fn stored_as(&self, ack: &MessageSent) -> Option<WireMessage> {
        (ack.thread_id == self.thread && ack.client_message_id == self.client_message_id).then(
            || WireMessage {
                id: ack.id.clone(),
                thread_id: ack.thread_id,
                ciphertext: self.ciphertext.clone(),
                iv: self.iv.clone(),
                created_at: ack.created_at.clone(),
                client_message_id: Some(ack.client_message_id.clone()),
            },
        )
    }
}

/// Whether a refusal can succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Transient,
    Permanent,
}

/// What a server's refusal of a send means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRefusal {
    pub retry: Retry,
    /// The server has no such thread: create it again before the resend.
    pub thread_missing: bool,
}

/// Reads a refusal of a send: by its [ext] code, or, from a stock server
/// (no code), by its message. `None`: the error is not about a send (a
/// subscription's, or one this client does not know).
pub fn send_refusal(code: Option<ErrorCode>, message: &str) -> Option<SendRefusal> {
    let r = |retry, thread_missing| SendRefusal {
        retry,
        thread_missing,
    };
    Some(match code {
        Some(ErrorCode::ThreadNotFound) => r(Retry::Transient, true),
        Some(c) if c.is_transient() => r(Retry::Transient, false),
        Some(_) => r(Retry::Permanent, false),
        None => match message {
            "Thread not found" => r(Retry::Transient, true),
            "Failed to save message" => r(Retry::Transient, false),
            "Invalid base64 encoding" | "Missing required fields: thread_id, ciphertext, iv" => {
                r(Retry::Permanent, false)
            }
            _ => return None,
        },
    })
}

/// The queue of sends, in the order they were written.
#[derive(Debug, Clone)]
pub struct SendQueue {
    pub policy: OutboxPolicy,
    entries: BTreeMap<u64, Entry>,
}

impl SendQueue {
    pub fn new(policy: OutboxPolicy) -> Self {
        SendQueue {
            policy,
            entries: BTreeMap::new(),
        }
    }

    /// Adds an entry (new, or restored after a restart).
    pub fn push(&mut self, e: Entry) {
        self.entries.insert(e.seq, e);
    }

    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Threads with entries that can still go out (not `Failed`).
    pub fn pending_threads(&self) -> Vec<ThreadId> {
        let mut v: Vec<ThreadId> = self
            .entries
            .values()
            .filter(|e| !matches!(e.state, EntryState::Failed(_)))
            .map(|e| e.thread)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Picks what to send now and marks it in flight: per ready thread, its
    /// oldest live entries, in order, up to the window; an entry that must
    /// still wait holds back those after it.
    pub fn due(
        &mut self,
        now: Duration,
        generation: u64,
        ready: impl Fn(ThreadId) -> bool,
    ) -> Vec<u64> {
        let window = self.policy.window.max(1);
        // Per thread: entries in flight, and whether the thread is held back.
        let mut threads: Vec<(ThreadId, usize, bool)> = Vec::new();
        let mut out = Vec::new();
        for e in self.entries.values_mut() {
            let i = match threads.iter().position(|(t, ..)| *t == e.thread) {
                Some(i) => i,
                None => {
                    threads.push((e.thread, 0, false));
                    threads.len() - 1
                }
            };
            let (_, in_flight, held) = &mut threads[i];
            if *held {
                continue;
            }
            match &e.state {
                EntryState::Failed(_) => continue,
                EntryState::InFlight { .. } => *in_flight += 1,
                EntryState::Waiting { until, .. } if now < *until => *held = true,
                EntryState::Queued | EntryState::Waiting { .. } => {
                    if *in_flight < window && ready(e.thread) {
                        e.state = EntryState::InFlight {
                            since: now,
                            generation,
                        };
                        *in_flight += 1;
                        out.push(e.seq);
                    } else {
                        *held = true;
                    }
                }
            }
        }
        out
    }

    /// The entry with this `client_message_id`.
    pub fn by_client_id(&self, client_message_id: &str) -> Option<&Entry> {
        self.entries
            .values()
            .find(|e| e.client_message_id == client_message_id)
    }

    /// The entry a message stored in `thread` completes: by its
    /// `client_message_id` ([ext] acks and echoes), or by the very same blob
    /// (a stock server's echo, or found in catch-up), whatever its state.
    pub fn completed_by(
        &self,
        thread: ThreadId,
        client_message_id: Option<&str>,
        ciphertext: &str,
        iv: &str,
    ) -> Option<u64> {
        self.entries
            .values()
            .find(|e| {
                e.thread == thread
                    && (client_message_id == Some(e.client_message_id.as_str())
                        || (e.iv == iv && e.ciphertext == ciphertext))
            })
            .map(|e| e.seq)
    }

    /// Removes a delivered entry: the send is done.
    pub fn remove(&mut self, seq: u64) -> Option<Entry> {
        self.entries.remove(&seq)
    }

    /// The entry a stock server's uncorrelated error belongs to: the oldest
    /// in flight on this connection.
    pub fn oldest_in_flight(&self, generation: u64) -> Option<u64> {
        self.entries
            .values()
            .filter(|e| matches!(e.state, EntryState::InFlight { generation: g, .. } if g == generation))
            .min_by_key(|e| match e.state {
                EntryState::InFlight { since, .. } => (since, e.seq),
                _ => unreachable!(),
            })
            .map(|e| e.seq)
    }

    fn fail_attempt(&mut self, seq: u64, reason: String, retry: Retry, now: Duration) {
        let policy = self.policy;
        let Some(e) = self.entries.get_mut(&seq) else {
            return;
        };
        e.attempts += 1;
        e.state = match retry {
            Retry::Permanent => EntryState::Failed(reason),
            Retry::Transient if e.attempts >= policy.max_attempts => {
                EntryState::Failed(format!("gave up after {} attempts: {reason}", e.attempts))
            }
            Retry::Transient => EntryState::Waiting {
                until: now
                    + policy
                        .retry
                        .delay(e.attempts, 0.0)
                        .unwrap_or(policy.retry.cap),
                last_error: reason,
            },
        };
    }

    /// The server refused this entry.
    pub fn refused(&mut self, seq: u64, reason: &str, retry: Retry, now: Duration) {
        if matches!(
            self.entries.get(&seq).map(|e| &e.state),
            Some(EntryState::InFlight { .. })
        ) {
            self.fail_attempt(seq, reason.to_owned(), retry, now);
        }
    }

    /// Sends without an answer within the timeout count as failed attempts.
    /// Returns the entries that changed.
    pub fn tick(&mut self, now: Duration) -> Vec<u64> {
        let timeout = self.policy.send_timeout;
        let late: Vec<u64> = self
            .entries
            .values()
            .filter(|e| matches!(e.state, EntryState::InFlight { since, .. } if now.saturating_sub(since) >= timeout))
            .map(|e| e.seq)
            .collect();
        for &seq in &late {
            self.fail_attempt(
                seq,
                "no acknowledgement from the server".into(),
                Retry::Transient,
                now,
            );
        }
        late
    }

    /// The connection is gone: what was in flight goes again later, without
    /// counting an attempt.
    pub fn connection_lost(&mut self) {
        for e in self.entries.values_mut() {
            if matches!(e.state, EntryState::InFlight { .. }) {
                e.state = EntryState::Queued;
            }
        }
    }

    /// The user retries a failed entry: a fresh round of attempts.
    pub fn retry(&mut self, seq: u64) -> bool {
        match self.entries.get_mut(&seq) {
            Some(e) if matches!(e.state, EntryState::Failed(_) | EntryState::Waiting { .. }) => {
                e.attempts = 0;
                e.state = EntryState::Queued;
                true
            }
            _ => false,
        }
    }

    /// The user cancels an entry that is not in flight.
    pub fn cancel(&mut self, seq: u64) -> Option<Entry> {
        match self.entries.get(&seq)?.state {
            EntryState::InFlight { .. } => None,
            _ => self.entries.remove(&seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_a_send_by_code_or_by_a_stock_servers_message() {
        let t = |retry, thread_missing| {
            Some(SendRefusal {
                retry,
                thread_missing,
            })
        };
        assert_eq!(
            send_refusal(Some(ErrorCode::RateLimited), ""),
            t(Retry::Transient, false)
        );
        assert_eq!(
            send_refusal(Some(ErrorCode::PersistFailed), ""),
            t(Retry::Transient, false)
        );
        assert_eq!(
            send_refusal(Some(ErrorCode::ThreadNotFound), ""),
            t(Retry::Transient, true)
        );
        assert_eq!(
            send_refusal(Some(ErrorCode::PayloadTooLarge), ""),
            t(Retry::Permanent, false)
        );
        assert_eq!(
            send_refusal(None, "Thread not found"),
            t(Retry::Transient, true)
        );
        assert_eq!(
            send_refusal(None, "Failed to save message"),
            t(Retry::Transient, false)
        );
        assert_eq!(
            send_refusal(None, "Invalid base64 encoding"),
            t(Retry::Permanent, false)
        );
        assert_eq!(send_refusal(None, "Unknown message type: bogus"), None);
    }

    fn t(n: u8) -> ThreadId {
        ThreadId::parse(&format!("{n:02x}000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
    }

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn entry(seq: u64, thread: ThreadId) -> Entry {
        Entry {
            seq,
            thread,
            client_message_id: format!("c{seq}"),
            ciphertext: format!("ct{seq}"),
            iv: format!("iv{seq}"),
            attempts: 0,
            state: EntryState::Queued,
        }
    }

    fn outbox(entries: &[(u64, u8)]) -> SendQueue {
        let mut o = SendQueue::new(OutboxPolicy::default());
        for &(seq, th) in entries {
            o.push(entry(seq, t(th)));
        }
        o
    }

    /// An [ext] ack by client id: the send is done.
    fn ack(o: &mut SendQueue, client_message_id: &str) -> Option<Entry> {
        let seq = o.by_client_id(client_message_id)?.seq;
        o.remove(seq)
    }

    #[test]
    fn a_stored_message_completes_its_entry_by_client_id_or_blob_in_its_thread() {
        let o = outbox(&[(1, 1), (2, 1), (3, 2)]);
        assert_eq!(o.completed_by(t(1), Some("c2"), "x", "y"), Some(2));
        assert_eq!(o.completed_by(t(1), None, "ct1", "iv1"), Some(1));
        // Another thread's client id or blob completes nothing here.
        assert_eq!(o.completed_by(t(1), Some("c3"), "x", "y"), None);
        assert_eq!(o.completed_by(t(1), None, "ct3", "iv3"), None);
        // The same ciphertext under another IV is another message.
        assert_eq!(o.completed_by(t(1), None, "ct1", "iv2"), None);
    }

    #[test]
    fn an_ack_stands_for_the_entrys_own_blob_under_the_servers_id_and_time() {
        let e = entry(7, t(1));
        let ack = MessageSent {
            id: "m-1".into(),
            thread_id: t(1),
            client_message_id: "c7".into(),
            created_at: "2026-01-01T00:00:01Z".into(),
        };
        let m = e.stored_as(&ack).unwrap();
        assert_eq!((m.id.as_str(), m.thread_id), ("m-1", t(1)));
        assert_eq!((m.ciphertext.as_str(), m.iv.as_str()), ("ct7", "iv7"));
        assert_eq!(m.created_at, ack.created_at);
        assert_eq!(m.client_message_id.as_deref(), Some("c7"));
        // Not for another thread, nor for another send.
        let other = MessageSent {
            thread_id: t(2),
            ..ack.clone()
        };
        assert_eq!(e.stored_as(&other), None);
        let other = MessageSent {
            client_message_id: "c8".into(),
            ..ack
        };
        assert_eq!(e.stored_as(&other), None);
    }

    #[test]
    fn a_window_sends_in_order_and_a_waiting_entry_holds_back_the_rest() {
        let mut o = SendQueue::new(OutboxPolicy {
            window: 3,
            ..OutboxPolicy::default()
        });
        for seq in 1..=5 {
            o.push(entry(seq, t(1)));
        }
        o.push(entry(6, t(2)));
        assert_eq!(o.due(s(0), 1, |_| true), [1, 2, 3, 6]);
        assert_eq!(
            o.due(s(0), 1, |_| true),
            Vec::<u64>::new(),
            "the window is full"
        );
        ack(&mut o, "c1").unwrap();
        assert_eq!(o.due(s(0), 1, |_| true), [4]);
        // 2 is refused transiently: it waits, and holds back 5 (3 and 4 are
        // already on their way).
        o.refused(2, "rate limited", Retry::Transient, s(0));
        ack(&mut o, "c3").unwrap();
        ack(&mut o, "c4").unwrap();
        assert_eq!(o.due(s(0), 1, |_| true), Vec::<u64>::new());
        assert_eq!(o.due(s(1), 1, |_| true), [2, 5]);
        // A lost connection sends everything again, in order.
        o.connection_lost();
        assert_eq!(o.due(s(2), 2, |_| true), [2, 5, 6]);
    }

    #[test]
    fn one_in_flight_per_thread_in_order_threads_in_parallel() {
        let mut o = outbox(&[(1, 1), (2, 1), (3, 2), (4, 1)]);
        assert_eq!(o.due(s(0), 1, |_| true), [1, 3]);
        assert!(o.due(s(0), 1, |_| true).is_empty());
        assert!(ack(&mut o, "c1").is_some());
        assert_eq!(o.due(s(0), 1, |_| true), [2]);
        assert!(
            o.completed_by(t(1), None, "ct2", "iv2")
                .and_then(|seq| o.remove(seq))
                .is_some()
        );
        assert!(
            o.completed_by(t(2), None, "ct3", "iv-other")
                .and_then(|seq| o.remove(seq))
                .is_none()
        );
        assert!(
            o.completed_by(t(1), None, "ct3", "iv3")
                .and_then(|seq| o.remove(seq))
                .is_none(),
            "thread must match"
        );
        assert_eq!(o.due(s(0), 1, |_| true), [4]);
    }

    #[test]
    fn threads_that_are_not_ready_wait() {
        let mut o = outbox(&[(1, 1), (2, 2)]);
        assert_eq!(o.due(s(0), 1, |th| th == t(2)), [2]);
        assert_eq!(o.due(s(0), 1, |_| true), [1]);
    }

    #[test]
    fn transient_failures_back_off_then_fail_visibly() {
        let mut o = outbox(&[(1, 1), (2, 1)]);
        let mut now = s(0);
        let mut waits = Vec::new();
        for _ in 0..4 {
            assert_eq!(o.due(now, 1, |_| true), [1]);
            o.refused(1, "rate_limited", Retry::Transient, now);
            let EntryState::Waiting { until, .. } = o.get(1).unwrap().state.clone() else {
                panic!()
            };
            waits.push((until - now).as_secs());
            // Entry 2 waits behind it: order is kept.
            assert!(
                o.due(until - Duration::from_millis(1), 1, |_| true)
                    .is_empty()
            );
            now = until;
        }
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(o.due(now, 1, |_| true), [1]);
        // The fifth attempt times out.
        assert_eq!(o.tick(now + s(10)), [1]);
        let EntryState::Failed(why) = &o.get(1).unwrap().state else {
            panic!("{:?}", o.get(1))
        };
        assert!(why.contains("gave up after 5 attempts"), "{why}");
        // Failed does not hold back the next one, and stays until the user acts.
        assert_eq!(o.due(now + s(10), 1, |_| true), [2]);
        assert_eq!(o.len(), 2);
        assert!(o.retry(1));
        assert_eq!(o.get(1).unwrap().attempts, 0);
        assert!(o.cancel(2).is_none(), "in flight cannot be cancelled");
        ack(&mut o, "c2");
        assert_eq!(o.due(now + s(11), 1, |_| true), [1]);
    }

    #[test]
    fn permanent_refusals_fail_at_once() {
        let mut o = outbox(&[(1, 1)]);
        o.due(s(0), 1, |_| true);
        o.refused(1, "payload too large", Retry::Permanent, s(0));
        assert_eq!(
            o.get(1).unwrap().state,
            EntryState::Failed("payload too large".into())
        );
        assert!(o.cancel(1).is_some());
        assert!(o.is_empty());
    }

    #[test]
    fn a_lost_connection_requeues_without_counting() {
        let mut o = outbox(&[(1, 1), (2, 2)]);
        o.due(s(0), 1, |_| true);
        o.connection_lost();
        assert!(
            o.iter()
                .all(|e| e.state == EntryState::Queued && e.attempts == 0)
        );
        // A refusal for the old connection's send no longer applies.
        o.refused(1, "late", Retry::Transient, s(1));
        assert_eq!(o.get(1).unwrap().attempts, 0);
        assert_eq!(o.due(s(1), 2, |_| true), [1, 2]);
    }

    #[test]
    fn uncorrelated_errors_hit_the_oldest_in_flight_of_the_connection() {
        let mut o = outbox(&[(1, 1), (2, 2), (3, 3)]);
        o.due(s(5), 1, |th| th == t(2));
        o.due(s(6), 1, |_| true);
        assert_eq!(o.oldest_in_flight(1), Some(2));
        assert_eq!(o.oldest_in_flight(2), None);
        assert_eq!(o.pending_threads(), [t(1), t(2), t(3)]);
    }
}
