//! Sending: the persistent outbox around `hush_core::policy::outbox` (read
//! its design note). A message is encrypted and written to the store before
//! it goes on the wire; it leaves after the thread is caught up on this
//! connection and exists on the server; retries reuse the same blob and
//! `client_message_id`; failures end visible, never dropped.
//!
//! Entries are numbered by the time they were written, in a lane of this
//! client's own (see [`Outbox::allocate_seq`]): several clients on one
//! profile (browser tabs, [`crate::shared`]) never number two entries alike,
//! and the order of writing holds across them.

use std::collections::HashMap;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::payload::{MessagePayload, message_fits};
use hush_core::policy::errors::{Concern, SendRef};
use hush_core::policy::outbox::{Entry, EntryState, OutboxPolicy, SendQueue, SendRefusal};
use hush_core::policy::thread_sync::SendGate;
use hush_core::wire::{ClientFrame, MessageSent, OutgoingMessage, ServerFrame, WireMessage};
use hush_net::{Connection, FrameReceived, SendFrame, SubState, Subscription};
use hush_store::{OutboxEntry, OutboxState};
use uuid::Uuid;

use crate::contacts::Contacts;
use crate::model::{LocalEcho, MessageStatus};
use crate::profile::{ProfileStore, StoreFailed};
use crate::shared::{OutboxRole, StoredElsewhere};
use crate::threads::{EnsureThread, Thread, ThreadKey, ThreadLog, ThreadSync, Threads};
use crate::vault::{Vault, VaultEvent};
use crate::{ChatSystems, now_ms};

pub(crate) fn plugin(app: &mut App) {
    app.insert_resource(Outbox::new(OutboxPolicy::default()))
        .add_message::<SendIntent>()
        .add_message::<OutboxIntent>()
        .add_message::<OutboxEvent>()
        .add_systems(
            Update,
            (
                load_outbox,
                mirror_outbox,
                take_over_sending,
                accept_sends,
                handle_send_errors,
                flush_outbox,
                tick_outbox,
                apply_outbox_intents,
                sync_echoes,
            )
                .chain()
                .in_set(ChatSystems::Outbox),
        );
}

/// Send `text` to the contact `to`.
#[derive(Message, Debug, Clone)]
pub struct SendIntent {
    pub to: Uuid,
    pub text: String,
}

/// The user acts on an outbox entry.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxIntent {
    /// A fresh round of attempts for a failed entry.
    Retry(u64),
    Cancel(u64),
}

#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum OutboxEvent {
    /// Written to the outbox (the local echo shows).
    Queued {
        thread: ThreadId,
        seq: u64,
        client_message_id: String,
    },
    /// The server stored it under `id`.
    Sent {
        thread: ThreadId,
        seq: u64,
        id: String,
    },
    /// Automatic retries are over.
    Failed {
        thread: ThreadId,
        seq: u64,
        reason: String,
    },
    Cancelled {
        thread: ThreadId,
        seq: u64,
    },
    /// Not queued at all (locked, not a contact, too long, storage failed).
    Rejected {
        reason: String,
    },
}

/// The outbox, a resource: the policy's [`SendQueue`] plus the texts of our
/// pending messages (memory only; the store holds the sealed blobs).
#[derive(Resource)]
pub struct Outbox {
    queue: SendQueue,
    texts: HashMap<u64, (String, i64)>,
    /// The lowest number the next entry may have.
    next_seq: u64,
    /// This client's lane: the low [`SEQ_LANE_BITS`] bits of its numbers.
    lane: u64,
    loaded: bool,
    generation: Option<u64>,
    revision: u64,
    shown_revision: u64,
}

/// Bits of an entry's number that name the client that wrote it. With the
/// milliseconds above them the numbers stay below 2^53, exact in JSON.
pub const SEQ_LANE_BITS: u32 = 12;

impl Outbox {
    fn new(policy: OutboxPolicy) -> Self {
        let lane = u64::from(Uuid::new_v4().as_u128() as u16) & ((1 << SEQ_LANE_BITS) - 1);
        Self::with_lane(policy, lane)
    }

    fn with_lane(policy: OutboxPolicy, lane: u64) -> Self {
        Outbox {
            queue: SendQueue::new(policy),
            texts: HashMap::new(),
            next_seq: 1,
            lane,
            loaded: false,
            generation: None,
            revision: 0,
            shown_revision: 0,
        }
    }

