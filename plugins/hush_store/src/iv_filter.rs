//! A Bloom filter over the keys of the IV index (`iv_keys`), kept in the
//! file beside it, so that a new IV (nearly every message is new) is known
//! to be absent without walking the index. That walk, in a tree of random
//! keys that grows with the history, was what made a received message cost
//! more in a long thread than in a new one.
//!
//! The filter holds every key of the index and may hold more (a forgotten
//! thread's keys stay until it is rebuilt): "absent" is certain, "maybe"
//! asks the index. It is cut into rows of 4 KiB, and all the bits of a key
//! are in one row, so a write saves only the rows it changed: a message in a
//! quiet chat rewrites one row. Rows are written in the same transaction as
//! the index entries they cover, so a crash keeps the two together. A file
//! without the filter (an earlier layout) or with a damaged row rebuilds it
//! from the index on first use, and a filter holding more keys than it was
//! sized for is rebuilt twice as large. A small index (under
//! [`SAVED_FROM`] keys) is cheaper to read than its filter is to store, so
//! its filter is built from it when first needed and not written at all
//! until the index grows past that.

use std::collections::BTreeSet;

use redb::{ReadableTable, Table, TableDefinition};

use crate::Result;
use crate::redb_error::io_err;

/// Row number → 4 KiB of filter bits; row [`HEADER`] holds the row count
/// and the number of keys added.
pub(crate) const IV_FILTER: TableDefinition<u32, &[u8]> = TableDefinition::new("iv_filter");

const HEADER: u32 = u32::MAX;
const ROW_WORDS: usize = 512;
const ROW_BITS: u64 = ROW_WORDS as u64 * 64;
/// Bits per key the filter is sized for: with [`HASHES`], about 1 % of
/// absent keys get a "maybe".
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;
/// The size of index from which the filter is kept in the file.
const SAVED_FROM: u64 = 4096;

pub(crate) struct IvFilter {
    /// `rows` × [`ROW_WORDS`] words.
    words: Vec<u64>,
    rows: u32,
    /// Keys added since it was built (a key added twice counts twice).
    keys: u64,
    /// Rows changed since the last save.
    dirty: BTreeSet<u32>,
    /// The table holds this filter (as of the last save): from then on
    /// every change must be saved, or the table would be stale.
    in_table: bool,
}

type Key = (u128, u128);

impl IvFilter {
    fn empty(for_keys: u64) -> Self {
        let rows = for_keys
            .saturating_mul(BITS_PER_KEY)
            .div_ceil(ROW_BITS)
            .max(1);
        let rows = u32::try_from(rows).unwrap_or(HEADER - 1).min(HEADER - 1);
        IvFilter {
            words: vec![0; rows as usize * ROW_WORDS],
            rows,
            keys: 0,
            dirty: (0..rows).collect(),
            in_table: false,
        }
    }

    /// The filter saved in `table`, or, if there is none or it is damaged,
    /// one built from `index` (saved by the next [`Self::save`]).
    pub(crate) fn load(
        table: &impl ReadableTable<u32, &'static [u8]>,
        index: &impl ReadableTable<Key, i64>,
    ) -> Result<Self> {
        match Self::read(table)? {
            Some(f) => Ok(f),
            None => Self::rebuild(index, 0),
        }
    }

