//! How far one thread is synced, as a pure state machine: the catch-up runs
//! on each connection, the stored cursor, the thread's existence on the
//! server (and creating it), and when the outbox may send into it.
//!
//! The caller (a thin system per step) does the I/O: it asks
//! [`ThreadSyncMachine::start_fetch`] whether to fetch a page and from where, hands
//! the reply to [`ThreadSyncMachine::on_reply`], asks
//! [`ThreadSyncMachine::cursor_after`] how far a stored group of messages moves the
//! cursor and, once they are on disk, [`ThreadSyncMachine::set_cursor`].
//!
//! The rules:
//! - A run is one pass of catch-up on one connection, from the stored cursor.
//!   A page of an abandoned run (the store rolled back, or the connection
//!   changed) is delivered but neither moves the cursor nor ends catch-up,
//!   since nothing says it is contiguous with what is stored.
//! - Live messages move the cursor only once the thread is caught up on that
//!   connection; another client's messages never do. (A gap is what loses a
//!   message; an overlap only fetches again what the store deduplicates.)
//! - Live messages stored before that are held: the subscription was
//!   answered before the run's first page was asked for, so the pages and
//!   the live messages of one connection leave no gap between them, and the
//!   run's end moves the cursor over both. (Otherwise a message that came
//!   live while the last page was on its way, and is not in it, would stay
//!   past the cursor until the next message.)
//! - Without idempotent sends on the server, a resend waits until the thread
//!   has been caught up again ([`ThreadSyncMachine::look_again`]), where a send
//!   that did arrive shows up instead of going twice.
//! - A thread missing on the server is created before its first send; a
//!   failed create is tried again after [`CREATE_RETRY`].

use std::time::Duration;

use super::catchup::{CatchupCursor, PageOutcome, on_page};

/// Pause after a failed history page before asking again.
pub const FETCH_RETRY: Duration = Duration::from_secs(5);
/// Pause after a failed thread create before trying again.
pub const CREATE_RETRY: Duration = Duration::from_secs(5);

/// Where the current catch-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Idle,
    InFlight,
    /// Failed; not before `until` (the caller's clock).
    Waiting {
        until: Duration,
    },
}

/// A history page to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The `after` value: the server's own string, or the epoch.
    pub after: String,
    /// The run the reply belongs to.
    pub run: u64,
}

/// The answer to a history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageReply<'a> {
    /// The rows' `created_at`, oldest first.
    Rows(Vec<&'a str>),
    /// The server has no such thread: nothing to catch up on.
    NoThread,
    /// It failed; ask again after `retry_after` (or [`FETCH_RETRY`]).
    Failed { retry_after: Option<Duration> },
}

/// What a reply meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEffect {
    /// Of an abandoned run: drop it.
    Stale,
    /// Rows to store and show, of run `run`; `outcome` says whether more come.
    Rows { run: u64, outcome: PageOutcome },
    /// Nothing to store.
    Nothing,
}

/// Where a group of messages came from, which decides whether it may move
/// the stored cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The socket of connection `generation`.
    Live { generation: u64 },
    /// A page of catch-up run `run`.
    Catchup { run: u64 },
    /// Another client on this profile stored them.
    Elsewhere,
}

/// Whether the outbox may send into the thread now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendGate {
    /// The thread must be created on the server first.
    NeedsThread,
    /// Not yet: catch-up or the subscription is not done on this connection.
    Wait,
    Open,
}

/// The sync state of one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSyncMachine {
    /// The stored cursor, verbatim.
    stored: Option<String>,
    on_server: bool,
    /// The connection generation the thread was caught up on.
    caught_up_on: Option<u64>,
    fetch: Fetch,
    run: u64,
    /// The generation the current run belongs to.
    run_gen: Option<u64>,
    /// Where the current run's next page starts.
    fetch_cursor: CatchupCursor,
    /// The newest live message of connection `.0` stored before the thread
    /// was caught up on it (see the module's rules).
    held_live: Option<(u64, CatchupCursor)>,
    creating: bool,
    create_after: Duration,
}