    /// The number of a new entry written at `now_ms`: the time in
    /// milliseconds above this client's lane, past every number seen.
    pub fn allocate_seq(&mut self, now_ms: i64) -> u64 {
        let lanes = 1u64 << SEQ_LANE_BITS;
        let floor = self
            .next_seq
            .max((now_ms.max(0) as u64).saturating_mul(lanes));
        // The first number at or above `floor` in this lane.
        let base = floor - floor % lanes;
        let seq = if base + self.lane >= floor {
            base + self.lane
        } else {
            base + lanes + self.lane
        };
        self.next_seq = seq + 1;
        seq
    }

    /// Takes in an entry read from the store (written here before a
    /// restart, or by another client): its text decrypted for the echo.
    fn restore(&mut self, s: OutboxEntry, text: Option<MessagePayload>) {
        self.next_seq = self.next_seq.max(s.seq + 1);
        let (content, ts) = match text {
            Some(p) => (p.content, p.timestamp),
            None => ("(cannot be shown)".to_owned(), s.created_ms),
        };
        self.texts.insert(s.seq, (content, ts));
        self.queue.push(Entry {
            seq: s.seq,
            thread: s.thread_id,
            client_message_id: s.client_message_id,
            ciphertext: s.sealed.ciphertext,
            iv: s.sealed.iv,
            attempts: s.attempts,
            state: match s.state {
                OutboxState::Queued => EntryState::Queued,
                OutboxState::Failed(r) => EntryState::Failed(r),
            },
        });
        self.revision += 1;
    }

    /// The pending entry a stored message completes (see
    /// [`SendQueue::completed_by`]).
    pub fn completed_by(&self, m: &WireMessage) -> Option<u64> {
        self.queue.completed_by(
            m.thread_id,
            m.client_message_id.as_deref(),
            &m.ciphertext,
            &m.iv,
        )
    }

    /// The message an [ext] `message_sent` ack says the server stored: our
    /// own entry's blob under the server's id and time.
    pub fn acked(&self, ack: &MessageSent) -> Option<WireMessage> {
        self.queue
            .by_client_id(&ack.client_message_id)?
            .stored_as(ack)
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.queue.iter()
    }

    /// Removes a delivered entry (the store already dropped it).
    pub(crate) fn complete(&mut self, seq: u64) -> Option<Entry> {
        let e = self.queue.remove(seq)?;
        self.texts.remove(&seq);
        self.revision += 1;
        Some(e)
    }

    /// The text of a pending entry.
    pub fn text(&self, seq: u64) -> Option<&str> {
        self.texts.get(&seq).map(|(t, _)| t.as_str())
    }

