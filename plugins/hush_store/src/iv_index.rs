//! The redb IV index: where the first message with each IV of a thread is,
//! so that a resend a stock server stored twice is recognised (see
//! `same_message.rs`).
//!
//! Its key is fixed-width: the thread and the IV, each a `u128`. An IV is 12
//! bytes in base64 (a stock server refuses any other base64), and those
//! bytes are its key, so the key is exact. A string that does not decode to
//! 12 bytes (never from a stock server) is keyed by the first 16 bytes of its
//! SHA-256 with the top bit set, which no 12-byte IV has; the rule still
//! compares IV and ciphertext of the message it finds.
//!
//! Earlier files keyed the index by (thread text, IV text), and before that
//! kept server ids and IVs in two tables of their own. [`upgrade`] moves
//! those into this table once, when such a file is first opened.

use base64::Engine as _;
use hush_core::ThreadId;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::redb_error::io_err;

/// (thread, IV) → server micros of the first message stored with that IV
/// (its row is the one of that time with that IV). Fixed-width both sides:
/// an entry is 40 bytes.
pub(crate) const IV_INDEX: TableDefinition<(u128, u128), i64> = TableDefinition::new("iv_keys");

/// Before `iv_keys`: (thread id, iv) → (server micros, server id).
const TEXT_IV_INDEX: TableDefinition<(&str, &str), (i64, &str)> = TableDefinition::new("iv_index");
/// Before `iv_index`: (thread id, server id) → server micros.
const LEGACY_IDS: TableDefinition<(&str, &str), i64> = TableDefinition::new("message_ids");
/// Before `iv_index`: (thread id, iv) → server id.
const LEGACY_IVS: TableDefinition<(&str, &str), &str> = TableDefinition::new("message_ivs");

/// The names of the tables [`upgrade`] empties into `iv_keys`.
pub(crate) const EARLIER_TABLES: [&str; 3] = ["iv_index", "message_ids", "message_ivs"];

/// The index key of `iv` in `thread`.
pub(crate) fn key(thread: ThreadId, iv: &str) -> (u128, u128) {
    (thread.0.as_u128(), iv_key(iv))
}

fn iv_key(iv: &str) -> u128 {
    let mut raw = [0u8; 16];
    match base64::engine::general_purpose::STANDARD.decode_slice(iv, &mut raw[4..]) {
        Ok(12) => u128::from_be_bytes(raw),
        _ => {
            let h = Sha256::digest(iv.as_bytes());
            u128::from_be_bytes(h[..16].try_into().expect("sixteen bytes")) | 1 << 127
        }
    }
}

/// Moves the entries of the earlier index tables named in `present` into
/// `iv_keys` (the first message of an IV stays the one indexed) and
/// deletes those tables, within `w`.
pub(crate) fn upgrade(w: &WriteTransaction, present: &[String]) -> Result<()> {
    let has = |name: &str| present.iter().any(|p| p == name);
    let mut index = w.open_table(IV_INDEX).map_err(io_err)?;
    let mut keep_first = |thread: &str, iv: &str, micros: i64| -> Result<()> {
        // A key that is not a thread id was never written by hush.
        let Ok(thread) = ThreadId::parse(thread) else {
            return Ok(());
        };
        let k = key(thread, iv);
        if index.get(k).map_err(io_err)?.is_none() {
            index.insert(k, micros).map_err(io_err)?;
        }
        Ok(())
    };
    if has("iv_index") {
        let t = w.open_table(TEXT_IV_INDEX).map_err(io_err)?;
        for row in t.iter().map_err(io_err)? {
            let (k, v) = row.map_err(io_err)?;
            let ((thread, iv), (micros, _)) = (k.value(), v.value());
            keep_first(thread, iv, micros)?;
        }
    }
    if has("message_ivs") {
        let ivs = w.open_table(LEGACY_IVS).map_err(io_err)?;
        let ids = w.open_table(LEGACY_IDS).map_err(io_err)?;
        for row in ivs.iter().map_err(io_err)? {
            let (k, v) = row.map_err(io_err)?;
            let ((thread, iv), id) = (k.value(), v.value());
            let micros = ids
                .get((thread, id))
                .map_err(io_err)?
                .map_or(i64::MIN, |m| m.value());
            keep_first(thread, iv, micros)?;
        }
    }
    drop(index);
    if has("iv_index") {
        w.delete_table(TEXT_IV_INDEX).map_err(io_err)?;
    }
    if has("message_ivs") {
        w.delete_table(LEGACY_IVS).map_err(io_err)?;
    }
    if has("message_ids") {
        w.delete_table(LEGACY_IDS).map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iv_is_keyed_by_its_twelve_bytes() {
        // The protocol's test vector: bytes 00 01 02 … 0b.
        assert_eq!(iv_key("AAECAwQFBgcICQoL"), 0x0001_0203_0405_0607_0809_0a0b);
        assert_ne!(iv_key("AAECAwQFBgcICQoL"), iv_key("AAECAwQFBgcICQoM"));
        let t = ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap();
        assert_eq!(key(t, "AAECAwQFBgcICQoL").0, t.0.as_u128());
    }

    #[test]
    fn a_string_that_is_not_an_iv_gets_a_stable_key_no_iv_has() {
        for odd in [
            "",
            "not base64!",
            "AAAA",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
        ] {
            assert_eq!(iv_key(odd), iv_key(odd), "{odd}");
            assert!(iv_key(odd) >> 96 != 0, "{odd}");
        }
        assert_ne!(iv_key("not base64!"), iv_key("not base64?"));
        // Decodes, but to 3 bytes, not 12: hashed, not taken for an IV.
        assert_ne!(iv_key("AAAA"), 0);
    }
}
