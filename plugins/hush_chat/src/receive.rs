//! Receiving: live frames, acknowledgements and catch-up pages are stored
//! (ciphertext, deduplicated by server id), decrypted into the thread's log
//! in server order, and reconciled with the outbox — our own echo (from this
//! device or another of ours) is never shown twice. A message that does not
//! decrypt is kept as `Undecryptable`. Messages another tab of this profile
//! stored ([`StoredElsewhere`]) show the same way; the tab's own copy of
//! them, from its socket, then finds them stored and shows nothing.

use std::collections::HashMap;

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
    pub message: ChatMessage,
    /// From the live socket (false: from catch-up).
    pub live: bool,
}

struct Group {
    thread: ThreadId,
    msgs: Vec<WireMessage>,
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
    let mut push_live = |groups: &mut Vec<Group>, m: WireMessage| {
        let i = *live.entry(m.thread_id).or_insert_with(|| {
            groups.push(Group {
                thread: m.thread_id,
                msgs: Vec::new(),
                from: Origin::Live { generation },
            });
            groups.len() - 1
        });
        groups[i].msgs.push(m);
    };
    for FrameReceived(f) in frames.read() {
        match f {
            ServerFrame::Message(m) => push_live(&mut groups, m.clone()),
            // [ext] The ack carries id and time: with our own blob that is
            // the stored message, whether or not the echo comes.
            ServerFrame::MessageSent(ack) => {
                if let Some(m) = outbox.acked(ack) {
                    push_live(&mut groups, m);
                }
            }
            _ => {}
        }
    }
    for b in batches.read() {
        groups.push(Group {
            thread: b.thread,
            msgs: b.messages.clone(),
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
                Some(g) => g.msgs.push(m.clone()),
                None => groups.push(Group {
                    thread: m.thread_id,
                    msgs: vec![m.clone()],
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
            _ => store.store_messages(&g.msgs, record.as_ref(), &seqs),
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
        if let Some(c) = cursor {
            sync.machine.set_cursor(c);
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
            let msg = ChatMessage::decrypt(&key.0, m, me);
            if log.insert(msg.clone()).is_none() {
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
