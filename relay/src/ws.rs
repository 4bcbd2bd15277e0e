//! The WebSocket endpoint: subscriptions, sends with acknowledgement,
//! heartbeats, and refusals as `error` frames.
//!
//! Each connection has a reader (this task) and a writer task fed by a bounded
//! queue; broadcasts from other connections only ever `try_send` into it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hush_core::ThreadId;
use hush_core::wire::{ClientFrame, ErrorCode, MessageSent, OutgoingMessage, Refusal, ServerFrame};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::AppState;
use crate::db::{Inserted, MessageRecord};
use crate::hub::{ConnHandle, ConnId, Offer};
use crate::limits::Bucket;
use crate::messages::{finish_message, persist_failed, prepare_message, text};

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// `GET /ws`: the token comes as `?token=` or, [ext], as a bearer header.
pub async fn upgrade(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    st.stats.ws_upgrades.fetch_add(1, Ordering::Relaxed);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(crate::auth::bearer_token)
        .map(str::to_owned)
        .filter(|_| !st.config.stock);
    let token = bearer.or(q.token);
    let valid = token
        .as_deref()
        .is_some_and(|t| st.tokens.verify(t).is_ok());
    if st.config.stock && !valid {
        // A stock server refuses the upgrade itself: no close code to see.
        st.stats.ws_auth_failures.fetch_add(1, Ordering::Relaxed);
        return axum::http::StatusCode::FORBIDDEN.into_response();
    }
    if !st.fanout_up.load(Ordering::Acquire) {
        // It would miss other nodes' messages (`cluster`): try another.
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response();
    }
    let max = st.config.limits.max_frame;
    // Registered before the 101 goes out: a client that lists threads once
    // it is connected cannot miss a `thread_created` in between.
    let reg = valid.then(|| Registration::new(&st));
    // Frames over the limit get an error frame; only far larger ones (4×)
    // are cut off by the protocol layer.
    ws.max_message_size(max * 4)
        .max_frame_size(max * 4)
        .read_buffer_size(st.config.ws_buffer)
        .write_buffer_size(st.config.ws_buffer)
        .on_upgrade(move |socket| async move {
            if let Some(reg) = reg {
                serve(st, socket, addr, reg).await;
            } else {
                st.stats.ws_auth_failures.fetch_add(1, Ordering::Relaxed);
                tracing::info!(ip = %addr.ip(), "websocket refused: invalid token");
                refuse(socket).await;
            }
        })
}

/// Accept-then-close with 4001, so that browsers can see why.
async fn refuse(mut socket: WebSocket) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 4001,
            reason: Utf8Bytes::from_static("Invalid token"),
        })))
        .await;
    // Wait briefly for the client's close reply so the frame is not lost to a reset.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn invalid_utf8(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Utf8(_))
    )
}

/// Stores the messages a connection sent in one burst with one statement,
/// then broadcasts and acknowledges each in order.
async fn flush_sends(st: &AppState, pending: &mut Vec<MessageRecord>) -> Vec<ServerFrame> {
    if pending.is_empty() {
        return Vec::new();
    }
    let recs = std::mem::take(pending);
    match st.db.insert_messages(&recs, true).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .filter_map(|o| {
                finish_message(st, &o, true);
                ack(st, o)
            })
            .collect(),
        Err(e) => {
            tracing::error!("message insert failed: {e}");
            recs.iter()
                .map(|r| persist_failed(r).into_frame())
                .collect()
        }
    }
}

/// The [ext] acknowledgement of a stored message, if it has a client id.
fn ack(st: &AppState, outcome: Inserted) -> Option<ServerFrame> {
    let (Inserted::New(m) | Inserted::Duplicate(m)) = outcome;
    let thread_id = ThreadId::parse(&m.thread_id).ok()?;
    match m.client_message_id {
        Some(cmid) if !st.config.stock => Some(ServerFrame::MessageSent(MessageSent {
            id: m.id,
            thread_id,
            client_message_id: cmid,
            created_at: hush_core::time::format_ws(m.created_at),
        })),
        _ => None,
    }
}

/// What one text frame asks for: a message to store, or replies now.
enum Step {
    Send(MessageRecord),
    Reply(Vec<ServerFrame>),
}

/// Frames of one burst handled together (messages stored in one statement).
const BURST: usize = 256;

/// A connection in the hub, with its queue: unregistered when dropped, also
/// when the upgrade never completes.
struct Registration {
    st: Arc<AppState>,
    id: ConnId,
    handle: ConnHandle,
    rx: Option<mpsc::Receiver<Utf8Bytes>>,
}