impl ThreadSyncMachine {
    /// A thread as stored: its cursor and whether it is known on the server.
    pub fn new(cursor: Option<String>, on_server: bool) -> Self {
        ThreadSyncMachine {
            fetch_cursor: CatchupCursor::from_raw(cursor.as_deref()),
            stored: cursor,
            on_server,
            caught_up_on: None,
            fetch: Fetch::Idle,
            run: 0,
            run_gen: None,
            held_live: None,
            creating: false,
            create_after: Duration::ZERO,
        }
    }

    /// The cursor to store.
    pub fn cursor(&self) -> Option<&str> {
        self.stored.as_deref()
    }

    pub fn on_server(&self) -> bool {
        self.on_server
    }

    pub fn fetch(&self) -> Fetch {
        self.fetch
    }

    /// The current run.
    pub fn run(&self) -> u64 {
        self.run
    }

    /// Caught up on connection `generation`.
    pub fn is_caught_up(&self, generation: u64) -> bool {
        self.caught_up_on == Some(generation)
    }

    /// The next page to fetch on connection `generation`, if one is due:
    /// the subscription is answered (or failed: history is fetched anyway),
    /// the thread is not caught up, nothing is in flight and no pause runs.
    /// A new connection starts a new run from the stored cursor.
    pub fn start_fetch(
        &mut self,
        generation: u64,
        subscription_answered: bool,
        now: Duration,
    ) -> Option<PageRequest> {
        if self.is_caught_up(generation) || !subscription_answered {
            return None;
        }
        match self.fetch {
            Fetch::InFlight => return None,
            Fetch::Waiting { until } if now < until => return None,
            _ => {}
        }
        if self.run_gen != Some(generation) {
            self.run += 1;
            self.run_gen = Some(generation);
            self.fetch_cursor = CatchupCursor::from_raw(self.stored.as_deref());
        }
        self.fetch = Fetch::InFlight;
        Some(PageRequest {
            after: self.fetch_cursor.after().to_owned(),
            run: self.run,
        })
    }

    /// The reply to the page of `run`, asked on connection `asked_on`;
    /// `current` is the connection now. Pages of `limit` rows mean more.
    pub fn on_reply(
        &mut self,
        run: u64,
        asked_on: u64,
        current: u64,
        reply: PageReply<'_>,
        limit: usize,
        now: Duration,
    ) -> ReplyEffect {
        if run != self.run {
            return ReplyEffect::Stale;
        }
        self.fetch = Fetch::Idle;
        let still_current = asked_on == current;
        match reply {
            PageReply::Rows(created_ats) => {
                let outcome = on_page(&mut self.fetch_cursor, created_ats, limit);
                if outcome != PageOutcome::More && still_current {
                    self.caught_up_on = Some(asked_on);
                }
                ReplyEffect::Rows { run, outcome }
            }
            PageReply::NoThread => {
                if still_current {
                    self.caught_up_on = Some(asked_on);
                }
                ReplyEffect::Nothing
            }
            PageReply::Failed { retry_after } => {
                self.fetch = Fetch::Waiting {
                    until: now + retry_after.unwrap_or(FETCH_RETRY),
                };
                ReplyEffect::Nothing
            }
        }
    }

