//! Native platform: a tokio runtime (from `bevy_tokio_tasks`), WebSockets via
//! tokio-tungstenite, HTTP via reqwest, TLS via native-tls.

use std::io;
use std::time::Duration;

use bevy::prelude::*;
use bevy_tokio_tasks::{TokioTasksPlugin, TokioTasksRuntime};
use crossbeam_channel::Sender;
use futures_util::{SinkExt, StreamExt};
use hush_core::http::{Health, features};
use hush_core::policy::connection::CloseKind;
use hush_core::wire::ServerFrame;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::OpenParams;
use crate::config::NetConfig;
use crate::request::{ApiRequest, ApiResult, NetError};
use crate::transport::{Outgoing, TransportEvent, TransportEventKind};
use crate::wake::{Wake, WakingSender};

/// Installs the runtime the platform code runs on.
pub fn add_runtime(app: &mut App) {
    if !app.world().contains_resource::<TokioTasksRuntime>() {
        app.add_plugins(TokioTasksPlugin {
            make_runtime: Box::new(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("hush-net")
                    .enable_all()
                    .build()
                    .expect("the network runtime starts")
            }),
            ..TokioTasksPlugin::default()
        });
    }
}

/// The platform's handles, a resource: the runtime tasks run on, and HTTP.
#[derive(Resource, Clone)]
pub struct Platform {
    rt: tokio::runtime::Handle,
    pub http: HttpClient,
    /// Every result sent back into the world wakes the app loop.
    wake: Wake,
}

impl Platform {
    /// Builds the platform once the runtime exists (see [`add_runtime`]).
    pub fn new(world: &World, config: &NetConfig) -> Self {
        let rt = world
            .resource::<TokioTasksRuntime>()
            .runtime()
            .handle()
            .clone();
        let wake = world.get_resource::<Wake>().cloned().unwrap_or_default();
        Platform {
            http: HttpClient::new(rt.clone(), config, wake.clone()),
            rt,
            wake,
        }
    }

    /// Runs a future on the platform's runtime, detached.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.rt.spawn(fut);
    }
}

fn tls_connector(config: &NetConfig) -> Result<native_tls::TlsConnector, String> {
    let mut b = native_tls::TlsConnector::builder();
    if let Some(pem) = &config.ca_cert_pem {
        let cert = native_tls::Certificate::from_pem(pem)
            .map_err(|e| format!("bad CA certificate: {e}"))?;
        b.add_root_certificate(cert);
    }
    b.build().map_err(|e| format!("TLS setup failed: {e}"))
}

/// The HTTP client and the runtime it runs on.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    rt: tokio::runtime::Handle,
    wake: Wake,
}

impl HttpClient {
    fn new(rt: tokio::runtime::Handle, config: &NetConfig, wake: Wake) -> Self {
        let mut b = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.policy.connect_timeout)
            .tcp_nodelay(true);
        if let Some(pem) = &config.ca_cert_pem {
            match reqwest::Certificate::from_pem(pem) {
                Ok(c) => b = b.add_root_certificate(c),
                Err(e) => tracing::error!("ignoring a bad CA certificate: {e}"),
            }
        }
        HttpClient {
            client: b.build().expect("the HTTP client builds"),
            rt,
            wake,
        }
    }

    pub fn send(
        &self,
        config: &NetConfig,
        req: ApiRequest,
        done: Box<dyn FnOnce(ApiResult) + Send + 'static>,
    ) {
        let url = config.server.http(&req.path);
        let client = self.client.clone();
        let wake = self.wake.clone();
        self.rt.spawn(async move {
            done(execute(&client, &url, req).await);
            wake.wake();
        });
    }
}

async fn execute(client: &reqwest::Client, url: &str, req: ApiRequest) -> ApiResult {
    super::execute_with(client, url, req, map_reqwest, map_reqwest).await
}

fn io_kind_in(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// Every message of an error's chain, lowercased.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(": ")
}

fn unreachable_kind(k: io::ErrorKind) -> bool {
    matches!(
        k,
        io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkDown
    )
}

fn map_reqwest(e: reqwest::Error) -> NetError {
    // reqwest's Display includes the URL; keep only what went wrong.
    let e = e.without_url();
    if e.is_timeout() {
        return NetError::Timeout;
    }
    // The words a person can act on: the name does not resolve, or TLS
    // refused the server (an unknown CA, a wrong name).
    let chain = error_chain(&e);
    if chain.contains("dns error") || chain.contains("lookup address") {
        return NetError::Connect("no such host".into());
    }
    if chain.contains("certificate") || chain.contains("tls") || chain.contains("ssl") {
        let inner = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .last()
            .map(|e| e.to_string())
            .unwrap_or_default();
        return NetError::Connect(format!("TLS refused: {inner}"));
    }
    match io_kind_in(&e) {
        Some(k) if unreachable_kind(k) => NetError::Unreachable(format!("{k}")),
        Some(k) if e.is_connect() => NetError::Connect(format!("{k}")),
        _ if e.is_connect() => NetError::Connect("could not connect".into()),
        _ => NetError::Other(e.to_string()),
    }
}

/// The live socket's outgoing queue.
pub struct SocketHandle {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl SocketHandle {
    /// Queues a frame; it leaves as soon as the socket task wakes (no polling).
    pub fn send(&self, o: Outgoing) -> bool {
        self.tx.send(o).is_ok()
    }
}

impl Platform {
    /// Starts a socket task for one attempt. Its events carry `generation`.
    pub fn open_socket(&self, p: OpenParams, events: Sender<TransportEvent>) -> SocketHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        self.rt.spawn(run_socket(p, self.wake.sender(events), rx));
        SocketHandle { tx }
    }

