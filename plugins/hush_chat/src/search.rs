//! Find in a conversation: the decrypted text of every message of the open
//! thread, not just its loaded pages. On the first search a thread's stored
//! history is read and decrypted into an in-memory index ([`SearchIndex`],
//! lowercased text per message), [`INDEX_STEP`] messages per update so the
//! window keeps drawing; new messages join it as they arrive. Each query is
//! then one scan of that index. The index is plaintext in memory, like the
//! loaded log, and leaves with the thread's components on a lock.

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_net::NextUpdate;
use hush_store::MessageKey;

use crate::ChatSystems;
use crate::model::ChatMessage;
use crate::profile::{ProfileStore, StoreFailed};
use crate::receive::MessageReceived;
use crate::threads::{ThreadKey, Threads};
use crate::vault::Vault;

/// Messages read and decrypted into the index per update.
pub const INDEX_STEP: usize = 4000;

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Find>()
        .add_message::<FindInThread>()
        .add_systems(
            Update,
            (start_finding, index_threads, find_matches)
                .chain()
                .in_set(ChatSystems::Present),
        );
}

/// Search this thread for `query` (case-insensitive); an empty query ends
/// the search.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct FindInThread {
    pub thread: ThreadId,
    pub query: String,
}

/// The search under way and its matches, a resource.
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct Find {
    pub thread: Option<ThreadId>,
    pub query: String,
    /// The matching messages, oldest first.
    pub hits: Vec<MessageKey>,
    /// Messages searched so far.
    pub searched: usize,
    /// Every stored message of the thread is in the index.
    pub complete: bool,
    /// Bumped whenever `hits` change.
    pub revision: u64,
}

/// A thread's decrypted text, for finding in it.
#[derive(Component, Debug, Default)]
pub struct SearchIndex {
    /// (key, lowercased text), in store order.
    rows: Vec<(MessageKey, String)>,
    /// Where the next read of the store starts (exclusive).
    next: Option<MessageKey>,
    complete: bool,
    /// Rows already matched against the current query.
    matched: usize,
}

impl SearchIndex {
    fn push(&mut self, m: &ChatMessage) {
        self.rows.push((
            MessageKey {
                micros: m.micros,
                id: m.id.clone(),
            },
            m.content.to_lowercase(),
        ));
    }
}

fn start_finding(
    mut commands: Commands,
    mut asks: MessageReader<FindInThread>,
    mut find: ResMut<Find>,
    threads: Res<Threads>,
    mut indexes: Query<&mut SearchIndex>,
) {
    let Some(ask) = asks.read().last() else {
        return;
    };
    let query = ask.query.trim().to_lowercase();
    if query.is_empty() {
        *find = Find {
            revision: find.revision + 1,
            ..Find::default()
        };
        return;
    }
    if find.thread == Some(ask.thread) && find.query == query {
        return;
    }
    *find = Find {
        thread: Some(ask.thread),
        query,
        revision: find.revision + 1,
        ..Find::default()
    };
    let Some(e) = threads.entity(ask.thread) else {
        return;
    };
    match indexes.get_mut(e) {
        Ok(mut index) => index.matched = 0,
        Err(_) => {
            commands.entity(e).insert(SearchIndex::default());
        }
    }
}

