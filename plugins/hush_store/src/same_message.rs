//! When an arriving message is one already stored: the rule every backend
//! applies in [`crate::Store::store_messages`], written once.
//!
//! A message is already stored if its server id is, or if the thread holds
//! the very same blob (same IV and ciphertext) under another id: a stock
//! server stores a resend twice, and a random IV makes equal blobs the same
//! message. A different blob that reuses an IV is a new message, but the IV
//! keeps pointing at the first one.

use hush_core::ThreadId;

use crate::{MessageKey, Result, StoredMessage};

/// The lookups by IV the rule needs, over one backend's tables.
pub(crate) trait IvIndex {
    /// Where the message first stored with this IV is.
    fn first_with_iv(&self, thread: ThreadId, iv: &str) -> Result<Option<MessageKey>>;
    fn message(&self, thread: ThreadId, at: &MessageKey) -> Result<Option<StoredMessage>>;
}

/// All the lookups the rule needs.
pub(crate) trait MessageIndex: IvIndex {
    /// A message with this key's server id is stored in the thread.
    fn has_id(&self, thread: ThreadId, at: &MessageKey) -> Result<bool>;
}

/// What storing one message should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Already stored: nothing to write.
    Known,
    /// New. `index_iv`: no message holds its IV yet, so it is recorded.
    New { index_iv: bool },
}

/// `at`: the message's own key (`message_key(m)`, computed once by the caller,
/// which stores it under that key).
pub(crate) fn arrival(
    ix: &impl MessageIndex,
    m: &StoredMessage,
    at: &MessageKey,
) -> Result<Arrival> {
    if ix.has_id(m.thread_id, at)? {
        return Ok(Arrival::Known);
    }
    arrival_of_unknown_id(ix, m)
}

/// The rule for a message whose server id is not stored. A backend that
/// learns that from writing the row (one tree walk instead of two) asks only
/// this, and takes the row back out when the answer is `Known`.
pub(crate) fn arrival_of_unknown_id(ix: &impl IvIndex, m: &StoredMessage) -> Result<Arrival> {
    let Some(first) = ix.first_with_iv(m.thread_id, &m.iv)? else {
        return Ok(Arrival::New { index_iv: true });
    };
    let same_blob = ix
        .message(m.thread_id, &first)?
        .is_some_and(|prev| prev.iv == m.iv && prev.ciphertext == m.ciphertext);
    Ok(if same_blob {
        Arrival::Known
    } else {
        Arrival::New { index_iv: false }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::message_key;

    /// The rule's view of a thread: messages by id, and the first one per IV.
    #[derive(Default)]
    struct Held {
        by_id: HashMap<String, StoredMessage>,
        by_iv: HashMap<String, MessageKey>,
    }

    impl Held {
        fn keep(&mut self, m: &StoredMessage) {
            if let Arrival::New { index_iv } = arrival(self, m, &message_key(m)).unwrap() {
                self.by_id.insert(m.id.clone(), m.clone());
                if index_iv {
                    self.by_iv.insert(m.iv.clone(), message_key(m));
                }
            }
        }
    }

    impl MessageIndex for Held {
        fn has_id(&self, _: ThreadId, at: &MessageKey) -> Result<bool> {
            Ok(self.by_id.contains_key(&at.id))
        }
    }

    impl IvIndex for Held {
        fn first_with_iv(&self, _: ThreadId, iv: &str) -> Result<Option<MessageKey>> {
            Ok(self.by_iv.get(iv).cloned())
        }
        fn message(&self, _: ThreadId, at: &MessageKey) -> Result<Option<StoredMessage>> {
            Ok(self.by_id.get(&at.id).cloned())
        }
    }

    fn arrival_of(held: &Held, m: &StoredMessage) -> Result<Arrival> {
        arrival(held, m, &message_key(m))
    }

    fn msg(id: &str, iv: &str, ct: &str) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            thread_id: ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap(),
            ciphertext: ct.into(),
            iv: iv.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            client_message_id: None,
        }
    }

    #[test]
    fn a_first_message_is_new_and_indexes_its_iv() {
        let held = Held::default();
        assert_eq!(
            arrival_of(&held, &msg("a", "iv1", "ct")).unwrap(),
            Arrival::New { index_iv: true }
        );
    }

    #[test]
    fn a_known_server_id_is_not_new() {
        let mut held = Held::default();
        held.keep(&msg("a", "iv1", "ct"));
        assert_eq!(
            arrival_of(&held, &msg("a", "iv1", "ct")).unwrap(),
            Arrival::Known
        );
    }

    #[test]
    fn a_resend_stored_twice_by_a_stock_server_is_one_message() {
        let mut held = Held::default();
        held.keep(&msg("a", "iv1", "ct"));
        assert_eq!(
            arrival_of(&held, &msg("b", "iv1", "ct")).unwrap(),
            Arrival::Known
        );
    }

    #[test]
    fn a_different_blob_reusing_an_iv_is_new_and_the_iv_keeps_its_first_holder() {
        let mut held = Held::default();
        held.keep(&msg("a", "iv1", "ct"));
        assert_eq!(
            arrival_of(&held, &msg("b", "iv1", "other")).unwrap(),
            Arrival::New { index_iv: false }
        );
        held.keep(&msg("b", "iv1", "other"));
        assert_eq!(held.by_iv["iv1"].id, "a");
        // The first blob's resend is still recognised.
        assert_eq!(
            arrival_of(&held, &msg("c", "iv1", "ct")).unwrap(),
            Arrival::Known
        );
    }
}
