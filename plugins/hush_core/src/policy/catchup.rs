//! Catch-up cursors: where a thread's history fetch resumes.
//!
//! The rule: resume *after* the newest `created_at` this client has stored
//! contiguously, sent back as the server's own string (never re-formatted: a
//! millisecond round trip re-fetches or skips messages). Instants are compared
//! parsed, because a stock server writes the same instant as `…Z` over REST and
//! `…+00:00` over WebSocket. Rows are deduplicated by server id by the store, so
//! overlap is harmless; a gap is not, which is why live messages only advance
//! the cursor once the thread has been caught up on this connection.

use crate::time::ServerTime;

/// The query parameter of a thread that was never fetched: the epoch, so the
/// first catch-up pages through the whole history from the oldest message.
pub const FROM_THE_START: &str = "1970-01-01T00:00:00Z";

/// The newest server time known to be stored with nothing missing before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchupCursor {
    newest: Option<ServerTime>,
}

impl CatchupCursor {
    /// Restores a cursor from its stored raw string.
    pub fn from_raw(raw: Option<&str>) -> Self {
        CatchupCursor {
            newest: raw.and_then(ServerTime::parse),
        }
    }

    /// The `after` query value to send.
    pub fn after(&self) -> &str {
        self.newest
            .as_ref()
            .map_or(FROM_THE_START, |t| t.raw.as_str())
    }

    /// The raw string to persist (`None` before anything was seen).
    pub fn raw(&self) -> Option<&str> {
        self.newest.as_ref().map(|t| t.raw.as_str())
    }

    /// Microseconds of the newest instant seen.
    pub fn micros(&self) -> Option<i64> {
        self.newest.as_ref().map(|t| t.micros)
    }

    /// Advances to `created_at` if it is newer. Returns whether it moved.
    /// An unparsable timestamp never moves the cursor.
    pub fn observe(&mut self, created_at: &str) -> bool {
        match ServerTime::parse(created_at) {
            Some(t) if self.newest.as_ref().is_none_or(|n| t > *n) => {
                self.newest = Some(t);
                true
            }
            _ => false,
        }
    }
}

/// Whether to fetch another page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOutcome {
    /// A short page: the thread is caught up.
    Done,
    /// A full page: fetch again from the advanced cursor.
    More,
    /// A full page that did not advance the cursor (timestamps unparsable or
    /// all equal): stop instead of fetching the same page forever.
    Stuck,
}

/// Folds one fetched page into the cursor and says whether to continue.
pub fn on_page<'a>(
    cursor: &mut CatchupCursor,
    created_ats: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> PageOutcome {
    let mut rows = 0usize;
    let mut moved = false;
    for c in created_ats {
        rows += 1;
        moved |= cursor.observe(c);
    }
    match (rows >= limit, moved) {
        (false, _) => PageOutcome::Done,
        (true, true) => PageOutcome::More,
        (true, false) => PageOutcome::Stuck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_thread_starts_from_the_beginning() {
        let c = CatchupCursor::default();
        assert_eq!(c.after(), FROM_THE_START);
        assert_eq!(c.raw(), None);
    }

    #[test]
    fn resumes_after_the_servers_own_string() {
        let mut c = CatchupCursor::default();
        assert!(c.observe("2026-01-19T10:00:00.000002+00:00"));
        // The same instant written the REST way does not move it.
        assert!(!c.observe("2026-01-19T10:00:00.000002Z"));
        // An older one does not either.
        assert!(!c.observe("2026-01-19T10:00:00.000001Z"));
        assert_eq!(c.after(), "2026-01-19T10:00:00.000002+00:00");
        assert!(c.observe("2026-01-19T10:00:00.000003Z"));
        assert_eq!(c.after(), "2026-01-19T10:00:00.000003Z");
        assert!(!c.observe("garbage"));
        let restored = CatchupCursor::from_raw(c.raw());
        assert_eq!(restored, c);
    }

    #[test]
    fn pages_until_a_short_one() {
        let mut c = CatchupCursor::default();
        let p1 = ["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"];
        assert_eq!(on_page(&mut c, p1, 2), PageOutcome::More);
        assert_eq!(c.after(), "2026-01-01T00:00:02Z");
        assert_eq!(
            on_page(&mut c, ["2026-01-01T00:00:03Z"], 2),
            PageOutcome::Done
        );
        assert_eq!(on_page(&mut c, [], 2), PageOutcome::Done);
        assert_eq!(c.after(), "2026-01-01T00:00:03Z");
    }

    #[test]
    fn a_full_page_that_does_not_advance_stops() {
        let mut c = CatchupCursor::from_raw(Some("2026-01-01T00:00:05Z"));
        let stale = ["2026-01-01T00:00:05Z", "bad"];
        assert_eq!(on_page(&mut c, stale, 2), PageOutcome::Stuck);
    }
}