/// Reads the searched thread's history into its index, a step at a time;
/// adds what arrives to every complete index.
#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn index_threads(
    find: Res<Find>,
    threads: Res<Threads>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut received: MessageReader<MessageReceived>,
    mut q: Query<(&ThreadKey, &mut SearchIndex)>,
    mut next: ResMut<NextUpdate>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for r in received.read() {
        if let Some(e) = threads.entity(r.thread)
            && let Ok((_, mut index)) = q.get_mut(e)
            && index.complete
            && !index
                .rows
                .iter()
                .rev()
                .take(64)
                .any(|(k, _)| k.id == r.message.id)
        {
            index.push(&r.message);
        }
    }
    let (Some(t), Some(me)) = (find.thread, vault.my_id()) else {
        return;
    };
    let Some((key, mut index)) = threads.entity(t).and_then(|e| q.get_mut(e).ok()) else {
        return;
    };
    if index.complete {
        return;
    }
    match store.messages(t, index.next.as_ref(), INDEX_STEP) {
        Ok(page) => {
            index.complete = page.len() < INDEX_STEP;
            for m in &page {
                index.push(&ChatMessage::decrypt(&key.0, m, me));
            }
            index.next = index.rows.last().map(|(k, _)| k.clone());
            if !index.complete {
                // The window keeps drawing between steps.
                next.soon();
            }
        }
        Err(e) => {
            failed.write(StoreFailed::new("read messages to search", &e));
            index.complete = true;
        }
    }
}

/// Matches what the index gained since the last look.
fn find_matches(mut find: ResMut<Find>, threads: Res<Threads>, mut q: Query<&mut SearchIndex>) {
    let Some(t) = find.thread else { return };
    let Some(mut index) = threads.entity(t).and_then(|e| q.get_mut(e).ok()) else {
        return;
    };
    if index.matched == index.rows.len() && find.complete == index.complete {
        return;
    }
    let start = index.matched;
    let query = find.query.clone();
    let new: Vec<MessageKey> = index.rows[start..]
        .iter()
        .filter(|(_, text)| text.contains(&query))
        .map(|(k, _)| k.clone())
        .collect();
    index.matched = index.rows.len();
    let f = &mut *find;
    if !new.is_empty() {
        f.hits.extend(new);
        // Live messages may come in out of order with the history read.
        f.hits.sort();
        f.hits.dedup();
    }
    f.searched = index.rows.len();
    f.complete = index.complete;
    f.revision += 1;
}

#[cfg(test)]
mod tests {
    use hush_core::wire::ServerFrame;
    use hush_store::StoredMessage;

    use super::{FindInThread, INDEX_STEP};
    use crate::testing::*;

    fn find(h: &Harness) -> &super::Find {
        h.world().resource::<super::Find>()
    }

    #[test]
    fn every_stored_message_is_searched_not_only_the_loaded_ones() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        let n = INDEX_STEP as u32 + 500;
        let msgs: Vec<StoredMessage> = (0..n)
            .map(|i| {
                let text = match i {
                    3 => "The Needle, first".to_owned(),
                    _ if i == n - 2 => "a needle near the end".to_owned(),
                    _ => format!("hay {i}"),
                };
                let when = hush_core::time::format_ws(1_790_000_000_000_000 + i64::from(i) * 1000);
                h.sealed_from(PEER, t, &format!("m{i:05}"), &when, &text)
            })
            .collect();
        h.store.store_messages(&msgs, None, &[]).unwrap();
        h.write(FindInThread {
            thread: t,
            query: "  NEEDLE ".into(),
        });
        h.steps(1);
        assert!(!find(&h).complete, "a step at a time");
        h.steps(3);
        let f = find(&h);
        assert!(f.complete);
        assert_eq!(f.searched, n as usize);
        let ids: Vec<&str> = f.hits.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["m00003", &format!("m{:05}", n - 2)]);
        // A live message that matches joins the hits.
        let when = hush_core::time::format_ws(1_800_000_000_000_000);
        let m = h.sealed_from(PEER, t, "live", &when, "one more needle");
        h.net.frame(ServerFrame::Message(m));
        h.steps(3);
        assert_eq!(find(&h).hits.len(), 3);
        assert_eq!(find(&h).hits.last().unwrap().id, "live");
        // Another query reuses the index; an empty one ends the search.
        h.write(FindInThread {
            thread: t,
            query: "hay 4001".into(),
        });
        h.steps(1);
        assert_eq!(find(&h).hits.len(), 1);
        h.write(FindInThread {
            thread: t,
            query: String::new(),
        });
        h.steps(1);
        assert_eq!(find(&h).thread, None);
        assert!(find(&h).hits.is_empty());
    }
}
