//! A network that a test plays: no sockets, no HTTP, no waiting. Put a
//! [`ScriptedNet`] in [`NetConfig::scripted`](crate::NetConfig) and the
//! connection opens scripted sockets, and the [`Api`](crate::Api) hands its
//! requests here instead of to the platform. The test then opens the socket
//! (with the server's `/health`), injects frames, reads what was sent, drops
//! the socket, and answers HTTP requests, all between two `app.update()`s.
//!
//! This is the seam for fast, deterministic tests of the layers above the
//! transport; the system tests keep using a real relay over real sockets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender};
use hush_core::http::Health;
use hush_core::policy::connection::CloseKind;
use hush_core::wire::ServerFrame;

use crate::request::{ApiRequest, ApiResponse, ApiResult};
use crate::transport::{Outgoing, TransportEvent, TransportEventKind};

/// The scripted network, shared by the app (through its config) and the test.
#[derive(Clone, Default)]
pub struct ScriptedNet {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for ScriptedNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedNet")
    }
}

#[derive(Default)]
struct Inner {
    /// The newest socket attempt.
    socket: Option<Socket>,
    attempts: u64,
    requests: VecDeque<Pending>,
}

struct Socket {
    generation: u64,
    events: Sender<TransportEvent>,
    sent: Receiver<Outgoing>,
}

struct Pending {
    request: ApiRequest,
    done: Box<dyn FnOnce(ApiResult) + Send>,
}

impl ScriptedNet {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection opens a socket for attempt `generation`: what it
    /// sends goes into the returned channel.
    pub(crate) fn open_socket(
        &self,
        generation: u64,
        events: Sender<TransportEvent>,
    ) -> Sender<Outgoing> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut inner = self.lock();
        inner.attempts += 1;
        inner.socket = Some(Socket {
            generation,
            events,
            sent: rx,
        });
        tx
    }

    /// The API sends a request: it waits for [`ScriptedNet::answer`].
    pub(crate) fn request(&self, request: ApiRequest, done: Box<dyn FnOnce(ApiResult) + Send>) {
        self.lock().requests.push_back(Pending { request, done });
    }

    /// Socket attempts so far.
    pub fn attempts(&self) -> u64 {
        self.lock().attempts
    }

    /// The generation of the newest socket attempt, if any.
    pub fn socket_generation(&self) -> Option<u64> {
        self.lock().socket.as_ref().map(|s| s.generation)
    }

    fn event(&self, kind: TransportEventKind) -> bool {
        let inner = self.lock();
        let Some(s) = &inner.socket else { return false };
        s.events
            .send(TransportEvent {
                generation: s.generation,
                kind,
            })
            .is_ok()
    }

    /// The newest socket opens, on a server with this `/health`. Returns
    /// whether there was a socket to open.
    pub fn open(&self, health: Health) -> bool {
        self.event(TransportEventKind::Opened(health))
    }

    /// A frame arrives on the newest socket.
    pub fn frame(&self, frame: ServerFrame) -> bool {
        self.event(TransportEventKind::Frame(Ok(frame)))
    }

    /// The newest socket drops (reset, EOF: anything but a close frame).
    pub fn drop_socket(&self) -> bool {
        self.event(TransportEventKind::Closed(CloseKind::Error(
            "dropped by the test".into(),
        )))
    }

    /// The newest socket closes this way.
    pub fn close(&self, kind: CloseKind) -> bool {
        self.event(TransportEventKind::Closed(kind))
    }

    /// The text frames sent on the newest socket since the last call, as
    /// JSON values (pings included).
    pub fn sent(&self) -> Vec<serde_json::Value> {
        let inner = self.lock();
        let Some(s) = &inner.socket else {
            return Vec::new();
        };
        s.sent
            .try_iter()
            .filter_map(|o| match o {
                Outgoing::Text(t) => serde_json::from_str(&t).ok(),
                Outgoing::Close(..) => None,
            })
            .collect()
    }

    /// The paths of the requests waiting for an answer, oldest first
    /// (`GET /api/messages/…`).
    pub fn pending(&self) -> Vec<String> {
        self.lock()
            .requests
            .iter()
            .map(|p| format!("{:?} {}", p.request.method, p.request.path))
            .collect()
    }

    /// Answers every waiting request that `answer` has an answer for, in
    /// order; the rest keep waiting. Returns how many were answered. The
    /// answers reach the world on the next update.
    pub fn answer(&self, mut answer: impl FnMut(&ApiRequest) -> Option<ApiResult>) -> usize {
        let waiting: Vec<Pending> = self.lock().requests.drain(..).collect();
        let mut answered = 0;
        let mut keep = VecDeque::new();
        for p in waiting {
            match answer(&p.request) {
                Some(r) => {
                    (p.done)(r);
                    answered += 1;
                }
                None => keep.push_back(p),
            }
        }
        let mut inner = self.lock();
        // Requests made while answering go after those still waiting.
        keep.extend(inner.requests.drain(..));
        inner.requests = keep;
        answered
    }
}

/// A response with this status and JSON body.
pub fn reply(status: u16, body: serde_json::Value) -> ApiResult {
    Ok(ApiResponse {
        status,
        body: body.to_string(),
        retry_after: None,
    })
}
