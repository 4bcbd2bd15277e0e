//! Who is connected and who listens to which thread; broadcast fan-out.
//!
//! Every connection has a queue bounded in frames and in bytes, drained by
//! its own writer task. A broadcast never waits on a subscriber: a connection
//! whose queue is full is too slow to keep up, so it is closed (it reconnects
//! and catches up over REST) instead of stalling the sender and everyone
//! else, or holding megabytes for a reader that does not read.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use hush_core::ThreadId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub type ConnId = u64;

/// A connection's queue and its kill switch.
#[derive(Clone)]
pub struct ConnHandle {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub kill: CancellationToken,
    /// Bytes queued and not yet written (the writer takes them off).
    pub queued: Arc<AtomicUsize>,
    /// More than this many bytes queued makes the connection too slow.
    pub max_bytes: usize,
    /// Relay time (µs) when it connected: news of a thread made before
    /// then is not news to it (see [`Hub::broadcast_all`]).
    pub since: i64,
}

impl ConnHandle {
    /// Queues `frame` unless that makes the connection too slow; then it is
    /// closed instead (once: later frames are dropped quietly).
    pub fn offer(&self, id: ConnId, frame: Utf8Bytes) -> Offer {
        if self.kill.is_cancelled() {
            return Offer::Closed;
        }
        let len = frame.len();
        let over = self.queued.load(Ordering::Acquire) + len > self.max_bytes;
        let sent = !over && self.tx.try_send(frame).is_ok();
        if sent {
            self.queued.fetch_add(len, Ordering::AcqRel);
            return Offer::Queued;
        }
        if self.tx.is_closed() {
            return Offer::Closed;
        }
        tracing::warn!(
            conn = id,
            queued_bytes = self.queued.load(Ordering::Acquire),
            "subscriber too slow; closing its connection"
        );
        self.kill.cancel();
        Offer::TooSlow
    }

    /// The writer took `len` bytes off the queue.
    pub fn taken(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::AcqRel);
    }
}

/// What became of a frame offered to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// It was closed now for being too slow.
    TooSlow,
    /// It was closed already.
    Closed,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, ConnHandle>,
    subs: HashMap<ThreadId, HashSet<ConnId>>,
}

#[derive(Default)]
pub struct Hub {
    next: AtomicU64,
    inner: Mutex<Inner>,
}

impl Hub {
    pub fn register(&self, h: ConnHandle) -> ConnId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.inner.lock().expect("hub lock").conns.insert(id, h);
        id
    }

    pub fn unregister(&self, id: ConnId, threads: &HashSet<ThreadId>) {
        let mut inner = self.inner.lock().expect("hub lock");
        inner.conns.remove(&id);
        for t in threads {
            if let Some(s) = inner.subs.get_mut(t) {
                s.remove(&id);
                if s.is_empty() {
                    inner.subs.remove(t);
                }
            }
        }
    }

    pub fn subscribe(&self, id: ConnId, t: ThreadId) {
        self.inner
            .lock()
            .expect("hub lock")
            .subs
            .entry(t)
            .or_default()
            .insert(id);
    }

    pub fn unsubscribe(&self, id: ConnId, t: ThreadId) {
        let mut inner = self.inner.lock().expect("hub lock");
        if let Some(s) = inner.subs.get_mut(&t) {
            s.remove(&id);
            if s.is_empty() {
                inner.subs.remove(&t);
            }
        }
    }

    /// Queues `frame` for every subscriber of `t`. Returns how many
    /// connections were closed for being too slow.
    pub fn broadcast(&self, t: ThreadId, frame: Utf8Bytes) -> u64 {
        let inner = self.inner.lock().expect("hub lock");
        let Some(subs) = inner.subs.get(&t) else {
            return 0;
        };
        let mut lagged = 0;
        for id in subs {
            let Some(h) = inner.conns.get(id) else {
                continue;
            };
            if h.offer(*id, frame.clone()) == Offer::TooSlow {
                lagged += 1;
            }
        }
        lagged
    }

    /// Queues `frame`, the news of something committed before relay time
    /// `made_at`, for every connection that was there then, subscribed or
    /// not: one made since finds it in its listing. (On PostgreSQL the news
    /// comes late, through a notice.) Returns how many were closed for
    /// being too slow.
    pub fn broadcast_all(&self, frame: Utf8Bytes, made_at: i64) -> u64 {
        let inner = self.inner.lock().expect("hub lock");
        let mut lagged = 0;
        for (id, h) in inner.conns.iter().filter(|(_, h)| h.since < made_at) {
            if h.offer(*id, frame.clone()) == Offer::TooSlow {
                lagged += 1;
            }
        }
        lagged
    }

    /// Closes every connection (shutdown).
    pub fn kill_all(&self) {
        for h in self.inner.lock().expect("hub lock").conns.values() {
            h.kill.cancel();
        }
    }

    pub fn connection_count(&self) -> usize {
        self.inner.lock().expect("hub lock").conns.len()
    }
}
