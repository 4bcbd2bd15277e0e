//! Web platform: the browser's WebSocket (token as `?token=`, browsers cannot
//! set headers), fetch (through reqwest's wasm backend), the browser's event
//! loop for tasks, and its `online`/`offline` events.
//!
//! Browser objects are not `Send`; they live in a thread-local table keyed by
//! socket generation, and the world holds only the key.

use std::cell::RefCell;
use std::collections::HashMap;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use hush_core::http::Health;
use hush_core::policy::connection::CloseKind;
use hush_core::wire::{FrameParseError, ServerFrame};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::OpenParams;
use crate::config::NetConfig;
use crate::connection::NetworkStatus;
use crate::request::{ApiRequest, ApiResult, NetError};
use crate::transport::{Outgoing, TransportEvent, TransportEventKind};
use crate::wake::{Wake, WakingSender};

/// The browser's `online`/`offline` events, drained into [`NetworkStatus`].
#[derive(Resource)]
struct BrowserNetwork(Receiver<bool>);

/// Listens to the browser's network events.
pub fn add_runtime(app: &mut App) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let tx = app.world().resource::<Wake>().sender(tx);
    if let Some(window) = web_sys::window() {
        for (name, online) in [("online", true), ("offline", false)] {
            let tx = tx.clone();
            let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                let _ = tx.send(online);
            });
            let _ = window.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
            // Listens for the page's whole life.
            cb.forget();
        }
        if !window.navigator().on_line() {
            let _ = tx.send(false);
        }
    }
    app.insert_resource(BrowserNetwork(rx)).add_systems(
        PreUpdate,
        browser_network.in_set(crate::NetSystems::Receive),
    );
}

fn browser_network(net: Res<BrowserNetwork>, mut out: MessageWriter<NetworkStatus>) {
    while let Ok(online) = net.0.try_recv() {
        out.write(NetworkStatus { online });
    }
}

/// The platform's handles, a resource.
#[derive(Resource, Clone)]
pub struct Platform {
    pub http: HttpClient,
    /// Every result sent back into the world wakes the app loop.
    wake: Wake,
}

impl Platform {
    pub fn new(world: &World, _config: &NetConfig) -> Self {
        let wake = world.get_resource::<Wake>().cloned().unwrap_or_default();
        Platform {
            http: HttpClient {
                client: reqwest::Client::new(),
                wake: wake.clone(),
            },
            wake,
        }
    }

    /// Runs a future on the browser's event loop.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        wasm_bindgen_futures::spawn_local(fut);
    }

    /// The browser reports the network itself; nothing to probe.
    pub fn probe_route(&self, _config: &NetConfig, done: Box<dyn FnOnce(bool) + Send>) {
        done(false);
    }
}

/// HTTP through the browser's fetch.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    wake: Wake,
}

impl HttpClient {
    pub fn send(
        &self,
        config: &NetConfig,
        req: ApiRequest,
        done: Box<dyn FnOnce(ApiResult) + Send + 'static>,
    ) {
        let url = config.server.http(&req.path);
        let client = self.client.clone();
        let wake = self.wake.clone();
        wasm_bindgen_futures::spawn_local(async move {
            done(execute(&client, &url, req).await);
            wake.wake();
        });
    }
}

async fn execute(client: &reqwest::Client, url: &str, req: ApiRequest) -> ApiResult {
    // fetch hides why a request failed; treat it as the server being unreachable.
    super::execute_with(
        client,
        url,
        req,
        |_| NetError::Connect("the request failed".into()),
        |_| NetError::Other("the response body failed".into()),
    )
    .await
}

struct Live {
    ws: Option<WebSocket>,
    /// Frames written before the socket opened.
    queued: Vec<String>,
    open: bool,
    _handlers: Vec<Box<dyn std::any::Any>>,
}

thread_local! {
    static SOCKETS: RefCell<HashMap<u64, Live>> = RefCell::new(HashMap::new());
}

/// Closes a socket we no longer want: its handlers go first, so the browser
/// never calls into closures that are about to be dropped.
fn retire(ws: &WebSocket, code: u16, reason: &str) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
    // Browsers allow only 1000 and 3000–4999.
    let code = if code == 1000 || (3000..5000).contains(&code) {
        code
    } else {
        1000
    };
    let _ = ws.close_with_code_and_reason(code, reason);
}

/// The live socket's key; the browser object stays in a thread-local table.
pub struct SocketHandle {
    generation: u64,
}

