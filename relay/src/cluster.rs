//! Fan-out between relay nodes that share one PostgreSQL database, through
//! PostgreSQL's own LISTEN/NOTIFY (ARCHITECTURE.md, "Scale" says why this
//! and not NATS).
//!
//! On PostgreSQL every node, the storing one included, broadcasts messages
//! only from the notification stream: a message's notice is sent inside the
//! transaction that stores it, and PostgreSQL delivers notices in commit
//! order, which the store makes the `created_at, id` order of each thread
//! (it locks the thread's row while it writes, see `Db::insert_messages`).
//! So subscribers on every node see a thread's messages exactly once and in
//! the order a catch-up page lists them.
//!
//! A notice is `m <thread id> <frame>` (the `message` frame to send as is),
//! `r <thread id> <message id>` for a message whose frame would not fit in
//! a notice (PostgreSQL's limit is 8 000 bytes; the node reads the row), or
//! `t <relay time µs> <frame>` for a frame every connection there at that
//! time gets (`thread_created`).
//!
//! While a node is not listening it may miss notices, so it closes every
//! socket when the listening connection is lost and takes none until it
//! listens again: clients reconnect (here or elsewhere) and catch up over
//! REST, which loses nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use hush_core::ThreadId;
use hush_core::wire::ServerFrame;
use sqlx::postgres::PgListener;

use crate::AppState;
use crate::db::MessageRecord;
use crate::messages::{text, wire_message};

/// The channel every node listens on.
pub const CHANNEL: &str = "hush_fanout";

/// Notices longer than this carry the message id instead of its frame
/// (PostgreSQL refuses payloads of 8 000 bytes and more).
const MAX_NOTICE: usize = 7_900;

/// The notice for a stored message.
pub fn message_notice(m: &MessageRecord) -> String {
    let frame = ServerFrame::Message(wire_message(m, true)).to_json();
    let notice = format!("m {} {frame}", m.thread_id);
    if notice.len() <= MAX_NOTICE {
        notice
    } else {
        format!("r {} {}", m.thread_id, m.id)
    }
}

/// The notice for a frame every connection of every node gets, the news of
/// something made at relay time `made_at` (µs).
pub fn everyone_notice(frame: &ServerFrame, made_at: i64) -> String {
    format!("t {made_at} {}", frame.to_json())
}