    /// Checks whether the server's address is routable without sending
    /// anything (a UDP "connect" only consults the routing table).
    pub fn probe_route(&self, config: &NetConfig, done: Box<dyn FnOnce(bool) + Send>) {
        let authority = config.server.authority();
        let wake = self.wake.clone();
        self.rt.spawn_blocking(move || {
            use std::net::{ToSocketAddrs, UdpSocket};
            let ok = authority
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|addr| {
                    let local = if addr.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    UdpSocket::bind(local).and_then(|s| s.connect(addr)).is_ok()
                });
            done(ok);
            wake.wake();
        });
    }
}

async fn fetch_health(p: &OpenParams) -> Result<Health, CloseKind> {
    if let Some(h) = p.health.lock().expect("health lock").clone() {
        return Ok(h);
    }
    let url = p.config.server.http("/health");
    let resp = execute(&p.http.client, &url, ApiRequest::get("/health"))
        .await
        .map_err(|e| match e {
            NetError::Unreachable(m) => CloseKind::Unreachable(m),
            other => CloseKind::Error(other.to_string()),
        })?;
    // A server without /health (or with an odd one) gets the base protocol.
    let h: Health = serde_json::from_str(&resp.body).unwrap_or_default();
    *p.health.lock().expect("health lock") = Some(h.clone());
    Ok(h)
}

async fn run_socket(
    p: OpenParams,
    events: WakingSender<TransportEvent>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let generation = p.generation;
    let emit = |kind| {
        let _ = events.send(TransportEvent { generation, kind });
    };
    let health = match fetch_health(&p).await {
        Ok(h) => h,
        Err(kind) => return emit(TransportEventKind::Closed(kind)),
    };
    let bearer = health.has(features::BEARER_HEADER);
    let url = if bearer {
        p.config.server.ws()
    } else {
        // A stock server only takes the query parameter.
        format!(
            "{}?token={}",
            p.config.server.ws(),
            hush_core::http::url_encode(&p.token)
        )
    };
    let mut req = match url.into_client_request() {
        Ok(r) => r,
        Err(_) => {
            return emit(TransportEventKind::Closed(CloseKind::Error(
                "invalid server URL".into(),
            )));
        }
    };
    if bearer {
        match format!("Bearer {}", p.token.as_str()).parse() {
            Ok(v) => {
                req.headers_mut().insert("Authorization", v);
            }
            Err(_) => {
                return emit(TransportEventKind::Closed(CloseKind::Error(
                    "token is not a valid header value".into(),
                )));
            }
        }
    }
    let connector = if p.config.server.is_tls() {
        match tls_connector(&p.config) {
            Ok(c) => Some(tokio_tungstenite::Connector::NativeTls(c)),
            Err(e) => return emit(TransportEventKind::Closed(CloseKind::Error(e))),
        }
    } else {
        None
    };
    let ws_config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let connected =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(ws_config), true, connector)
            .await;
    let ws = match connected {
        Ok((ws, _)) => ws,
        Err(e) => return emit(TransportEventKind::Closed(map_ws_error(&e))),
    };
    emit(TransportEventKind::Opened(health));
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outgoing::Text(t)) => {
                    if let Err(e) = sink.send(Message::text(t)).await {
                        emit(TransportEventKind::Closed(map_ws_error(&e)));
                        return;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                // The world dropped the handle: this socket is no longer wanted.
                None => return,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    emit(TransportEventKind::Frame(ServerFrame::parse(t.as_str())));
                }
                Some(Ok(Message::Binary(_))) => {
                    emit(TransportEventKind::Frame(Err(hush_core::wire::FrameParseError::NotJson(
                        "binary frame".into(),
                    ))));
                }
                Some(Ok(Message::Close(f))) => {
                    let kind = match f {
                        Some(f) => CloseKind::Frame { code: f.code.into(), reason: f.reason.to_string() },
                        None => CloseKind::Frame { code: 1005, reason: String::new() },
                    };
                    emit(TransportEventKind::Closed(kind));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    emit(TransportEventKind::Closed(map_ws_error(&e)));
                    return;
                }
                None => {
                    emit(TransportEventKind::Closed(CloseKind::Error("connection closed".into())));
                    return;
                }
            }
        }
    }
}

fn map_ws_error(e: &tungstenite::Error) -> CloseKind {
    match e {
        tungstenite::Error::Http(resp) => CloseKind::HandshakeStatus(resp.status().as_u16()),
        tungstenite::Error::Io(io) if unreachable_kind(io.kind()) => {
            CloseKind::Unreachable(io.kind().to_string())
        }
        tungstenite::Error::Io(io) => CloseKind::Error(io.kind().to_string()),
        tungstenite::Error::Tls(t) => CloseKind::Error(format!("TLS: {t}")),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            CloseKind::Error("connection closed".into())
        }
        tungstenite::Error::Protocol(p) => CloseKind::Error(format!("protocol: {p}")),
        other => CloseKind::Error(kind_name(other).to_string()),
    }
}

fn kind_name(e: &tungstenite::Error) -> &'static str {
    match e {
        tungstenite::Error::Capacity(_) => "frame too large",
        tungstenite::Error::Url(_) => "invalid URL",
        tungstenite::Error::Utf8(_) => "invalid UTF-8",
        _ => "websocket error",
    }
}