impl Registration {
    fn new(st: &Arc<AppState>) -> Self {
        let (tx, rx) = mpsc::channel::<Utf8Bytes>(st.config.queue_len.max(16));
        let handle = ConnHandle {
            tx,
            kill: st.shutdown.child_token(),
            queued: Default::default(),
            max_bytes: st.config.queue_bytes.max(st.config.limits.max_frame * 2),
            since: st.next_time(),
        };
        Registration {
            st: st.clone(),
            id: st.hub.register(handle.clone()),
            handle,
            rx: Some(rx),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.handle.kill.cancel();
        self.st.hub.unregister(self.id, &HashSet::new());
    }
}

async fn serve(st: Arc<AppState>, socket: WebSocket, addr: SocketAddr, mut reg: Registration) {
    let (mut sink, mut stream) = socket.split();
    let mut rx = reg.rx.take().expect("a registration is served once");
    let handle = reg.handle.clone();
    let kill = handle.kill.clone();
    let id = reg.id;
    let heartbeat = st.config.heartbeat;
    let write_timeout = st.config.write_timeout;
    let wkill = kill.clone();
    let wh = handle.clone();
    let stock_dead = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wdead = stock_dead.clone();
    // The close frame the reader wants sent before the connection ends.
    let close_with: Arc<std::sync::Mutex<Option<CloseFrame>>> = Arc::default();
    let wclose = close_with.clone();
    let writer = tokio::spawn(async move {
        let mut hb = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        let beat = text(ServerFrame::Heartbeat);
        loop {
            // Every write gives up when the connection is killed (too slow,
            // shutdown) or when the peer takes longer than the write timeout:
            // a reader that stopped reading can never hold the writer.
            let wrote = tokio::select! {
                biased;
                _ = wkill.cancelled() => break,
                m = rx.recv() => {
                    let Some(first) = m else { break };
                    let write = async {
                        // Write what is queued in one go, then flush once.
                        let mut bytes = first.len();
                        let mut ok = sink.feed(Message::Text(first)).await.is_ok();
                        let mut n = 0;
                        while ok && n < 256 {
                            match rx.try_recv() {
                                Ok(more) => {
                                    bytes += more.len();
                                    ok = sink.feed(Message::Text(more)).await.is_ok();
                                }
                                Err(_) => break,
                            }
                            n += 1;
                        }
                        (ok && sink.flush().await.is_ok()).then_some(bytes)
                    };
                    tokio::select! {
                        _ = wkill.cancelled() => None,
                        r = tokio::time::timeout(write_timeout, write) => r.ok().flatten(),
                    }
                    .map(|bytes| wh.taken(bytes))
                }
                _ = hb.tick() => {
                    if wdead.load(std::sync::atomic::Ordering::Relaxed) {
                        continue;
                    }
                    tokio::select! {
                        _ = wkill.cancelled() => None,
                        r = tokio::time::timeout(write_timeout, sink.send(Message::Text(beat.clone()))) => {
                            r.ok().and_then(|r| r.ok())
                        }
                    }
                }
            };
            if wrote.is_none() {
                tracing::debug!(conn = id, "write failed or timed out; closing");
                break;
            }
        }
        wkill.cancel();
        let close = wclose.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(frame) = close {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                sink.send(Message::Close(Some(frame))),
            )
            .await;
        }
    });

    let mut subs: HashSet<ThreadId> = HashSet::new();
    let mut bucket = st.config.rate_limits.map(|r| Bucket::new(r.ws_messages));
    // A stock server stops serving a socket after a malformed frame without
    // closing it (and sends nothing more, heartbeats included).
    let mut dead = false;
    let mut pending: Vec<MessageRecord> = Vec::new();
    // A burst is broadcast at once: keep it well inside a subscriber's queue,
    // so that a reader that keeps up is never taken for a slow one.
    let burst_max = BURST.min(st.config.queue_len / 4).max(1);
    let burst_bytes = 2 * st.config.limits.max_frame;
    let mut burst = Vec::with_capacity(burst_max);
    let mut heard = false;
    'conn: loop {
        // A client that says nothing at all after the upgrade is closed.
        let silent = async {
            if heard {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(st.config.first_frame_timeout).await;
        };
        let first = tokio::select! {
            _ = kill.cancelled() => break,
            _ = silent => {
                tracing::debug!(conn = id, "no frame after the upgrade; closing");
                break;
            }
            m = stream.next() => m,
        };
        heard = true;
        // Whatever else already arrived is handled with it: a burst of sends
        // is stored with one statement (a stock server takes them one by one).
        // Bounded in bytes as well as in frames: a burst of the largest
        // frames is held whole (and decoded) until it is stored, and 256 of
        // them would be hundreds of megabytes.
        let mut bytes = frame_len(&first);
        burst.push(first);
        while !st.config.stock && burst.len() < burst_max && bytes < burst_bytes {
            match stream.next().now_or_never() {
                Some(m) => {
                    bytes += frame_len(&m);
                    burst.push(m);
                }
                None => break,
            }
        }
        let mut end = false;
        let mut out: Vec<ServerFrame> = Vec::new();
        for msg in burst.drain(..) {
            if end {
                break;
            }
            if dead {
                match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                        end = true;
                        continue;
                    }
                    _ => continue,
                }
            }
            let malformed = match &msg {
                Some(Ok(Message::Binary(_))) => true,
                Some(Ok(Message::Text(t))) => {
                    !t.as_str().trim_start().starts_with('{')
                        || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                            t.as_str(),
                        )
                        .is_err()
                }
                _ => false,
            };
            if st.config.stock && malformed {
                dead = true;
                stock_dead.store(true, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let reply = match msg {
                None | Some(Ok(Message::Close(_))) => {
                    end = true;
                    continue;
                }
                Some(Err(e)) => {
                    // A text frame that is not UTF-8 ends the connection
                    // with 1007, as RFC 6455 (and a stock server) says.
                    if invalid_utf8(e) {
                        *close_with.lock().unwrap_or_else(|p| p.into_inner()) = Some(CloseFrame {
                            code: 1007,
                            reason: Utf8Bytes::from_static("Invalid UTF-8 in a text frame"),
                        });
                    }
                    end = true;
                    continue;
                }
                Some(Ok(Message::Text(t))) => {
                    match handle_text(&st, id, &mut subs, bucket.as_mut(), t.as_str()).await {
                        Step::Send(rec) => {
                            pending.push(rec);
                            continue;
                        }
                        Step::Reply(r) => r,
                    }
                }
                Some(Ok(Message::Binary(_))) => vec![
                    Refusal::new(ErrorCode::InvalidRequest, "Binary frames are not supported")
                        .into_frame(),
                ],
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Vec::new(),
            };
            // Replies keep the order of the frames they answer.
            out.extend(flush_sends(&st, &mut pending).await);
            out.extend(reply);
        }
        out.extend(flush_sends(&st, &mut pending).await);
        for f in out {
            let f = if st.config.stock { stock_error(f) } else { f };
            // Never wait for a connection's own queue: one that both sends
            // and does not read is too slow like any other.
            if handle.offer(id, text(f)) != Offer::Queued {
                break 'conn;
            }
        }
        if end {
            break;
        }
    }
    kill.cancel();
    st.hub.unregister(id, &subs);
    drop(reg);
    let _ = writer.await;
    tracing::debug!(ip = %addr.ip(), conn = id, "websocket closed");
    crate::serve::trim_after_close();
}