/// What a notice asks this node to do.
#[derive(Debug, PartialEq, Eq)]
enum Notice<'a> {
    /// Send `frame` to the thread's subscribers.
    Frame(ThreadId, &'a str),
    /// Read the message `id` and send it to the thread's subscribers.
    Read(ThreadId, &'a str),
    /// Send `frame` to every connection there at relay time `.0`.
    Everyone(i64, &'a str),
}

fn parse(n: &str) -> Option<Notice<'_>> {
    let (kind, rest) = n.split_once(' ')?;
    if kind == "t" {
        let (made_at, frame) = rest.split_once(' ')?;
        return Some(Notice::Everyone(made_at.parse().ok()?, frame));
    }
    let (thread, body) = rest.split_once(' ')?;
    let thread = ThreadId::parse(thread).ok()?;
    match kind {
        "m" => Some(Notice::Frame(thread, body)),
        "r" => Some(Notice::Read(thread, body)),
        _ => None,
    }
}

/// Starts listening (so that no notice after this returns is missed) and
/// spawns the task that hands notices to this node's connections.
pub async fn start(url: &str, st: Arc<AppState>) -> Result<(), sqlx::Error> {
    let listener = listen(url).await?;
    st.fanout_up.store(true, Ordering::Release);
    let url = url.to_owned();
    tokio::spawn(run(url, listener, st));
    Ok(())
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect(url).await?;
    // Losses are handled here (see the module doc), not by a silent
    // reconnect that would hide them.
    l.ignore_pool_close_event(true);
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn run(url: String, mut listener: PgListener, st: Arc<AppState>) {
    loop {
        let got = tokio::select! {
            _ = st.shutdown.cancelled() => return,
            got = listener.try_recv() => got,
        };
        match got {
            Ok(Some(n)) => deliver(&st, n.payload()).await,
            lost => {
                if let Err(e) = lost {
                    tracing::warn!("fan-out listener failed: {e}");
                } else {
                    tracing::warn!("fan-out listener lost its connection");
                }
                st.fanout_up.store(false, Ordering::Release);
                st.hub.kill_all();
                listener = loop {
                    tokio::select! {
                        _ = st.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match listen(&url).await {
                        Ok(l) => break l,
                        Err(e) => tracing::warn!("fan-out listener cannot reconnect: {e}"),
                    }
                };
                // Sockets that slipped in before the flag fell go too.
                st.hub.kill_all();
                st.fanout_up.store(true, Ordering::Release);
                tracing::info!("fan-out listener is back");
            }
        }
    }
}

async fn deliver(st: &AppState, payload: &str) {
    let lagged = match parse(payload) {
        Some(Notice::Frame(thread, frame)) => st.hub.broadcast(thread, Utf8Bytes::from(frame)),
        Some(Notice::Read(thread, id)) => match st.db.get_message(id).await {
            Ok(Some(m)) => st
                .hub
                .broadcast(thread, text(ServerFrame::Message(wire_message(&m, true)))),
            // Deleted since: nothing to send.
            Ok(None) => 0,
            Err(e) => {
                // Its subscribers would have a gap: they reconnect instead.
                tracing::error!("cannot read a notified message: {e}");
                st.hub.kill_all();
                0
            }
        },
        Some(Notice::Everyone(made_at, frame)) => {
            st.hub.broadcast_all(Utf8Bytes::from(frame), made_at)
        }
        None => {
            tracing::warn!(len = payload.len(), "unreadable fan-out notice ignored");
            0
        }
    };
    st.stats.slow_closed.fetch_add(lagged, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0b0f7e4c-93a4-4f0e-9d6c-1c2b3a4d5e6f";

    fn rec(ciphertext_len: usize) -> MessageRecord {
        MessageRecord {
            id: "11111111-2222-4333-8444-555555555555".into(),
            thread_id: T.into(),
            ciphertext: "A".repeat(ciphertext_len),
            iv: "AAAAAAAAAAAAAAAA".into(),
            created_at: 1_700_000_000_000_000,
            client_message_id: Some("c1".into()),
        }
    }

    #[test]
    fn a_small_message_travels_as_its_frame() {
        let n = message_notice(&rec(400));
        let Some(Notice::Frame(t, frame)) = parse(&n) else {
            panic!("not a frame notice: {n}")
        };
        assert_eq!(t.to_string(), T);
        assert_eq!(
            frame,
            ServerFrame::Message(wire_message(&rec(400), true)).to_json()
        );
    }

    #[test]
    fn a_large_message_travels_as_its_id() {
        let n = message_notice(&rec(100_000));
        assert!(n.len() < 8_000);
        assert_eq!(
            parse(&n),
            Some(Notice::Read(
                ThreadId::parse(T).unwrap(),
                "11111111-2222-4333-8444-555555555555"
            ))
        );
    }

    #[test]
    fn a_notice_to_everyone_keeps_its_frame() {
        assert_eq!(
            parse("t 1700000000000001 {\"a\": 1}"),
            Some(Notice::Everyone(1_700_000_000_000_001, "{\"a\": 1}"))
        );
        assert_eq!(parse("t {\"a\": 1}"), None, "no time: unreadable");
    }

    #[test]
    fn garbage_is_no_notice() {
        for n in [
            "",
            "m",
            "m not-a-uuid {}",
            "x 0b0f7e4c-93a4-4f0e-9d6c-1c2b3a4d5e6f {}",
        ] {
            assert_eq!(parse(n), None, "{n:?}");
        }
    }
}