    fn read(table: &impl ReadableTable<u32, &'static [u8]>) -> Result<Option<Self>> {
        let Some(header) = table.get(HEADER).map_err(io_err)? else {
            return Ok(None);
        };
        let Ok(h) = <[u8; 12]>::try_from(header.value()) else {
            return Ok(None);
        };
        let rows = u32::from_le_bytes(h[..4].try_into().expect("four bytes"));
        let keys = u64::from_le_bytes(h[4..].try_into().expect("eight bytes"));
        if rows == 0 || rows == HEADER {
            return Ok(None);
        }
        let mut words = Vec::with_capacity(rows as usize * ROW_WORDS);
        for r in 0..rows {
            let Some(row) = table.get(r).map_err(io_err)? else {
                return Ok(None);
            };
            let row = row.value();
            if row.len() != ROW_WORDS * 8 {
                return Ok(None);
            }
            words.extend(
                row.chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().expect("eight bytes"))),
            );
        }
        Ok(Some(IvFilter {
            words,
            rows,
            keys,
            dirty: BTreeSet::new(),
            in_table: true,
        }))
    }

    /// A filter of every key in `index`, sized for at least `for_keys`.
    fn rebuild(index: &impl ReadableTable<Key, i64>, for_keys: u64) -> Result<Self> {
        let n = index.len().map_err(io_err)?;
        let mut f = Self::empty(n.max(for_keys).max(1));
        for row in index.iter().map_err(io_err)? {
            f.add(row.map_err(io_err)?.0.value());
        }
        Ok(f)
    }

    /// False only if `key` was never added.
    pub(crate) fn may_hold(&self, key: Key) -> bool {
        let (row, bits) = self.bits(key);
        let base = row as usize * ROW_WORDS;
        bits.into_iter()
            .all(|b| self.words[base + (b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    pub(crate) fn add(&mut self, key: Key) {
        let (row, bits) = self.bits(key);
        let base = row as usize * ROW_WORDS;
        for b in bits {
            self.words[base + (b / 64) as usize] |= 1 << (b % 64);
        }
        self.dirty.insert(row);
        self.keys += 1;
    }

    /// Writes the changed rows into `table`, after rebuilding the filter
    /// twice as large from `index` if it holds more keys than it was sized
    /// for. `index` must hold every key added. A filter of a small index
    /// that the table does not hold yet is not written (see [`SAVED_FROM`]).
    pub(crate) fn save(
        &mut self,
        table: &mut Table<u32, &'static [u8]>,
        index: &impl ReadableTable<Key, i64>,
    ) -> Result<()> {
        if self.keys.saturating_mul(BITS_PER_KEY) > u64::from(self.rows) * ROW_BITS {
            let in_table = self.in_table;
            *self = Self::rebuild(index, self.keys.saturating_mul(2))?;
            self.in_table = in_table;
        }
        if !self.in_table && self.keys < SAVED_FROM {
            return Ok(());
        }
        let mut row = Vec::with_capacity(ROW_WORDS * 8);
        for &r in &self.dirty {
            row.clear();
            let base = r as usize * ROW_WORDS;
            for w in &self.words[base..base + ROW_WORDS] {
                row.extend_from_slice(&w.to_le_bytes());
            }
            table.insert(r, row.as_slice()).map_err(io_err)?;
        }
        self.dirty.clear();
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(&self.rows.to_le_bytes());
        header[4..].copy_from_slice(&self.keys.to_le_bytes());
        table.insert(HEADER, &header[..]).map_err(io_err)?;
        self.in_table = true;
        Ok(())
    }

    /// The row of `key` and its bits in that row.
    fn bits(&self, (thread, iv): Key) -> (u32, [u64; HASHES as usize]) {
        let a =
            mix(iv as u64
                ^ mix((iv >> 64) as u64 ^ mix(thread as u64 ^ mix((thread >> 64) as u64))));
        let b = mix(a ^ 0x9E37_79B9_7F4A_7C15) | 1;
        let row = ((a >> 32) % u64::from(self.rows)) as u32;
        let mut bits = [0; HASHES as usize];
        for (i, bit) in bits.iter_mut().enumerate() {
            *bit = (a & 0xFFFF_FFFF).wrapping_add((i as u64).wrapping_mul(b)) % ROW_BITS;
        }
        (row, bits)
    }
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::iv_index::IV_INDEX;

    fn key(i: u64) -> Key {
        (7, u128::from(mix(i)) << 32 | u128::from(i))
    }

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("f.redb")).unwrap();
        (dir, db)
    }

    /// Runs `f` on the index and filter tables of one write to a new file.
    fn in_a_write(f: impl FnOnce(&mut Table<Key, i64>, &mut Table<u32, &'static [u8]>)) {
        let (_dir, db) = db();
        let w = db.begin_write().unwrap();
        {
            let mut index = w.open_table(IV_INDEX).unwrap();
            let mut t = w.open_table(IV_FILTER).unwrap();
            f(&mut index, &mut t);
        }
        w.commit().unwrap();
    }

    #[test]
    fn every_key_added_is_held_and_few_others_seem_to_be() {
        let mut f = IvFilter::empty(20_000);
        for i in 0..20_000 {
            f.add(key(i));
        }
        assert!((0..20_000).all(|i| f.may_hold(key(i))));
        let false_maybes = (1_000_000..1_020_000)
            .filter(|&i| f.may_hold(key(i)))
            .count();
        assert!(false_maybes < 600, "{false_maybes} of 20 000");
    }

    #[test]
    fn a_saved_filter_loads_as_it_was_and_saves_only_changed_rows() {
        let (_dir, db) = db();
        let w = db.begin_write().unwrap();
        {
            let index = w.open_table(IV_INDEX).unwrap();
            let mut t = w.open_table(IV_FILTER).unwrap();
            let mut f = IvFilter::empty(100_000);
            assert!(f.rows > 1);
            for i in 0..SAVED_FROM {
                f.add(key(i));
            }
            f.save(&mut t, &index).unwrap();
            assert!(f.dirty.is_empty());
            f.add(key(SAVED_FROM));
            assert_eq!(f.dirty.len(), 1);
            f.save(&mut t, &index).unwrap();
            assert!(f.dirty.is_empty());
        }
        w.commit().unwrap();
        let r = db.begin_read().unwrap();
        let f = IvFilter::load(
            &r.open_table(IV_FILTER).unwrap(),
            &r.open_table(IV_INDEX).unwrap(),
        )
        .unwrap();
        assert!(f.in_table);
        assert!((0..=SAVED_FROM).all(|i| f.may_hold(key(i))));
        assert_eq!((f.rows, f.keys), (31, SAVED_FROM + 1));
    }

    #[test]
    fn a_small_index_keeps_no_filter_in_the_file_until_it_grows() {
        in_a_write(|index, t| {
            let mut f = IvFilter::load(t, index).unwrap();
            for i in 0..10 {
                index.insert(key(i), 0).unwrap();
                f.add(key(i));
            }
            f.save(t, index).unwrap();
            assert!(redb::ReadableTableMetadata::is_empty(&*t).unwrap());
            // Built again from the index, it holds the same keys.
            let again = IvFilter::load(t, index).unwrap();
            assert!((0..10).all(|i| again.may_hold(key(i))));
            // Past the threshold every row goes in, the early keys' too.
            for i in 10..SAVED_FROM {
                index.insert(key(i), 0).unwrap();
                f.add(key(i));
            }
            f.save(t, index).unwrap();
            let saved = IvFilter::read(t).unwrap().expect("saved");
            assert!((0..SAVED_FROM).all(|i| saved.may_hold(key(i))));
        });
    }

    #[test]
    fn a_missing_or_damaged_filter_is_rebuilt_from_the_index() {
        in_a_write(|index, t| {
            for i in 0..5_000 {
                index.insert(key(i), i as i64).unwrap();
            }
            let f = IvFilter::load(t, index).unwrap();
            assert!((0..5_000).all(|i| f.may_hold(key(i))));
            // A row of the wrong size.
            t.insert(HEADER, &[1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..])
                .unwrap();
            t.insert(0, &[0u8; 7][..]).unwrap();
            let f = IvFilter::load(t, index).unwrap();
            assert!((0..5_000).all(|i| f.may_hold(key(i))));
        });
    }

    #[test]
    fn a_filter_past_its_size_is_rebuilt_larger_holding_every_key() {
        in_a_write(|index, t| {
            let mut f = IvFilter::empty(SAVED_FROM);
            let rows = f.rows;
            let n = u64::from(rows) * ROW_BITS / BITS_PER_KEY + 10;
            for i in 0..n {
                index.insert(key(i), 0).unwrap();
                f.add(key(i));
            }
            f.save(t, index).unwrap();
            assert!(f.rows > rows, "{} rows", f.rows);
            let f = IvFilter::read(t).unwrap().expect("saved");
            assert!(f.rows > rows, "{} rows", f.rows);
            assert!((0..n).all(|i| f.may_hold(key(i))));
        });
    }
}