    /// The cursor after storing messages with these `created_at`s from
    /// `origin`, or `None` when it stays as it is.
    pub fn cursor_after<'a>(
        &self,
        origin: Origin,
        created_ats: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let contiguous = match origin {
            Origin::Catchup { run } => run == self.run && self.run_gen.is_some(),
            Origin::Live { generation } => self.is_caught_up(generation),
            Origin::Elsewhere => false,
        };
        if !contiguous {
            return None;
        }
        let mut c = CatchupCursor::from_raw(self.stored.as_deref());
        for at in created_ats {
            c.observe(at);
        }
        // The page that ends the run also covers what came live meanwhile.
        if let (Origin::Catchup { .. }, Some((generation, held))) = (origin, &self.held_live)
            && self.run_gen == Some(*generation)
            && self.is_caught_up(*generation)
            && let Some(at) = held.raw()
        {
            c.observe(at);
        }
        let raw = c.raw().map(str::to_owned);
        (raw != self.stored).then_some(raw).flatten()
    }

    /// The cursor is stored as `cursor`.
    pub fn set_cursor(&mut self, cursor: String) {
        self.stored = Some(cursor);
    }

    /// Live messages of connection `generation` with these `created_at`s
    /// are stored. Before the thread is caught up on that connection they
    /// do not move the cursor ([`Self::cursor_after`]); they are held until
    /// the run's end moves it over them.
    pub fn live_stored<'a>(
        &mut self,
        generation: u64,
        created_ats: impl IntoIterator<Item = &'a str>,
    ) {
        if self.is_caught_up(generation) {
            return;
        }
        if self
            .held_live
            .as_ref()
            .is_some_and(|(g, _)| *g != generation)
        {
            self.held_live = None; // of an older connection
        }
        let (_, held) = self
            .held_live
            .get_or_insert_with(|| (generation, CatchupCursor::default()));
        for at in created_ats {
            held.observe(at);
        }
    }

    /// Whether the current run has ended over held live messages that the
    /// stored cursor has not reached: storing an empty page of the run
    /// moves it over them.
    pub fn holds_live_past_cursor(&self) -> bool {
        self.cursor_after(Origin::Catchup { run: self.run }, [])
            .is_some()
    }

    /// A write failed or the store rolled back: the stored state (when read
    /// again) is the truth, the run in flight is abandoned, and catch-up
    /// starts over after [`FETCH_RETRY`] (a full disk stays full a while).
    pub fn refetch_from_store(&mut self, stored: Option<(Option<String>, bool)>, now: Duration) {
        if let Some((cursor, on_server)) = stored {
            self.stored = cursor;
            self.on_server = on_server;
        }
        self.caught_up_on = None;
        self.run += 1;
        self.run_gen = None;
        self.held_live = None;
        self.fetch = Fetch::Waiting {
            until: now + FETCH_RETRY,
        };
    }

    /// Catch up again before the next send (a resend without idempotency,
    /// or another client's sends taken over).
    pub fn look_again(&mut self) {
        self.caught_up_on = None;
    }

    /// Whether to ask the server to create the thread now.
    pub fn should_create(&self, now: Duration) -> bool {
        !self.on_server && !self.creating && now >= self.create_after
    }

    pub fn create_started(&mut self) {
        self.creating = true;
    }

    /// The server has the thread (created, or listed). Returns whether that
    /// is news to store.
    pub fn exists_on_server(&mut self) -> bool {
        self.creating = false;
        !std::mem::replace(&mut self.on_server, true)
    }

    pub fn create_failed(&mut self, now: Duration) {
        self.creating = false;
        self.create_after = now + CREATE_RETRY;
    }

    /// A send was refused because the thread is not on the server. Returns
    /// whether that is news to store.
    pub fn missing_on_server(&mut self) -> bool {
        std::mem::replace(&mut self.on_server, false)
    }

    /// Whether the outbox may send into the thread on connection
    /// `generation`: it exists, it is caught up, and either it is subscribed
    /// (the echo is the ack) or the server acks sends itself.
    pub fn send_gate(&self, generation: u64, subscribed: bool, acked_by_server: bool) -> SendGate {
        if !self.on_server {
            SendGate::NeedsThread
        } else if self.is_caught_up(generation) && (subscribed || acked_by_server) {
            SendGate::Open
        } else {
            SendGate::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const T1: &str = "2026-01-01T00:00:01Z";
    const T2: &str = "2026-01-01T00:00:02Z";
    const T3: &str = "2026-01-01T00:00:03Z";

    fn fresh() -> ThreadSyncMachine {
        ThreadSyncMachine::new(None, true)
    }

    #[test]
    fn nothing_is_fetched_before_the_subscription_is_answered() {
        let mut s = fresh();
        assert_eq!(s.start_fetch(1, false, S), None);
        let p = s.start_fetch(1, true, S).unwrap();
        assert_eq!(p.after, super::super::catchup::FROM_THE_START);
        assert_eq!(p.run, 1);
        // One page in flight at a time.
        assert_eq!(s.start_fetch(1, true, S), None);
    }

    #[test]
    fn pages_until_a_short_one_then_caught_up_on_that_connection_only() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        let e = s.on_reply(p.run, 1, 1, PageReply::Rows(vec![T1, T2]), 2, S);
        assert_eq!(
            e,
            ReplyEffect::Rows {
                run: 1,
                outcome: PageOutcome::More
            }
        );
        assert!(!s.is_caught_up(1));
        let p = s.start_fetch(1, true, S).unwrap();
        assert_eq!(p.after, T2, "the next page starts after the last row");
        assert_eq!(p.run, 1, "the same run");
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![T3]), 2, S);
        assert!(s.is_caught_up(1));
        assert_eq!(s.start_fetch(1, true, S), None);
        // A new connection: a new run, from the stored cursor (nothing was
        // stored here, so from the start again).
        assert!(!s.is_caught_up(2));
        let p = s.start_fetch(2, true, S).unwrap();
        assert_eq!(
            (p.run, p.after.as_str()),
            (2, super::super::catchup::FROM_THE_START)
        );
    }

    #[test]
    fn a_new_run_resumes_from_the_stored_cursor() {
        let mut s = ThreadSyncMachine::new(Some(T2.into()), true);
        assert_eq!(s.start_fetch(7, true, S).unwrap().after, T2);
    }

    #[test]
    fn a_reply_from_an_older_connection_does_not_end_catch_up() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        // The socket dropped and came back (generation 2) meanwhile.
        let e = s.on_reply(p.run, 1, 2, PageReply::Rows(vec![T1]), 2, S);
        assert!(matches!(e, ReplyEffect::Rows { .. }));
        assert!(!s.is_caught_up(1) && !s.is_caught_up(2));
        assert!(s.start_fetch(2, true, S).is_some());
    }

    #[test]
    fn live_messages_stored_during_catch_up_are_covered_when_it_ends() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        // T3 came live while the first page was on its way: stored, held.
        s.live_stored(1, [T3]);
        assert_eq!(s.cursor_after(Origin::Live { generation: 1 }, [T3]), None);
        assert!(!s.holds_live_past_cursor());
        // A full page: the run goes on, and only its own rows count.
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![T1]), 1, S);
        assert!(!s.is_caught_up(1));
        assert_eq!(
            s.cursor_after(Origin::Catchup { run: p.run }, [T1])
                .as_deref(),
            Some(T1)
        );
        s.set_cursor(T1.into());
        // The last page ends before T3: the run's end covers it anyway.
        let p = s.start_fetch(1, true, S).unwrap();
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![T2]), 2, S);
        assert!(s.is_caught_up(1));
        assert_eq!(
            s.cursor_after(Origin::Catchup { run: p.run }, [T2])
                .as_deref(),
            Some(T3)
        );
    }

    #[test]
    fn an_empty_last_page_still_moves_the_cursor_over_held_live_messages() {
        let mut s = ThreadSyncMachine::new(Some(T1.into()), true);
        let p = s.start_fetch(1, true, S).unwrap();
        s.live_stored(1, [T2]);
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert!(s.holds_live_past_cursor());
        let c = s.cursor_after(Origin::Catchup { run: p.run }, []).unwrap();
        assert_eq!(c, T2);
        s.set_cursor(c);
        assert!(!s.holds_live_past_cursor());
        // Once caught up, live messages move the cursor themselves.
        s.live_stored(1, [T3]);
        assert!(!s.holds_live_past_cursor());
        assert_eq!(
            s.cursor_after(Origin::Live { generation: 1 }, [T3])
                .as_deref(),
            Some(T3)
        );
    }

    #[test]
    fn a_thread_the_server_did_not_have_yet_covers_what_came_live_meanwhile() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.live_stored(1, [T1]);
        assert_eq!(
            s.on_reply(p.run, 1, 1, PageReply::NoThread, 2, S),
            ReplyEffect::Nothing
        );
        assert!(s.holds_live_past_cursor());
        assert_eq!(
            s.cursor_after(Origin::Catchup { run: s.run() }, [])
                .as_deref(),
            Some(T1)
        );
    }

    #[test]
    fn live_messages_held_on_another_connection_or_before_a_refetch_are_not_covered() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.live_stored(1, [T3]);
        // The socket dropped: connection 2's run says nothing of T3's gap.
        s.on_reply(p.run, 1, 2, PageReply::Rows(vec![]), 2, S);
        let p = s.start_fetch(2, true, S).unwrap();
        s.on_reply(p.run, 2, 2, PageReply::Rows(vec![T1]), 2, S);
        assert!(s.is_caught_up(2));
        assert_eq!(
            s.cursor_after(Origin::Catchup { run: p.run }, [T1])
                .as_deref(),
            Some(T1)
        );
        // A failed write abandons the run, and what it held.
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.live_stored(1, [T3]);
        s.refetch_from_store(None, S);
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert!(!s.holds_live_past_cursor());
        let p = s.start_fetch(1, true, S + FETCH_RETRY).unwrap();
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert!(s.is_caught_up(1));
        assert!(!s.holds_live_past_cursor());
    }

    #[test]
    fn an_abandoned_runs_page_is_stale_and_does_not_move_the_cursor() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.refetch_from_store(None, S);
        assert_eq!(
            s.on_reply(p.run, 1, 1, PageReply::Rows(vec![T1]), 2, S),
            ReplyEffect::Stale
        );
        assert_eq!(s.cursor_after(Origin::Catchup { run: p.run }, [T1]), None);
        assert!(!s.is_caught_up(1));
    }

    #[test]
    fn a_failed_page_waits_then_asks_again_from_the_same_place() {
        let mut s = ThreadSyncMachine::new(Some(T1.into()), true);
        let p = s.start_fetch(1, true, S).unwrap();
        let e = s.on_reply(
            p.run,
            1,
            1,
            PageReply::Failed {
                retry_after: Some(3 * S),
            },
            2,
            S,
        );
        assert_eq!(e, ReplyEffect::Nothing);
        assert_eq!(s.fetch(), Fetch::Waiting { until: 4 * S });
        assert_eq!(s.start_fetch(1, true, 3 * S), None);
        assert_eq!(s.start_fetch(1, true, 4 * S).unwrap().after, T1);
        // Without a Retry-After the pause is the default.
        let p = PageRequest {
            after: T1.into(),
            run: s.run(),
        };
        s.on_reply(
            p.run,
            1,
            1,
            PageReply::Failed { retry_after: None },
            2,
            4 * S,
        );
        assert_eq!(
            s.fetch(),
            Fetch::Waiting {
                until: 4 * S + FETCH_RETRY
            }
        );
    }

    #[test]
    fn no_thread_on_the_server_is_caught_up() {
        let mut s = ThreadSyncMachine::new(None, false);
        let p = s.start_fetch(1, true, S).unwrap();
        assert_eq!(
            s.on_reply(p.run, 1, 1, PageReply::NoThread, 2, S),
            ReplyEffect::Nothing
        );
        assert!(s.is_caught_up(1));
    }

    #[test]
    fn live_messages_move_the_cursor_only_once_caught_up() {
        let mut s = fresh();
        assert_eq!(s.cursor_after(Origin::Live { generation: 1 }, [T1]), None);
        let p = s.start_fetch(1, true, S).unwrap();
        // Pages of the current run move it (they are contiguous).
        assert_eq!(
            s.cursor_after(Origin::Catchup { run: p.run }, [T1]),
            Some(T1.into())
        );
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert_eq!(
            s.cursor_after(Origin::Live { generation: 1 }, [T2, T1]),
            Some(T2.into())
        );
        // Not for another connection, and never another client's.
        assert_eq!(s.cursor_after(Origin::Live { generation: 2 }, [T2]), None);
        assert_eq!(s.cursor_after(Origin::Elsewhere, [T2]), None);
        s.set_cursor(T2.into());
        assert_eq!(s.cursor(), Some(T2));
        // An older or equal instant changes nothing.
        assert_eq!(s.cursor_after(Origin::Live { generation: 1 }, [T1]), None);
        assert_eq!(
            s.cursor_after(
                Origin::Live { generation: 1 },
                ["2026-01-01T00:00:02+00:00"]
            ),
            None
        );
    }

    #[test]
    fn a_rollback_restores_the_stored_state_and_pauses() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        s.set_cursor(T3.into());
        s.refetch_from_store(Some((Some(T1.into()), false)), 2 * S);
        assert_eq!((s.cursor(), s.on_server()), (Some(T1), false));
        assert!(!s.is_caught_up(1));
        assert_eq!(s.start_fetch(1, true, 2 * S), None, "paused");
        let p = s.start_fetch(1, true, 2 * S + FETCH_RETRY).unwrap();
        assert_eq!(p.after, T1);
        assert_eq!(p.run, 3, "a new run");
    }

    #[test]
    fn a_missing_thread_is_created_once_and_retried_after_a_failure() {
        let mut s = ThreadSyncMachine::new(None, false);
        assert_eq!(s.send_gate(1, true, true), SendGate::NeedsThread);
        assert!(s.should_create(S));
        s.create_started();
        assert!(!s.should_create(S), "one create at a time");
        s.create_failed(S);
        assert!(!s.should_create(S + CREATE_RETRY / 2));
        assert!(s.should_create(S + CREATE_RETRY));
        s.create_started();
        assert!(s.exists_on_server(), "news to store");
        assert!(!s.exists_on_server(), "already known");
        assert!(!s.should_create(10 * S));
        // A refusal saying it is gone: create it again.
        assert!(s.missing_on_server());
        assert!(!s.missing_on_server());
        assert!(s.should_create(10 * S));
    }

    #[test]
    fn the_outbox_waits_for_catch_up_and_for_an_ack_path() {
        let mut s = fresh();
        assert_eq!(s.send_gate(1, true, true), SendGate::Wait);
        let p = s.start_fetch(1, true, S).unwrap();
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert_eq!(s.send_gate(1, true, false), SendGate::Open);
        // Not subscribed: only a server that acks sends itself.
        assert_eq!(s.send_gate(1, false, false), SendGate::Wait);
        assert_eq!(s.send_gate(1, false, true), SendGate::Open);
        // Another connection: catch up there first.
        assert_eq!(s.send_gate(2, true, true), SendGate::Wait);
    }

    #[test]
    fn a_resend_without_idempotency_waits_for_catch_up_again() {
        let mut s = fresh();
        let p = s.start_fetch(1, true, S).unwrap();
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert_eq!(s.send_gate(1, true, true), SendGate::Open);
        s.look_again();
        assert_eq!(s.send_gate(1, true, true), SendGate::Wait);
        // The same connection: its run goes on from its last page.
        let p = s.start_fetch(1, true, S).unwrap();
        assert_eq!(p.run, 1);
        s.on_reply(p.run, 1, 1, PageReply::Rows(vec![]), 2, S);
        assert_eq!(s.send_gate(1, true, true), SendGate::Open);
    }
}
