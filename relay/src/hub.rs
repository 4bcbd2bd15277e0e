//! Who is connected and who listens to which thread; broadcast fan-out.
//!
//! Every connection has a bounded queue drained by its own writer task. A
//! broadcast never waits on a subscriber: a connection whose queue is full is
//! too slow to keep up, so it is closed (it reconnects and catches up over
//! REST) instead of stalling the sender and everyone else.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
            match h.tx.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    lagged += 1;
                    tracing::warn!(conn = id, "subscriber too slow; closing its connection");
                    h.kill.cancel();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
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