    /// When a pending entry was written, ms since the epoch (its sender
    /// clock).
    pub fn written_ms(&self, seq: u64) -> Option<i64> {
        self.texts.get(&seq).map(|(_, ms)| *ms)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

fn stored(e: &Entry, created_ms: i64) -> OutboxEntry {
    OutboxEntry {
        seq: e.seq,
        thread_id: e.thread,
        client_message_id: e.client_message_id.clone(),
        sealed: hush_core::crypto::Sealed {
            ciphertext: e.ciphertext.clone(),
            iv: e.iv.clone(),
        },
        attempts: e.attempts,
        state: match &e.state {
            EntryState::Failed(r) => OutboxState::Failed(r.clone()),
            _ => OutboxState::Queued,
        },
        created_ms,
    }
}

fn persist(
    outbox: &Outbox,
    store: &ProfileStore,
    seq: u64,
    failed: &mut MessageWriter<StoreFailed>,
) {
    let Some(e) = outbox.queue.get(seq) else {
        return;
    };
    let created = outbox.texts.get(&seq).map_or(0, |(_, ts)| *ts);
    if let Err(err) = store.put_outbox(&stored(e, created)) {
        failed.write(StoreFailed::new("save outbox entry", &err));
    }
}

fn load_outbox(
    mut outbox: ResMut<Outbox>,
    vault: Res<Vault>,
    contacts: Res<Contacts>,
    store: Res<ProfileStore>,
    mut events: MessageReader<VaultEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for e in events.read() {
        match e {
            VaultEvent::Locked => {
                let policy = outbox.queue.policy;
                *outbox = Outbox::new(policy);
            }
            VaultEvent::Unlocked if !outbox.loaded => {
                let entries = match store.outbox() {
                    Ok(v) => v,
                    Err(err) => {
                        failed.write(StoreFailed::new("read outbox", &err));
                        continue;
                    }
                };
                outbox.loaded = true;
                let Some(me) = vault.my_id() else { continue };
                for s in entries {
                    // Delivered before a crash? Then it is stored already.
                    if let Ok(Some(_)) = store.message_with_iv(s.thread_id, &s.sealed.iv) {
                        outbox.next_seq = outbox.next_seq.max(s.seq + 1);
                        let _ = store.remove_outbox(s.seq);
                        continue;
                    }
                    let text = own_text(&vault, &contacts, me, &s);
                    outbox.restore(s, text);
                }
                outbox.revision += 1;
                if !outbox.is_empty() {
                    tracing::info!(entries = outbox.len(), "outbox restored");
                }
            }
            _ => {}
        }
    }
}

/// The text of one of our own stored entries, if it opens.
fn own_text(
    vault: &Vault,
    contacts: &Contacts,
    me: Uuid,
    s: &OutboxEntry,
) -> Option<MessagePayload> {
    contacts
        .list
        .iter()
        .find(|c| c.thread_id == s.thread_id)
        .and_then(|c| vault.thread_key(&c.user_id))
        .and_then(|k| {
            k.open_json::<MessagePayload>(&s.sealed.ciphertext, &s.sealed.iv)
                .ok()
        })
        .filter(|p| p.sender_id == me)
}

/// Another client's outbox writes, in this one's queue: a message typed
/// there is queued here too (and sent from here, if this client sends), a
/// retry there is a retry here, a removal there (delivered, cancelled) ends
/// the entry here.
fn mirror_outbox(
    mut outbox: ResMut<Outbox>,
    vault: Res<Vault>,
    contacts: Res<Contacts>,
    role: Res<OutboxRole>,
    mut elsewhere: MessageReader<StoredElsewhere>,
) {
    let Some(me) = vault
        .my_id()
        .filter(|_| vault.is_unlocked() && outbox.loaded)
    else {
        // Locked: what is in the store is read at the unlock.
        elsewhere.clear();
        return;
    };
    for e in elsewhere.read() {
        match e {
            StoredElsewhere::Outbox(s) => {
                let known = outbox.queue.get(s.seq).map(|e| e.state.clone());
                match (known, &s.state) {
                    (None, _) => {
                        let text = own_text(&vault, &contacts, me, s);
                        outbox.restore(s.clone(), text);
                    }
                    (Some(EntryState::Failed(_)), OutboxState::Queued) => {
                        if outbox.queue.retry(s.seq) {
                            outbox.revision += 1;
                        }
                    }
                    // The sending client's progress, shown as it is there.
                    (Some(_), _) if *role == OutboxRole::Watches => {
                        let text = outbox.texts.get(&s.seq).cloned();
                        outbox.complete(s.seq);
                        outbox.restore(s.clone(), None);
                        if let Some(t) = text {
                            outbox.texts.insert(s.seq, t);
                        }
                    }
                    (Some(_), _) => {}
                }
            }
            StoredElsewhere::OutboxRemoved(seq) => {
                outbox.complete(*seq);
            }
            _ => {}
        }
    }
}

/// This client sends from now on (the tab that did closed). That tab may
/// have sent entries whose echo is still on its way: without idempotent
/// sends, each thread's history is looked at again before anything goes.
fn take_over_sending(
    role: Res<OutboxRole>,
    conn: Res<Connection>,
    outbox: Res<Outbox>,
    threads: Res<Threads>,
    mut syncs: Query<&mut ThreadSync>,
) {
    if !role.is_changed() || role.is_added() || *role != OutboxRole::Sends {
        return;
    }
    if conn.server_has(hush_core::http::features::IDEMPOTENT_SEND) {
        return;
    }
    for t in outbox.queue.pending_threads() {
        if let Some(e) = threads.entity(t)
            && let Ok(mut sync) = syncs.get_mut(e)
        {
            sync.machine.look_again();
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn accept_sends(
    mut outbox: ResMut<Outbox>,
    vault: Res<Vault>,
    threads: Res<Threads>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<SendIntent>,
    keys: Query<&ThreadKey>,
    conn: Res<Connection>,
    mut events: MessageWriter<OutboxEvent>,
) {
    let mut accepted = Vec::new();
    for SendIntent { to, text } in intents.read() {
        let reject = |reason: &str| OutboxEvent::Rejected {
            reason: reason.to_owned(),
        };
        let Some(identity) = vault.identity.as_ref().filter(|_| vault.is_unlocked()) else {
            events.write(reject("the vault is locked"));
            continue;
        };
        // Trimmed at both ends, as the stock web client does.
        let content = text.trim();
        if content.is_empty() {
            events.write(reject("the message is empty"));
            continue;
        }
        // The server's limit (the window checks it too, before clearing).
        let max = conn.max_ciphertext();
        if !message_fits(&identity.display_name, content, max) {
            events.write(reject(&format!(
                "the message is too long: this server takes at most {} KB",
                max / 1024
            )));
            continue;
        }
        let Some((t, key)) = threads
            .of_peer(to)
            .and_then(|t| Some((t, keys.get(threads.entity(t)?).ok()?)))
        else {
            events.write(reject("not a contact"));
            continue;
        };
        let ts = now_ms();
        let payload = MessagePayload {
            sender_id: identity.user_id,
            sender_name: identity.display_name.clone(),
            content: content.to_owned(),
            timestamp: ts,
        };
        let sealed = key.0.seal_json(&payload);
        let seq = outbox.allocate_seq(ts);
        let entry = Entry {
            seq,
            thread: t,
            client_message_id: Uuid::new_v4().to_string(),
            ciphertext: sealed.ciphertext,
            iv: sealed.iv,
            attempts: 0,
            state: EntryState::Queued,
        };
        accepted.push((entry, content.to_owned(), ts));
    }
    if accepted.is_empty() {
        return;
    }
    // Persisted before any can go on the wire: every send of this update in
    // one durable commit (a group commit), so a burst costs one fsync.
    let records: Vec<OutboxEntry> = accepted.iter().map(|(e, _, ts)| stored(e, *ts)).collect();
    if let Err(e) = store.put_outboxes(&records) {
        for _ in &accepted {
            events.write(OutboxEvent::Rejected {
                reason: format!("could not save the message: {e}"),
            });
        }
        return;
    }
    for (entry, content, ts) in accepted {
        outbox.texts.insert(entry.seq, (content, ts));
        events.write(OutboxEvent::Queued {
            thread: entry.thread,
            seq: entry.seq,
            client_message_id: entry.client_message_id.clone(),
        });
        outbox.queue.push(entry);
    }
    outbox.revision += 1;
}

/// What a refusal means for the entry, and whether the thread is missing.
#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn handle_send_errors(
    mut outbox: ResMut<Outbox>,
    conn: Res<Connection>,
    threads: Res<Threads>,
    store: Res<ProfileStore>,
    time: Res<Time>,
    mut frames: MessageReader<FrameReceived>,
    mut syncs: Query<&mut ThreadSync>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let now = time.elapsed();
    for FrameReceived(f) in frames.read() {
        let ServerFrame::Error(err) = f else { continue };
        let Concern::Send {
            send,
            refusal:
                SendRefusal {
                    retry,
                    thread_missing,
                },
        } = err.concerns()
        else {
            continue;
        };
        let seq = match send {
            SendRef::ClientId(cmid) => outbox.queue.by_client_id(&cmid).map(|e| e.seq),
            SendRef::Oldest => outbox.queue.oldest_in_flight(conn.generation()),
        };
        let Some(seq) = seq else { continue };
        let thread = outbox.queue.get(seq).map(|e| e.thread);
        tracing::warn!(seq, "send refused: {}", err.message);
        if thread_missing
            && let Some(t) = thread
            && let Some(e) = threads.entity(t)
            && let Ok(mut sync) = syncs.get_mut(e)
            && sync.machine.missing_on_server()
        {
            sync.save(&store, &mut failed);
        }
        outbox.queue.refused(seq, &err.message, retry, now);
        outbox.revision += 1;
        persist(&outbox, &store, seq, &mut failed);
    }
}

/// Messages of one thread in flight at once on an [ext] server.
pub const SEND_WINDOW: usize = 64;

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn flush_outbox(
    mut outbox: ResMut<Outbox>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    threads: Res<Threads>,
    time: Res<Time>,
    q: Query<(&Thread, &ThreadSync, &Subscription)>,
    role: Res<OutboxRole>,
    mut send: MessageWriter<SendFrame>,
    mut ensure: MessageWriter<EnsureThread>,
) {
    let generation = conn.generation();
    // Another client sends this profile's outbox: this one only shows it.
    let live = conn.is_connected() && vault.is_unlocked() && *role == OutboxRole::Sends;
    if outbox.generation != Some(generation) || !live {
        // Whatever was in flight on another connection goes again.
        if outbox
            .queue
            .iter()
            .any(|e| matches!(e.state, EntryState::InFlight { .. }))
        {
            outbox.queue.connection_lost();
            outbox.revision += 1;
        }
        outbox.generation = live.then_some(generation);
    }
    if !live || outbox.is_empty() {
        return;
    }
    // Without the [ext] ack, the echo (needs the subscription) is the only ack.
    let acked_without_subscription = conn.server_has(hush_core::http::features::MESSAGE_SENT);
    // A window only where acks and refusals name their message; a stock
    // server's errors do not, so there it is stop-and-wait.
    let window = if acked_without_subscription {
        SEND_WINDOW
    } else {
        1
    };
    if outbox.queue.policy.window != window {
        outbox.queue.policy.window = window;
    }
    let mut ready = Vec::new();
    for t in outbox.queue.pending_threads() {
        let Some(e) = threads.entity(t) else { continue };
        let Ok((_, sync, sub)) = q.get(e) else {
            continue;
        };
        let subscribed = sub.state == SubState::Subscribed;
        match sync
            .machine
            .send_gate(generation, subscribed, acked_without_subscription)
        {
            SendGate::NeedsThread => {
                ensure.write(EnsureThread(t));
            }
            SendGate::Open => ready.push(t),
            SendGate::Wait => {}
        }
    }
    let due = outbox
        .queue
        .due(time.elapsed(), generation, |t| ready.contains(&t));
    for seq in due {
        let Some(e) = outbox.queue.get(seq) else {
            continue;
        };
        send.write(SendFrame(ClientFrame::Message(OutgoingMessage {
            thread_id: e.thread,
            ciphertext: e.ciphertext.clone(),
            iv: e.iv.clone(),
            client_message_id: Some(e.client_message_id.clone()),
        })));
        outbox.revision += 1;
    }
}

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn tick_outbox(
    mut outbox: ResMut<Outbox>,
    store: Res<ProfileStore>,
    conn: Res<Connection>,
    threads: Res<Threads>,
    time: Res<Time>,
    mut syncs: Query<&mut ThreadSync>,
    mut events: MessageWriter<OutboxEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let changed = outbox.queue.tick(time.elapsed());
    // Without [ext] idempotency a blind resend can be stored twice: first
    // look at the thread's history again, where a delivered send shows up.
    let idempotent = conn.server_has(hush_core::http::features::IDEMPOTENT_SEND);
    for seq in changed {
        outbox.revision += 1;
        persist(&outbox, &store, seq, &mut failed);
        let Some(e) = outbox.queue.get(seq) else {
            continue;
        };
        if !idempotent
            && let Some(ent) = threads.entity(e.thread)
            && let Ok(mut sync) = syncs.get_mut(ent)
        {
            sync.machine.look_again();
        }
        if let EntryState::Failed(reason) = &e.state {
            events.write(OutboxEvent::Failed {
                thread: e.thread,
                seq,
                reason: reason.clone(),
            });
        }
    }
}

fn apply_outbox_intents(
    mut outbox: ResMut<Outbox>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<OutboxIntent>,
    mut events: MessageWriter<OutboxEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for i in intents.read() {
        match *i {
            OutboxIntent::Retry(seq) => {
                if outbox.queue.retry(seq) {
                    outbox.revision += 1;
                    persist(&outbox, &store, seq, &mut failed);
                }
            }
            OutboxIntent::Cancel(seq) => {
                if let Some(e) = outbox.queue.cancel(seq) {
                    outbox.texts.remove(&seq);
                    outbox.revision += 1;
                    if let Err(err) = store.remove_outbox(seq) {
                        failed.write(StoreFailed::new("remove outbox entry", &err));
                    }
                    events.write(OutboxEvent::Cancelled {
                        thread: e.thread,
                        seq,
                    });
                }
            }
        }
    }
}

/// Keeps each thread's local echoes in step with the outbox.
fn sync_echoes(mut outbox: ResMut<Outbox>, mut logs: Query<(&Thread, &mut ThreadLog)>) {
    if outbox.revision == outbox.shown_revision {
        return;
    }
    outbox.shown_revision = outbox.revision;
    for (thread, mut log) in &mut logs {
        let pending: Vec<LocalEcho> = outbox
            .queue
            .iter()
            .filter(|e| e.thread == thread.id)
            .map(|e| {
                let (content, ts) = outbox.texts.get(&e.seq).cloned().unwrap_or_default();
                LocalEcho {
                    seq: e.seq,
                    client_message_id: e.client_message_id.clone(),
                    content,
                    timestamp_ms: ts,
                    status: match &e.state {
                        EntryState::Queued | EntryState::Waiting { .. } => MessageStatus::Queued,
                        EntryState::InFlight { .. } => MessageStatus::Sending,
                        EntryState::Failed(r) => MessageStatus::Failed(r.clone()),
                    },
                }
            })
            .collect();
        if log.pending != pending {
            log.pending = pending;
            log.revision += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(lane: u64) -> Outbox {
        Outbox::with_lane(OutboxPolicy::default(), lane)
    }

    #[test]
    fn numbers_follow_the_clock_in_the_clients_own_lane() {
        let mut a = outbox(5);
        let t = 1_764_000_000_000;
        let first = a.allocate_seq(t);
        assert_eq!(first, (t as u64) << SEQ_LANE_BITS | 5);
        // Several in one millisecond (or a clock that went back) still rise.
        let second = a.allocate_seq(t);
        let third = a.allocate_seq(t - 10_000);
        assert!(first < second && second < third);
        for s in [second, third] {
            assert_eq!(s % (1 << SEQ_LANE_BITS), 5, "{s} left its lane");
        }
        // Below 2^53: exact as a JSON number in a browser.
        assert!(third < 1 << 53);
    }

    #[test]
    fn two_clients_on_one_profile_never_number_two_entries_alike() {
        let (mut a, mut b) = (outbox(1), outbox(2));
        let t = 1_764_000_000_000;
        let mut seen = std::collections::HashSet::new();
        for i in 0..1_000 {
            // Both write in the same milliseconds, and each has seen the
            // other's newest entry (a mirrored one raises `next_seq`).
            let sa = a.allocate_seq(t + i / 3);
            b.next_seq = b.next_seq.max(sa + 1);
            let sb = b.allocate_seq(t + i / 3);
            a.next_seq = a.next_seq.max(sb + 1);
            assert!(seen.insert(sa) && seen.insert(sb), "{sa} or {sb} twice");
        }
        // The order of writing holds across them.
        let mut a2 = outbox(4000);
        let mut b2 = outbox(3);
        assert!(a2.allocate_seq(t) < b2.allocate_seq(t + 1));
    }

    #[test]
    fn old_small_numbers_from_before_come_first() {
        let mut a = outbox(7);
        a.next_seq = 42 + 1; // restored from a store written with a counter
        assert!(a.allocate_seq(1_764_000_000_000) > 42);
        let mut z = outbox(7);
        assert_eq!(z.allocate_seq(0), 7, "a clock at the epoch still works");
        assert_eq!(z.allocate_seq(-5), (1 << SEQ_LANE_BITS) + 7);
    }

    /// The outbox against a scripted server (`crate::testing`).
    mod behaviour {
        use serde_json::json;
        use uuid::Uuid;

        use crate::MessageStatus;
        use crate::testing::*;

        #[test]
        fn a_message_is_stored_before_it_goes_and_waits_for_catch_up() {
            let mut h = Harness::unlocked("Ann");
            let t = h.add_contact(PEER, "Bob");
            h.send(PEER, "  hello  ");
            // Queued and on disk (sealed), shown as queued, not on the wire:
            // the thread is neither known on the server nor caught up.
            assert_eq!(h.outbox().len(), 1);
            assert_eq!(h.store.outbox().unwrap().len(), 1);
            let echo = &h.log(t).pending[0];
            assert_eq!(
                (echo.content.as_str(), &echo.status),
                ("hello", &MessageStatus::Queued)
            );
            assert!(h.sent_of("message").is_empty());
        }

        #[test]
        fn the_ack_completes_the_send_and_the_message_is_stored_once() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            h.send(PEER, "hello");
            let sent = h.sent_of("message");
            assert_eq!(sent.len(), 1);
            let cmid = sent[0]["client_message_id"].as_str().unwrap().to_owned();
            assert_eq!(h.log(t).pending[0].status, MessageStatus::Sending);
            h.net.frame(ack_of(&sent[0], "m1", &at(1)));
            h.steps(2);
            assert!(h.outbox().is_empty());
            assert!(h.store.outbox().unwrap().is_empty());
            let log = h.log(t);
            assert!(log.pending.is_empty());
            assert_eq!(log.messages.len(), 1);
            assert_eq!(
                (
                    log.messages[0].id.as_str(),
                    log.messages[0].content.as_str()
                ),
                ("m1", "hello")
            );
            assert!(log.messages[0].mine);
            // The echo that follows the ack shows nothing new.
            h.net.frame(echo_of(&sent[0], "m1", &at(1)));
            h.steps(2);
            assert_eq!(h.log(t).messages.len(), 1);
            assert_eq!(h.store.message_count(t).unwrap(), 1);
            assert!(!cmid.is_empty());
        }

        #[test]
        fn on_a_stock_server_the_echo_is_the_ack_and_sends_go_one_at_a_time() {
            let mut h = Harness::unlocked_on("Ann", &[]);
            let t = h.ready_thread(PEER, vec![]);
            h.send(PEER, "one");
            h.send(PEER, "two");
            let sent = h.sent_of("message");
            assert_eq!(sent.len(), 1, "stop-and-wait");
            h.net.frame(echo_of(&sent[0], "m1", &at(1)));
            h.steps(2);
            let next = h.sent_of("message");
            assert_eq!(next.len(), 1);
            assert_ne!(next[0]["iv"], sent[0]["iv"]);
            h.net.frame(echo_of(&next[0], "m2", &at(2)));
            h.steps(2);
            let contents: Vec<_> = h
                .log(t)
                .messages
                .iter()
                .map(|m| m.content.clone())
                .collect();
            assert_eq!(contents, ["one", "two"]);
            assert!(h.outbox().is_empty());
        }

        #[test]
        fn the_sends_of_one_update_are_saved_in_one_commit() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            let before = h.memory.as_ref().unwrap().outbox_writes();
            for i in 0..5 {
                h.write(crate::SendIntent {
                    to: PEER,
                    text: format!("m{i}"),
                });
            }
            h.steps(2);
            assert_eq!(h.store.outbox().unwrap().len(), 5);
            assert_eq!(h.memory.as_ref().unwrap().outbox_writes() - before, 1);
            assert_eq!(h.log(t).pending.len(), 5);
            // One more, in an update of its own: one more commit.
            h.send(PEER, "m5");
            assert_eq!(h.memory.as_ref().unwrap().outbox_writes() - before, 2);
        }

        #[test]
        fn an_ext_server_gets_a_window_of_sends_in_order() {
            let mut h = Harness::unlocked("Ann");
            h.ready_thread(PEER, vec![]);
            for i in 0..3 {
                h.write(crate::SendIntent {
                    to: PEER,
                    text: format!("m{i}"),
                });
            }
            h.steps(2);
            let sent = h.sent_of("message");
            assert_eq!(sent.len(), 3);
            // In the order written (the queue keeps it; the seq rises).
            let seqs: Vec<u64> = h.outbox().entries().map(|e| e.seq).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            let cmids: Vec<_> = h
                .outbox()
                .entries()
                .map(|e| json!(e.client_message_id))
                .collect();
            let sent_cmids: Vec<_> = sent
                .iter()
                .map(|f| f["client_message_id"].clone())
                .collect();
            assert_eq!(cmids, sent_cmids);
        }

        #[test]
        fn a_transient_refusal_waits_then_resends_the_same_blob() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            let sent = h.send_one("hello");
            h.refuse(&sent, "slow down", "rate_limited");
            assert_eq!(h.log(t).pending[0].status, MessageStatus::Queued);
            assert!(h.sent_of("message").is_empty(), "not at once");
            h.advance(std::time::Duration::from_secs(2));
            h.steps(2);
            let again = h.sent_of("message");
            assert_eq!(again.len(), 1);
            assert_eq!(
                (
                    &again[0]["client_message_id"],
                    &again[0]["iv"],
                    &again[0]["ciphertext"]
                ),
                (&sent["client_message_id"], &sent["iv"], &sent["ciphertext"])
            );
        }

        #[test]
        fn a_permanent_refusal_fails_the_entry_visibly_and_keeps_it() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            let sent = h.send_one("hello");
            h.refuse(&sent, "too big", "payload_too_large");
            assert!(matches!(
                h.log(t).pending[0].status,
                MessageStatus::Failed(_)
            ));
            // Kept (on disk too), never dropped; nothing more goes out.
            assert_eq!(h.store.outbox().unwrap().len(), 1);
            h.advance(std::time::Duration::from_secs(120));
            assert!(h.sent_of("message").is_empty());
        }

        #[test]
        fn retry_sends_a_failed_entry_again_and_cancel_removes_it() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            let sent = h.send_one("hello");
            h.refuse(&sent, "too big", "payload_too_large");
            let seq = h.log(t).pending[0].seq;
            h.write(crate::OutboxIntent::Retry(seq));
            h.steps(2);
            assert_eq!(h.sent_of("message").len(), 1, "a fresh round");
            h.refuse(&sent, "too big", "payload_too_large");
            h.write(crate::OutboxIntent::Cancel(seq));
            h.steps(2);
            assert!(h.log(t).pending.is_empty());
            assert!(h.outbox().is_empty());
            assert!(h.store.outbox().unwrap().is_empty());
        }

        #[test]
        fn a_thread_missing_on_the_server_is_created_again() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            assert!(h.sync(t).machine.on_server());
            let sent = h.send_one("hello");
            h.refuse(&sent, "Thread not found", "thread_not_found");
            h.step();
            assert!(!h.sync(t).machine.on_server());
            assert!(!h.store.threads().unwrap()[0].on_server, "stored too");
            assert!(
                h.net.pending().iter().any(|p| p == "Post /api/threads"),
                "{:?}",
                h.net.pending()
            );
        }

        #[test]
        fn a_stock_servers_refusal_is_the_oldest_sends() {
            let mut h = Harness::unlocked_on("Ann", &[]);
            let t = h.ready_thread(PEER, vec![]);
            h.send(PEER, "hello");
            assert_eq!(h.sent_of("message").len(), 1);
            h.net.frame(error("Thread not found", None, None, None));
            h.steps(3);
            assert!(!h.sync(t).machine.on_server());
            assert_eq!(h.log(t).pending[0].status, MessageStatus::Queued);
        }

        #[test]
        fn a_lost_connection_sends_what_was_in_flight_again_with_no_attempt_counted() {
            let mut h = Harness::unlocked("Ann");
            let t = h.ready_thread(PEER, vec![]);
            h.send(PEER, "hello");
            let sent = h.sent_of("message");
            h.reconnect();
            assert_eq!(h.log(t).pending[0].status, MessageStatus::Queued);
            h.subscribed(t);
            // Caught up again on the new connection before anything goes.
            assert!(h.sent_of("message").is_empty());
            h.answer_history(200, json!([]));
            h.steps(2);
            let again = h.sent_of("message");
            assert_eq!(again.len(), 1);
            assert_eq!(again[0]["client_message_id"], sent[0]["client_message_id"]);
            assert_eq!(h.outbox().entries().next().unwrap().attempts, 0);
        }

        #[test]
        fn without_idempotency_a_timed_out_send_is_looked_for_before_it_goes_again() {
            let mut h = Harness::unlocked_on("Ann", &[]);
            let t = h.ready_thread(PEER, vec![]);
            h.send(PEER, "hello");
            let sent = h.sent_of("message");
            // No echo within the send timeout: the history is asked again.
            h.advance(std::time::Duration::from_secs(11));
            h.steps(2);
            assert!(h.sent_of("message").is_empty(), "not resent blindly");
            let stored = serde_json::json!([{
                "id": "m1", "thread_id": t, "ciphertext": sent[0]["ciphertext"],
                "iv": sent[0]["iv"], "created_at": at(1)
            }]);
            let n = h.answer_history(200, stored);
            assert_eq!(n, 1);
            h.steps(2);
            // It had arrived: done, once, and not sent again.
            assert!(h.outbox().is_empty());
            assert_eq!(h.log(t).messages.len(), 1);
            h.advance(std::time::Duration::from_secs(30));
            assert!(h.sent_of("message").is_empty());
        }

        #[test]
        fn sends_that_cannot_be_queued_say_why() {
            let mut h = Harness::unlocked("Ann");
            h.add_contact(PEER, "Bob");
            let mut rejected = Vec::new();
            for (to, text) in [(PEER, "   "), (Uuid::from_u128(9), "hi")] {
                h.write(crate::SendIntent {
                    to,
                    text: text.into(),
                });
                h.step();
                let events = h
                    .app
                    .world()
                    .resource::<bevy::prelude::Messages<crate::OutboxEvent>>();
                rejected.extend(
                    events
                        .iter_current_update_messages()
                        .filter_map(|e| match e {
                            crate::OutboxEvent::Rejected { reason } => Some(reason.clone()),
                            _ => None,
                        }),
                );
            }
            assert_eq!(rejected, ["the message is empty", "not a contact"]);
            assert!(h.outbox().is_empty());
        }
    }
}
