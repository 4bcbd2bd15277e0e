//! A thread's stored history, read a page at a time: opening a thread reads
//! and decrypts only its newest [`PAGE`] messages, and the view asks for the
//! page before the oldest one shown ([`LoadOlder`]) when it is scrolled to
//! the top. So opening a profile costs the same with ten messages stored as
//! with a hundred thousand.

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::crypto::AeadKey;
use hush_store::{MessageKey, StoreError};
use std::collections::HashSet;
use uuid::Uuid;

use crate::ChatSystems;
use crate::model::ChatMessage;
use crate::profile::{ProfileStore, StoreFailed};
use crate::threads::{ThreadKey, ThreadLog, Threads};
use crate::vault::Vault;

/// Messages read from the store at a time: more than a tall window shows.
pub const PAGE: usize = 200;

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<LoadOlder>()
        .add_message::<LoadThrough>()
        .add_systems(Update, load_older.in_set(ChatSystems::Threads));
}

/// Load this thread's history back to (and with) this message: a search
/// match the view is to show.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct LoadThrough(pub ThreadId, pub MessageKey);

/// Show the page of this thread's history before its oldest loaded message
/// (sent by the view when it is scrolled to the top; ignored when there is
/// nothing older).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOlder(pub ThreadId);

/// The page of `thread` before `before` (`None`: the newest), decrypted,
/// oldest first, and whether older messages remain in the store: what
/// opening a thread and scrolling to its top read.
pub fn page(
    store: &ProfileStore,
    thread: ThreadId,
    key: &AeadKey,
    me: Uuid,
    before: Option<&MessageKey>,
) -> Result<(Vec<ChatMessage>, bool), StoreError> {
    // One more than a page tells whether there is anything before it.
    let mut stored = store.messages_before(thread, before, PAGE + 1)?;
    let older = stored.len() > PAGE;
    if older {
        stored.remove(0);
    }
    let msgs = stored
        .iter()
        .map(|m| ChatMessage::decrypt(key, m, me))
        .collect();
    Ok((msgs, older))
}

