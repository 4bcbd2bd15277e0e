//! A stored message's row in the redb `messages` table.
//!
//! The row's key already holds the thread and the server id, so the value
//! carries only the rest, length-prefixed, behind a tag byte:
//!
//! ```text
//! 0x01 | u32 LE len, created_at | u32 LE len, iv | 0x00, or 0x01 and u32 LE len, client_message_id | ciphertext (the rest)
//! ```
//!
//! Rows written before this layout are the whole message as JSON; a JSON
//! object starts with `{`, never with the tag, so both read back. A row is
//! about half its JSON size and costs no serialiser on the receive path.

use hush_core::ThreadId;

use crate::{Result, StoreError, StoredMessage};

/// The first byte of a compact row.
const COMPACT: u8 = 0x01;

/// Writes into `out` (cleared first) the row of `m`, stored under `m`'s
/// thread and id; one buffer serves a whole write.
pub(crate) fn encode_into(out: &mut Vec<u8>, m: &StoredMessage) {
    let cmid = m.client_message_id.as_deref();
    out.clear();
    out.reserve(
        1 + 4
            + m.created_at.len()
            + 4
            + m.iv.len()
            + 1
            + cmid.map_or(0, |c| 4 + c.len())
            + m.ciphertext.len(),
    );
    out.push(COMPACT);
    put(out, &m.created_at);
    put(out, &m.iv);
    match cmid {
        Some(c) => {
            out.push(1);
            put(out, c);
        }
        None => out.push(0),
    }
    out.extend_from_slice(m.ciphertext.as_bytes());
}

fn put(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("a field under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The message in the row stored under `thread` and `id`.
pub(crate) fn decode(thread: ThreadId, id: &str, row: &[u8]) -> Result<StoredMessage> {
    match row.first() {
        Some(&COMPACT) => {
            let mut r = Reader(&row[1..]);
            let created_at = r.field()?;
            let iv = r.field()?;
            let client_message_id = match r.bytes(1)? {
                [0] => None,
                [1] => Some(r.field()?),
                _ => return Err(corrupt("a bad client_message_id flag")),
            };
            Ok(StoredMessage {
                id: id.to_owned(),
                thread_id: thread,
                ciphertext: text(r.0)?,
                iv,
                created_at,
                client_message_id,
            })
        }
        Some(b'{') => serde_json::from_slice(row).map_err(|e| StoreError::Corrupt(e.to_string())),
        _ => Err(corrupt("an unknown row layout")),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("a truncated row"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<String> {
        let len: [u8; 4] = self.bytes(4)?.try_into().expect("four bytes");
        let len = usize::try_from(u32::from_le_bytes(len)).map_err(|_| corrupt("a huge field"))?;
        text(self.bytes(len)?)
    }
}

fn text(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| corrupt("a field that is not UTF-8"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a message row: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(m: &StoredMessage) -> Vec<u8> {
        let mut out = vec![0xAA; 3];
        encode_into(&mut out, m);
        out
    }

    fn msg(cmid: Option<&str>) -> StoredMessage {
        StoredMessage {
            id: "7c9e6679-7425-40de-944b-e07fc1f90ae7".into(),
            thread_id: ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap(),
            ciphertext: "q83vEjRWeJA=".repeat(20),
            iv: "AAECAwQFBgcICQoL".into(),
            created_at: "2026-12-05T06:00:00.123456Z".into(),
            client_message_id: cmid.map(str::to_owned),
        }
    }

    fn round_trip(m: &StoredMessage) -> StoredMessage {
        decode(m.thread_id, &m.id, &encode(m)).unwrap()
    }

    #[test]
    fn a_row_gives_back_the_message_with_and_without_a_client_message_id() {
        for m in [msg(None), msg(Some("c-1")), msg(Some(""))] {
            assert_eq!(round_trip(&m), m);
        }
    }

    #[test]
    fn empty_fields_survive() {
        let mut m = msg(None);
        m.ciphertext.clear();
        m.iv.clear();
        m.created_at.clear();
        assert_eq!(round_trip(&m), m);
    }

    #[test]
    fn the_row_is_smaller_than_the_json_it_replaces() {
        let m = msg(Some("c-1"));
        let json = serde_json::to_vec(&m).unwrap();
        assert!(
            encode(&m).len() + 80 < json.len(),
            "{} vs {}",
            encode(&m).len(),
            json.len()
        );
    }

    #[test]
    fn a_json_row_of_the_earlier_layout_still_reads() {
        let m = msg(Some("c-1"));
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(decode(m.thread_id, &m.id, &json).unwrap(), m);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let m = msg(Some("c-1"));
        let row = encode(&m);
        // Every truncation of the length-prefixed part.
        let fixed = 1 + 4 + m.created_at.len() + 4 + m.iv.len() + 1 + 4 + 3;
        for n in 0..fixed {
            assert!(
                matches!(
                    decode(m.thread_id, &m.id, &row[..n]),
                    Err(StoreError::Corrupt(_))
                ),
                "{n}"
            );
        }
        let mut bad_flag = row.clone();
        bad_flag[1 + 4 + m.created_at.len() + 4 + m.iv.len()] = 7;
        assert!(decode(m.thread_id, &m.id, &bad_flag).is_err());
        let mut huge = row.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(m.thread_id, &m.id, &huge).is_err());
        let mut not_utf8 = row;
        let last = not_utf8.len() - 1;
        not_utf8[last] = 0xFF;
        assert!(decode(m.thread_id, &m.id, &not_utf8).is_err());
        assert!(decode(m.thread_id, &m.id, &[0x02, 0, 0]).is_err());
        assert!(decode(m.thread_id, &m.id, b"{not json").is_err());
    }
}