impl SocketHandle {
    pub fn send(&self, o: Outgoing) -> bool {
        SOCKETS.with(|s| {
            let mut map = s.borrow_mut();
            let Some(live) = map.get_mut(&self.generation) else {
                return false;
            };
            match o {
                Outgoing::Text(t) => match (&live.ws, live.open) {
                    (Some(ws), true) => ws.send_with_str(&t).is_ok(),
                    _ => {
                        live.queued.push(t);
                        true
                    }
                },
                Outgoing::Close(code, reason) => {
                    if let Some(ws) = &live.ws {
                        retire(ws, code, reason);
                    }
                    map.remove(&self.generation);
                    true
                }
            }
        })
    }
}

impl Drop for SocketHandle {
    fn drop(&mut self) {
        // One live socket only: a dropped handle closes its socket.
        SOCKETS.with(|s| {
            if let Some(live) = s.borrow_mut().remove(&self.generation)
                && let Some(ws) = live.ws
            {
                retire(&ws, 1000, "Superseded");
            }
        });
    }
}

impl Platform {
    /// Starts a socket attempt. Its events carry `generation`.
    pub fn open_socket(&self, p: OpenParams, events: Sender<TransportEvent>) -> SocketHandle {
        let generation = p.generation;
        SOCKETS.with(|s| {
            s.borrow_mut().insert(
                generation,
                Live {
                    ws: None,
                    queued: Vec::new(),
                    open: false,
                    _handlers: Vec::new(),
                },
            )
        });
        wasm_bindgen_futures::spawn_local(connect(p, self.wake.sender(events)));
        SocketHandle { generation }
    }
}

async fn connect(p: OpenParams, events: WakingSender<TransportEvent>) {
    let generation = p.generation;
    let emit = move |events: &WakingSender<TransportEvent>, kind| {
        let _ = events.send(TransportEvent { generation, kind });
    };
    let known = p.health.lock().ok().and_then(|h| h.clone());
    let health = match known {
        Some(h) => h,
        None => {
            let url = p.config.server.http("/health");
            match execute(&p.http.client, &url, ApiRequest::get("/health")).await {
                Ok(resp) => {
                    let h: Health = serde_json::from_str(&resp.body).unwrap_or_default();
                    if let Ok(mut slot) = p.health.lock() {
                        *slot = Some(h.clone());
                    }
                    h
                }
                Err(e) => {
                    return emit(
                        &events,
                        TransportEventKind::Closed(CloseKind::Error(e.to_string())),
                    );
                }
            }
        }
    };
    // Superseded while fetching /health?
    if !SOCKETS.with(|s| s.borrow().contains_key(&generation)) {
        return;
    }
    let url = format!(
        "{}?token={}",
        p.config.server.ws(),
        hush_core::http::url_encode(&p.token)
    );
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            return emit(
                &events,
                TransportEventKind::Closed(CloseKind::Error("cannot open a WebSocket".into())),
            );
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let ev = events.clone();
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        SOCKETS.with(|s| {
            if let Some(live) = s.borrow_mut().get_mut(&generation) {
                live.open = true;
                if let Some(ws) = &live.ws {
                    for t in live.queued.drain(..) {
                        let _ = ws.send_with_str(&t);
                    }
                }
            }
        });
        emit(&ev, TransportEventKind::Opened(health.clone()));
    });
    let ev = events.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let kind = match e.data().as_string() {
            Some(text) => TransportEventKind::Frame(ServerFrame::parse(&text)),
            None => TransportEventKind::Frame(Err(FrameParseError::NotJson("binary frame".into()))),
        };
        emit(&ev, kind);
    });
    let ev = events.clone();
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
        // Not from inside this closure: removing the entry drops it.
        wasm_bindgen_futures::spawn_local(async move {
            SOCKETS.with(|s| s.borrow_mut().remove(&generation));
        });
        // A refused upgrade shows up as 1006 in a browser: no status to read.
        emit(
            &ev,
            TransportEventKind::Closed(CloseKind::Frame {
                code: e.code(),
                reason: e.reason(),
            }),
        );
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let kept = SOCKETS.with(|s| {
        let mut map = s.borrow_mut();
        match map.get_mut(&generation) {
            Some(live) => {
                live.ws = Some(ws.clone());
                live._handlers = vec![Box::new(on_open), Box::new(on_message), Box::new(on_close)];
                true
            }
            None => false,
        }
    });
    if !kept {
        retire(&ws, 1000, "Superseded");
    }
}