/// The payload bytes of a read frame (what a burst holds of it).
fn frame_len(m: &Option<Result<Message, axum::Error>>) -> usize {
    match m {
        Some(Ok(Message::Text(t))) => t.len(),
        Some(Ok(Message::Binary(b))) => b.len(),
        _ => 0,
    }
}

async fn handle_text(
    st: &AppState,
    conn: u64,
    subs: &mut HashSet<ThreadId>,
    bucket: Option<&mut Bucket>,
    raw: &str,
) -> Step {
    let limits = st.config.limits;
    if raw.len() > limits.max_frame {
        return Step::Reply(vec![
            Refusal::new(
                ErrorCode::PayloadTooLarge,
                format!("Frame larger than {} bytes", limits.max_frame),
            )
            .into_frame(),
        ]);
    }
    let frame = match ClientFrame::parse(raw) {
        Ok(f) => f,
        Err(r) => return Step::Reply(vec![r.into_frame()]),
    };
    Step::Reply(match frame {
        ClientFrame::Ping => vec![ServerFrame::Pong],
        ClientFrame::Subscribe { thread_id } => {
            if !subs.contains(&thread_id) && subs.len() >= limits.max_subscriptions {
                let mut r = Refusal::new(
                    ErrorCode::SubscriptionLimit,
                    format!(
                        "At most {} subscriptions per connection",
                        limits.max_subscriptions
                    ),
                );
                r.thread_id = Some(thread_id.to_string());
                return Step::Reply(vec![r.into_frame()]);
            }
            subs.insert(thread_id);
            st.hub.subscribe(conn, thread_id);
            vec![ServerFrame::Subscribed { thread_id }]
        }
        ClientFrame::Unsubscribe { thread_id } => {
            subs.remove(&thread_id);
            st.hub.unsubscribe(conn, thread_id);
            vec![ServerFrame::Unsubscribed { thread_id }]
        }
        ClientFrame::Message(OutgoingMessage {
            thread_id,
            ciphertext,
            iv,
            client_message_id,
        }) => {
            if let Some(b) = bucket
                && let Err(wait) = b.take()
            {
                let mut r = Refusal::new(
                    ErrorCode::RateLimited,
                    format!("Too many messages; retry in {} ms", wait.as_millis().max(1)),
                );
                r.client_message_id = client_message_id;
                r.thread_id = Some(thread_id.to_string());
                return Step::Reply(vec![r.into_frame()]);
            }
            return match prepare_message(st, thread_id, ciphertext, iv, client_message_id).await {
                Ok(rec) => Step::Send(rec),
                Err(r) => Step::Reply(vec![r.into_frame()]),
            };
        }
    })
}

/// What a stock server sends for a refusal: the message alone.
fn stock_error(f: ServerFrame) -> ServerFrame {
    match f {
        ServerFrame::Error(e) => ServerFrame::Error(hush_core::wire::ErrorFrame {
            message: e.message,
            code: None,
            client_message_id: None,
            thread_id: None,
        }),
        other => other,
    }
}