fn load_older(
    mut asks: MessageReader<LoadOlder>,
    mut through: MessageReader<LoadThrough>,
    threads: Res<Threads>,
    vault: Res<Vault>,
    store: Res<ProfileStore>,
    mut logs: Query<(&ThreadKey, &mut ThreadLog)>,
    mut failed: MessageWriter<StoreFailed>,
) {
    // A view at the top asks every frame: one page per thread per update.
    let mut asked: Vec<(ThreadId, Option<MessageKey>)> = Vec::new();
    let mut seen = HashSet::new();
    for a in asks.read() {
        if seen.insert(a.0) {
            asked.push((a.0, None));
        }
    }
    asked.extend(
        through
            .read()
            .map(|LoadThrough(t, k)| (*t, Some(k.clone()))),
    );
    let Some(me) = vault.my_id() else { return };
    for (t, until) in asked {
        let Some((key, mut log)) = threads.entity(t).and_then(|e| logs.get_mut(e).ok()) else {
            continue;
        };
        // One page, or as many as reach `until`.
        loop {
            if !log.older {
                break;
            }
            let Some(first) = log.messages.first() else {
                break;
            };
            let before = MessageKey {
                micros: first.micros,
                id: first.id.clone(),
            };
            if until.as_ref().is_some_and(|u| *u >= before) {
                break;
            }
            match page(&store, t, &key.0, me, Some(&before)) {
                Ok((msgs, older)) => log.prepend(msgs, older),
                Err(e) => {
                    failed.write(StoreFailed::new("read older messages", &e));
                    break;
                }
            }
            if until.is_none() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hush_core::wire::ServerFrame;
    use hush_store::StoredMessage;

    use super::{LoadOlder, PAGE};
    use crate::testing::*;

    /// `n` messages from `peer` in `t`, stored before the client starts.
    fn stored_history(h: &mut Harness, peer: uuid::Uuid, n: u32) -> hush_core::ThreadId {
        let t = h.add_contact(peer, "Bob");
        let msgs: Vec<StoredMessage> = (0..n)
            .map(|i| {
                h.sealed_from(
                    peer,
                    t,
                    &format!("m{i:05}"),
                    &at(i + 1),
                    &format!("text {i}"),
                )
            })
            .collect();
        h.store.store_messages(&msgs, None, &[]).unwrap();
        t
    }

    #[test]
    fn opening_a_long_thread_reads_only_its_last_page() {
        let mut h = Harness::unlocked("Ann");
        let t = stored_history(&mut h, PEER, PAGE as u32 * 2 + 7);
        let h = h.reopened();
        let log = h.log(t);
        assert_eq!(log.messages.len(), PAGE);
        assert!(log.older, "older messages are left in the store");
        assert_eq!(
            log.messages.last().unwrap().content,
            format!("text {}", PAGE * 2 + 6)
        );
        assert_eq!(log.messages[0].content, format!("text {}", PAGE + 7));
    }

    #[test]
    fn scrolling_back_pages_through_all_of_it_once_and_in_order() {
        let mut h = Harness::unlocked("Ann");
        let n = PAGE as u32 * 2 + 7;
        let t = stored_history(&mut h, PEER, n);
        let mut h = h.reopened();
        for _ in 0..5 {
            h.write(LoadOlder(t));
            h.write(LoadOlder(t));
            h.steps(1);
        }
        let log = h.log(t);
        assert!(!log.older);
        let texts: Vec<&str> = log.messages.iter().map(|m| m.content.as_str()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("text {i}")).collect();
        assert_eq!(texts, want.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn a_search_match_far_back_is_loaded_with_everything_after_it() {
        let mut h = Harness::unlocked("Ann");
        let t = stored_history(&mut h, PEER, PAGE as u32 * 3);
        let mut h = h.reopened();
        let target = h.log(t).messages.len();
        assert_eq!(target, PAGE);
        let stored = h.store.messages(t, None, 20).unwrap();
        let key = hush_store::message_key(&stored[10]);
        h.write(super::LoadThrough(t, key));
        h.steps(1);
        let log = h.log(t);
        assert_eq!(log.messages[0].content, "text 0", "whole pages, back to it");
        assert!(log.messages.iter().any(|m| m.content == "text 10"));
        assert_eq!(log.messages.len(), PAGE * 3, "nothing twice");
    }

    #[test]
    fn a_short_thread_has_nothing_older() {
        let mut h = Harness::unlocked("Ann");
        let t = stored_history(&mut h, PEER, 3);
        let mut h = h.reopened();
        assert!(!h.log(t).older);
        let rev = h.log(t).revision;
        h.write(LoadOlder(t));
        h.steps(1);
        assert_eq!(h.log(t).messages.len(), 3);
        assert_eq!(h.log(t).revision, rev, "nothing to load, nothing redrawn");
    }

    #[test]
    fn a_message_older_than_the_loaded_page_is_counted_and_found_by_paging_back() {
        let mut h = Harness::unlocked("Ann");
        let t = stored_history(&mut h, PEER, PAGE as u32 + 1);
        let mut h = h.reopened();
        h.connect(&["ext"]);
        h.subscribed(t);
        // Server time before everything shown: only the store gets it now.
        let late = h.sealed_from(PEER, t, "m00000-late", &at(1), "late");
        h.net.frame(ServerFrame::Message(late));
        h.steps(2);
        assert_eq!(h.log(t).messages.len(), PAGE);
        assert!(h.log(t).messages.iter().all(|m| m.content != "late"));
        h.write(LoadOlder(t));
        h.steps(1);
        let texts: Vec<&str> = h
            .log(t)
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(&texts[..3], ["text 0", "late", "text 1"]);
        assert!(!h.log(t).older);
    }
}
