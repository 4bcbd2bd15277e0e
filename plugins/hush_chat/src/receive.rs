//! Receiving: live frames, acknowledgements and catch-up pages are stored
//! (ciphertext, deduplicated by server id), decrypted into the thread's log
//! in server order, and reconciled with the outbox — our own echo (from this
//! device or another of ours) is never shown twice. A message that does not
//! decrypt is kept as `Undecryptable`. Messages another tab of this profile
//! stored ([`StoredElsewhere`]) show the same way; the tab's own copy of
//! them, from its socket, then finds them stored and shows nothing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::policy::thread_sync::Origin;
use hush_core::wire::{ServerFrame, WireMessage};
use hush_net::{Connection, FrameReceived};
use hush_store::ThreadRecord;

use crate::ChatSystems;
use crate::catchup::IncomingBatch;
use crate::model::ChatMessage;
use crate::outbox::{Outbox, OutboxEvent};
use crate::profile::{ProfileStore, StoreFailed};
use crate::shared::StoredElsewhere;
use crate::threads::{Focused, Thread, ThreadKey, ThreadLog, ThreadSync, Threads, Unread};
use crate::vault::Vault;

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<MessageReceived>()
        .add_systems(Update, ingest.in_set(ChatSystems::Receive));
}

/// A message new to this profile was stored.
#[derive(Message, Debug, Clone)]
pub struct MessageReceived {
    pub thread: ThreadId,
    /// Shared, so that each reader that keeps it (`hush listen`'s list,
    /// notifications) does not copy its strings.
    pub message: Arc<ChatMessage>,
    /// From the live socket (false: from catch-up).
    pub live: bool,
}

/// One thread's messages from one origin. They are the update's own
/// frames and batches, borrowed (only an acknowledgement makes a message).
struct Group<'a> {
    thread: ThreadId,
    msgs: Vec<Cow<'a, WireMessage>>,
    from: Origin,
}

type ThreadItems<'a> = (
    &'a Thread,
    &'a ThreadKey,
    &'a mut ThreadLog,
    &'a mut ThreadSync,
    &'a mut Unread,
    Has<Focused>,
);

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn ingest(
    threads: Res<Threads>,
    store: Res<ProfileStore>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    time: Res<Time>,
    mut outbox: ResMut<Outbox>,
    mut frames: MessageReader<FrameReceived>,
    mut batches: MessageReader<IncomingBatch>,
    mut elsewhere: MessageReader<StoredElsewhere>,
    mut q: Query<ThreadItems>,
    mut received: MessageWriter<MessageReceived>,
    mut outbox_events: MessageWriter<OutboxEvent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    let Some(me) = vault.my_id().filter(|_| vault.is_unlocked()) else {
        frames.clear();
        batches.clear();
        elsewhere.clear();
        return;
    };
    let generation = conn.generation();
    // Live messages per thread, in arrival order.
    let mut groups: Vec<Group> = Vec::new();
    let mut live: HashMap<ThreadId, usize> = HashMap::new();
    let arrived: Vec<Cow<'_, WireMessage>> = frames
        .read()
        .filter_map(|FrameReceived(f)| match f {
            ServerFrame::Message(m) => Some(Cow::Borrowed(m)),
            // [ext] The ack carries id and time: with our own blob that is
            // the stored message, whether or not the echo comes.
            ServerFrame::MessageSent(ack) => outbox.acked(ack).map(Cow::Owned),
            _ => None,
        })
        .collect();
    // Nearly always one thread: room for every message, within reason.
    let room = arrived.len().min(256);
    for m in arrived {
        let i = *live.entry(m.thread_id).or_insert_with(|| {
            groups.push(Group {
                thread: m.thread_id,
                msgs: Vec::with_capacity(room),
                from: Origin::Live { generation },
            });
            groups.len() - 1
        });
        groups[i].msgs.push(m);
    }
    for b in batches.read() {
        groups.push(Group {
            thread: b.thread,
            msgs: b.messages.iter().map(Cow::Borrowed).collect(),
            from: Origin::Catchup { run: b.run },
        });
    }
    for e in elsewhere.read() {
        let StoredElsewhere::Messages(msgs) = e else {
            continue;
        };
        for m in msgs {
            match groups
                .iter_mut()
                .find(|g| g.from == Origin::Elsewhere && g.thread == m.thread_id)
            {
                Some(g) => g.msgs.push(Cow::Borrowed(m)),
                None => groups.push(Group {
                    thread: m.thread_id,
                    msgs: vec![Cow::Borrowed(m)],
                    from: Origin::Elsewhere,
                }),
            }
        }
    }
    for g in groups {
        let Some(e) = threads.entity(g.thread) else {
            tracing::debug!(thread = %g.thread, "message for a thread without a contact; skipped");
            continue;
        };
        let Ok((thread, key, mut log, mut sync, mut unread, focused)) = q.get_mut(e) else {
            continue;
        };
        // Which of our pending sends these messages complete.
        let mut completed: Vec<(u64, String)> = Vec::new();
        for m in &g.msgs {
            if let Some(seq) = outbox.completed_by(m)
                && !completed.iter().any(|(s, _)| *s == seq)
            {
                completed.push((seq, m.id.clone()));
            }
        }
        // The cursor moves only over history known to be contiguous (this
        // client's own: another tab's messages say nothing about its gaps).
        let cursor = sync
            .machine
            .cursor_after(g.from, g.msgs.iter().map(|m| m.created_at.as_str()));
        let record = cursor.as_ref().map(|c| ThreadRecord {
            cursor: Some(c.clone()),
            ..sync.record()
        });
        let seqs: Vec<u64> = completed.iter().map(|(s, _)| *s).collect();
        let stored = match g.from {
            // Stored already; the log tells what is new to this tab.
            Origin::Elsewhere => store
                .store_messages(&[], None, &seqs)
                .map(|_| vec![true; g.msgs.len()]),
            _ => {
                let msgs: Vec<&WireMessage> = g.msgs.iter().map(|m| &**m).collect();
                store.store_message_refs(&msgs, record.as_ref(), &seqs)
            }
        };
        let news = match stored {
            Ok(n) => n,
            Err(err) => {
                failed.write(StoreFailed::new("store messages", &err));
                // Nothing was stored: fetch it again from the stored cursor.
                sync.machine.refetch_from_store(None, time.elapsed());
                continue;
            }
        };
        match (cursor, g.from) {
            (Some(c), _) => sync.machine.set_cursor(c),
            // Before catch-up ends: held until it does (`thread_sync`).
            (None, Origin::Live { generation }) => sync
                .machine
                .live_stored(generation, g.msgs.iter().map(|m| m.created_at.as_str())),
            (None, _) => {}
        }
        for (seq, id) in completed {
            if outbox.complete(seq).is_some() {
                outbox_events.write(OutboxEvent::Sent {
                    thread: g.thread,
                    seq,
                    id,
                });
            }
        }
        for (m, new) in g.msgs.iter().zip(news) {
            if !new {
                continue;
            }
            let msg = Arc::new(ChatMessage::decrypt(&key.0, m, me));
            if !log.insert(msg.clone()) {
                continue;
            }
            if !msg.mine && !focused {
                unread.0 += 1;
            }
            received.write(MessageReceived {
                thread: thread.id,
                message: msg,
                live: matches!(g.from, Origin::Live { .. }),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use hush_core::wire::ServerFrame;
    use uuid::Uuid;

    use crate::MessageStatus;
    use crate::testing::*;

    #[test]
    fn a_live_message_is_stored_decrypted_and_counted_unread() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "hi Ann");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        let log = h.log(t);
        assert_eq!(log.messages.len(), 1);
        assert_eq!(log.messages[0].content, "hi Ann");
        assert!(!log.messages[0].mine);
        assert_eq!(log.messages[0].sender_id, Some(PEER));
        assert_eq!(h.store.message_count(t).unwrap(), 1);
        let e = h.world().resource::<crate::Threads>().entity(t).unwrap();
        assert_eq!(h.world().get::<crate::Unread>(e).unwrap().0, 1);
        // Live, after catch-up on this connection: the cursor follows.
        assert_eq!(h.sync(t).machine.cursor(), Some(at(1).as_str()));
    }

    #[test]
    fn the_same_message_live_and_in_a_page_shows_once() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "once");
        // Live before catch-up ended: stored, but the cursor waits.
        h.net.frame(ServerFrame::Message(m.clone()));
        h.steps(2);
        assert_eq!(h.sync(t).machine.cursor(), None);
        let page = serde_json::json!([m]);
        h.answer_history(200, page);
        assert_eq!(h.log(t).messages.len(), 1);
        assert_eq!(h.store.message_count(t).unwrap(), 1);
        assert_eq!(h.sync(t).machine.cursor(), Some(at(1).as_str()));
    }

    #[test]
    fn a_message_that_does_not_open_is_kept_marked() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let mut m = h.sealed_from(PEER, t, "m1", &at(1), "x");
        m.ciphertext = "AAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        let log = h.log(t);
        assert_eq!(log.messages.len(), 1);
        assert!(matches!(
            log.messages[0].status,
            MessageStatus::Undecryptable(_)
        ));
        assert_eq!(h.store.message_count(t).unwrap(), 1);
    }

    #[test]
    fn messages_are_shown_in_server_order_whatever_order_they_come_in() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        for (id, n) in [("m3", 3), ("m1", 1), ("m2", 2)] {
            let m = h.sealed_from(PEER, t, id, &at(n), id);
            h.net.frame(ServerFrame::Message(m));
        }
        h.steps(2);
        let ids: Vec<_> = h.log(t).messages.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["m1", "m2", "m3"]);
    }

    #[test]
    fn a_message_for_a_thread_without_a_contact_is_not_stored() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let stranger = Uuid::from_u128(0x5);
        let other = hush_core::ThreadId::for_pair(&h.me(), &stranger);
        let m = h.sealed_from(stranger, other, "s1", &at(1), "hello?");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        assert_eq!(h.store.message_count(other).unwrap(), 0);
        assert!(h.log(t).messages.is_empty());
    }
}
