//! The connection lifecycle as a Bevy plugin: one live socket at a time,
//! reconnect with backoff, heartbeat, auth-failure handling, online/offline.
//!
//! The decisions are [`ConnectionMachine`]'s (pure, in `hush_core`); these
//! systems feed it intents, transport events and the clock, and carry out the
//! [`Action`]s it returns. Every socket attempt has a generation; events of
//! an older one are dropped here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use hush_core::http::Health;
use hush_core::policy::connection::{Action, ConnState, ConnectionMachine};
use hush_core::wire::{ClientFrame, ServerFrame};

use crate::NetSystems;
use crate::config::NetConfig;
use crate::platform::{OpenParams, Platform, SocketHandle};
use crate::session::{Session, SessionEvent, TokenNeeded};
use crate::transport::{Outgoing, TransportEvent, TransportEventKind};
use crate::wake::NextUpdate;

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<ConnectionIntent>()
        .add_message::<ConnectionChanged>()
        .add_message::<FrameReceived>()
        .add_message::<SendFrame>()
        .add_message::<NetworkStatus>()
        .add_message::<SetServer>()
        .add_systems(PreUpdate, drain_transport.in_set(NetSystems::Receive))
        .add_systems(
            Update,
            (
                apply_server_change,
                apply_intents,
                tick_connection,
                probe_network,
                report_state,
            )
                .chain()
                .in_set(NetSystems::Connection),
        )
        .add_systems(PostUpdate, send_frames.in_set(NetSystems::Send));
}

/// What the user or app wants of the connection.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionIntent {
    Connect,
    Disconnect,
    /// Skip the backoff wait.
    RetryNow,
    /// Send a ping now, to measure the round trip (the details panel,
    /// `hush status`); otherwise one goes every heartbeat interval.
    MeasureRoundTrip,
}

/// Use other servers from the next connection on (the current one, if
/// any, is closed first; the first of the list is tried first).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SetServer(pub crate::config::ServerList);

/// The platform's view of the network (browser events, an explicit signal).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkStatus {
    pub online: bool,
}

/// The connection state changed (the UI and tests read this or [`Connection`]).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct ConnectionChanged {
    pub state: ConnState,
    /// The socket generation this state belongs to.
    pub generation: u64,
}

/// A frame from the live socket.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct FrameReceived(pub ServerFrame);

/// A frame for the live socket; dropped when not connected (the outbox and
/// subscriptions resend on the next connection).
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SendFrame(pub ClientFrame);

/// Counters for tests, benchmarks and the UI.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Sockets opened (attempts that reached the server and upgraded).
    pub opened: u64,
    /// Socket attempts started.
    pub attempts: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames that were not valid server frames (skipped).
    pub malformed_in: u64,
    /// Events of stale generations that were dropped.
    pub stale_events: u64,
}

/// How the connection has been doing, for the details panel and `hush
/// status`. Times are the app's (virtual) clock.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConnectionDetails {
    /// The round trip of the last ping answered.
    pub rtt: Option<Duration>,
    /// When the ping waiting for its pong went out: a real instant, as the
    /// app's clock in a window that slept may still read the time before
    /// the sleep.
    ping_sent: Option<web_time::Instant>,
    /// When sockets opened, over the last day.
    opened: std::collections::VecDeque<Duration>,
    /// Why the last live connection ended, and when.
    pub last_disconnect: Option<(String, web_time::Instant)>,
}

impl ConnectionDetails {
    /// Connections opened again over the day before `now` (the first one
    /// of a run is no reconnect).
    pub fn reconnects_in_day(&self, now: Duration) -> usize {
        let since = now.saturating_sub(DAY);
        let n = self.opened.iter().filter(|t| **t >= since).count();
        if self.opened.len() > n {
            n
        } else {
            n.saturating_sub(1)
        }
    }

    fn opened(&mut self, now: Duration) {
        self.opened.push_back(now);
        // The first stays (it tells the first apart); older ones go.
        while self.opened.len() > 2 && self.opened[1] < now.saturating_sub(DAY) {
            self.opened.remove(1);
        }
        self.ping_sent = None;
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The connection, a resource.
#[derive(Resource)]
pub struct Connection {
    machine: ConnectionMachine,
    socket: Option<(u64, Socket)>,
    health: Arc<Mutex<Option<Health>>>,
    /// `/health` of the server of the live connection: its [ext] features.
    pub server: Option<Health>,
    /// The message limit this server last advertised, kept while it is
    /// away (a draft over it stays refused offline); forgotten when the
    /// server changes.
    known_max_ciphertext: Option<usize>,
    /// Why the last attempt failed, in words, until one succeeds.
    pub last_failure: Option<String>,
    last_reported: Option<(ConnState, u64)>,
    /// The machine went offline because the network was unreachable (so
    /// this platform probes for its return); false for explicit signals.
    offline_inferred: bool,
    next_probe: Duration,
    pub details: ConnectionDetails,
    probe_tx: Sender<bool>,
    probe_rx: Receiver<bool>,
    events_tx: Sender<TransportEvent>,
    events_rx: Receiver<TransportEvent>,
    pub stats: ConnectionStats,
}

impl Connection {
    pub fn new(config: &NetConfig) -> Self {
        let seed = config.jitter_seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::getrandom(&mut b);
            u64::from_le_bytes(b)
        });
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let (probe_tx, probe_rx) = crossbeam_channel::unbounded();
        Connection {
            machine: ConnectionMachine::new(config.policy, seed),
            socket: None,
            health: Arc::default(),
            server: None,
            known_max_ciphertext: None,
            last_failure: None,
            last_reported: None,
            offline_inferred: false,
            next_probe: Duration::ZERO,
            details: ConnectionDetails::default(),
            probe_tx,
            probe_rx,
            events_tx,
            events_rx,
            stats: ConnectionStats::default(),
        }
    }

    pub fn state(&self) -> &ConnState {
        self.machine.state()
    }

    pub fn is_connected(&self) -> bool {
        self.machine.is_connected()
    }

    pub fn is_online(&self) -> bool {
        self.machine.is_online()
    }

    /// The generation of the current socket attempt; changes on every new one.
    pub fn generation(&self) -> u64 {
        self.machine.generation()
    }

    /// Virtual time of the last frame on the live socket.
    pub fn last_received(&self) -> Option<Duration> {
        self.machine.last_received()
    }

    /// A sender into the transport channel, to inject events in tests (a
    /// stale socket's late close, say).
    #[doc(hidden)]
    pub fn transport_sender(&self) -> Sender<TransportEvent> {
        self.events_tx.clone()
    }

    /// Sends raw text on the live socket, bypassing the frame types (tests
    /// of how servers treat malformed input). Returns whether it was queued.
    #[doc(hidden)]
    pub fn send_raw_for_tests(&self, text: &str) -> bool {
        match &self.socket {
            Some((g, h)) if *g == self.machine.generation() => {
                h.send(Outgoing::Text(text.to_owned()))
            }
            _ => false,
        }
    }

    /// The largest decoded ciphertext the server takes (PROTOCOL.md §2):
    /// as it advertises (or last advertised), or a generous default while
    /// it is not known.
    pub fn max_ciphertext(&self) -> usize {
        self.server
            .as_ref()
            .map(Health::max_ciphertext)
            .or(self.known_max_ciphertext)
            .unwrap_or(hush_core::http::DEFAULT_MAX_CIPHERTEXT)
    }

    /// The history page size to ask this server for ([`Health::max_page`]).
    pub fn max_page(&self) -> usize {
        self.server
            .as_ref()
            .map_or(hush_core::http::MAX_PAGE, Health::max_page)
    }

    /// Whether the server speaks this [ext] feature.
    pub fn server_has(&self, feature: &str) -> bool {
        self.server.as_ref().is_some_and(|h| h.has(feature))
    }
}

/// The connection and what carrying out the machine's decisions needs: every
/// system that feeds the machine takes this, and hands it the [`Action`]s.
#[derive(bevy::ecs::system::SystemParam)]
struct Driver<'w> {
    conn: ResMut<'w, Connection>,
    session: Res<'w, Session>,
    platform: Res<'w, Platform>,
    config: ResMut<'w, NetConfig>,
    api: ResMut<'w, crate::api::Api>,
    token_needed: MessageWriter<'w, TokenNeeded>,
}

impl Driver<'_> {
    fn run(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Open { generation } => self.open(generation),
                Action::Close {
                    generation,
                    code,
                    reason,
                } => {
                    if let Some((g, h)) = &self.conn.socket
                        && *g == generation
                    {
                        h.send(Outgoing::Close(code, reason));
                        self.conn.socket = None;
                        self.conn.server = None;
                    }
                }
                Action::SendPing { generation } => self.ping(generation),
                Action::NeedToken { stale } => {
                    self.token_needed.write(TokenNeeded { stale });
                }
            }
        }
    }

    fn ping(&mut self, generation: u64) {
        if let Some((g, h)) = &self.conn.socket
            && *g == generation
        {
            h.send(Outgoing::Text(ClientFrame::Ping.to_json()));
            self.conn.stats.frames_out += 1;
            // The round trip counts from the first ping not yet answered.
            self.conn
                .details
                .ping_sent
                .get_or_insert_with(web_time::Instant::now);
        }
    }

    fn open(&mut self, generation: u64) {
        // Dropping an older handle ends its task: one live socket only.
        self.conn.socket = None;
        self.conn.server = None;
        let Some(token) = self.session.token() else {
            // The machine believed in a token that is gone (a lock): ask again.
            self.conn.machine.forget_token();
            self.token_needed.write(TokenNeeded { stale: false });
            return;
        };
        self.conn.stats.attempts += 1;
        let events = self.conn.events_tx.clone();
        let socket = match &self.config.scripted {
            Some(net) => Socket::Scripted(net.open_socket(generation, events)),
            None => Socket::Platform(self.platform.open_socket(
                OpenParams {
                    config: self.config.clone(),
                    token: zeroize::Zeroizing::new(token.to_owned()),
                    generation,
                    health: self.conn.health.clone(),
                    http: self.platform.http.clone(),
                },
                events,
            )),
        };
        self.conn.socket = Some((generation, socket));
    }
}

/// The live socket's outgoing side: the platform's task, or a test's script.
enum Socket {
    Platform(SocketHandle),
    Scripted(Sender<Outgoing>),
}

impl Socket {
    fn send(&self, o: Outgoing) -> bool {
        match self {
            Socket::Platform(h) => h.send(o),
            Socket::Scripted(tx) => tx.send(o).is_ok(),
        }
    }
}

/// PreUpdate: socket events become machine inputs and typed frames.
fn drain_transport(mut driver: Driver, time: Res<Time>, mut frames: MessageWriter<FrameReceived>) {
    let now = time.elapsed();
    while let Ok(ev) = driver.conn.events_rx.try_recv() {
        let conn = &mut *driver.conn;
        let current = ev.generation == conn.machine.generation();
        let actions = match ev.kind {
            TransportEventKind::Opened(health) => {
                let a = conn.machine.opened(ev.generation, now);
                if current && conn.machine.is_connected() {
                    conn.stats.opened += 1;
                    conn.details.opened(now);
                    conn.known_max_ciphertext = Some(health.max_ciphertext());
                    conn.server = Some(health);
                    conn.last_failure = None;
                    tracing::info!(generation = ev.generation, "connected");
                } else {
                    conn.stats.stale_events += 1;
                }
                a
            }
            TransportEventKind::Frame(parsed) => {
                if !current {
                    conn.stats.stale_events += 1;
                    continue;
                }
                conn.machine.received(ev.generation, now);
                conn.stats.frames_in += 1;
                if matches!(parsed, Ok(ServerFrame::Pong))
                    && let Some(sent) = conn.details.ping_sent.take()
                {
                    conn.details.rtt = Some(sent.elapsed());
                }
                match parsed {
                    Ok(f) => {
                        frames.write(FrameReceived(f));
                    }
                    Err(e) => {
                        conn.stats.malformed_in += 1;
                        tracing::warn!("skipping a malformed frame from the server: {e}");
                    }
                }
                Vec::new()
            }
            TransportEventKind::Closed(kind) => {
                if !current {
                    conn.stats.stale_events += 1;
                }
                if conn
                    .socket
                    .as_ref()
                    .is_some_and(|(g, _)| *g == ev.generation)
                {
                    conn.socket = None;
                    conn.server = None;
                }
                if current {
                    tracing::info!(generation = ev.generation, ?kind, "socket closed");
                    if !kind.is_auth_rejection() {
                        // Every node serves every thread: the next attempt, after
                        // the usual backoff, goes to the next one.
                        fail_over(&mut driver.config, &mut driver.api, conn);
                    }
                    conn.last_failure = Some(describe_close(&kind));
                    if conn.machine.is_connected() {
                        conn.details.last_disconnect =
                            Some((describe_close(&kind), web_time::Instant::now()));
                    }
                    if matches!(
                        kind,
                        hush_core::policy::connection::CloseKind::Unreachable(_)
                    ) {
                        conn.offline_inferred = true;
                    }
                }
                conn.machine.closed(ev.generation, &kind, now)
            }
        };
        driver.run(actions);
    }
}

/// After a socket of `conn` closed: the next node of the list is used from
/// the next attempt on, for the socket and for REST (a catch-up there is the
/// same as after any reconnect). One node alone stays.
fn fail_over(config: &mut NetConfig, api: &mut crate::api::Api, conn: &mut Connection) {
    let next = config.servers.after(&config.server).clone();
    if next == config.server {
        return;
    }
    tracing::info!(server = %next, "trying the next server");
    use_server(config, api, conn, next);
}

fn use_server(
    config: &mut NetConfig,
    api: &mut crate::api::Api,
    conn: &mut Connection,
    url: crate::config::ServerUrl,
) {
    config.server = url.clone();
    api.config.server = url;
    conn.health = Arc::default();
    conn.server = None;
}

/// Update: new server URLs take effect for every later request.
fn apply_server_change(
    mut conn: ResMut<Connection>,
    mut config: ResMut<NetConfig>,
    mut api: ResMut<crate::api::Api>,
    mut changes: MessageReader<SetServer>,
    mut intents: MessageWriter<ConnectionIntent>,
) {
    for SetServer(list) in changes.read() {
        if *list == config.servers {
            continue;
        }
        tracing::info!(servers = %list, "servers changed");
        let was_wanted = conn.machine.wants_connection();
        if was_wanted {
            intents.write(ConnectionIntent::Disconnect);
        }
        config.servers = list.clone();
        api.config.servers = list.clone();
        use_server(&mut config, &mut api, &mut conn, list.first().clone());
        conn.known_max_ciphertext = None;
        if was_wanted {
            intents.write(ConnectionIntent::Connect);
        }
    }
}

/// Update: intents, network status and token news go to the machine.
fn apply_intents(
    mut driver: Driver,
    time: Res<Time>,
    mut intents: MessageReader<ConnectionIntent>,
    mut network: MessageReader<NetworkStatus>,
    mut session_events: MessageReader<SessionEvent>,
) {
    let now = time.elapsed();
    let conn = &mut *driver.conn;
    let mut actions = Vec::new();
    for n in network.read() {
        conn.offline_inferred = false;
        actions.extend(conn.machine.set_online(n.online, now));
    }
    for e in session_events.read() {
        match e {
            SessionEvent::Authenticated { .. } | SessionEvent::TokenRefreshed => {
                actions.extend(conn.machine.token_ready(now));
            }
            SessionEvent::Failed { error, fatal } => {
                if matches!(error, crate::session::SessionError::Network(_)) {
                    // The token comes from another node just as well.
                    fail_over(&mut driver.config, &mut driver.api, conn);
                }
                let why = fatal.then(|| error.to_string());
                actions.extend(conn.machine.token_failed(why, now));
            }
            SessionEvent::LoggedOut => conn.machine.forget_token(),
        }
    }
    let mut ping = false;
    for i in intents.read() {
        actions.extend(match i {
            ConnectionIntent::Connect => conn.machine.connect(now),
            ConnectionIntent::Disconnect => conn.machine.disconnect(),
            ConnectionIntent::RetryNow => conn.machine.retry_now(now),
            ConnectionIntent::MeasureRoundTrip => {
                ping = true;
                Vec::new()
            }
        });
    }
    driver.run(actions);
    if ping && driver.conn.is_connected() {
        let generation = driver.conn.generation();
        driver.ping(generation);
    }
}

/// Why an attempt ended, in words a person can act on.
pub fn describe_close(kind: &hush_core::policy::connection::CloseKind) -> String {
    use hush_core::policy::connection::CloseKind;
    match kind {
        CloseKind::Frame { code: 4001, .. } | CloseKind::HandshakeStatus(401 | 403) => {
            "sign-in refused".into()
        }
        CloseKind::Frame { code, reason } if reason.is_empty() => {
            format!("closed by the server (code {code})")
        }
        CloseKind::Frame { code, reason } => format!("closed by the server: {reason} ({code})"),
        CloseKind::HandshakeStatus(s) => format!("the server refused the connection (HTTP {s})"),
        CloseKind::Unreachable(_) => "offline: no route to the server".into(),
        CloseKind::Error(e) => e.clone(),
    }
}

/// Update: the machine's timers (backoff, connect timeout, heartbeat).
fn tick_connection(mut driver: Driver, time: Res<Time>, mut next: ResMut<NextUpdate>) {
    let actions = driver.conn.machine.tick(time.elapsed());
    driver.run(actions);
    let conn = &*driver.conn;
    if let Some(at) = conn.machine.next_deadline() {
        next.at(at, time.elapsed());
    }
    if conn.offline_inferred && !conn.is_online() {
        next.at(conn.next_probe, time.elapsed());
    }
}

/// Seconds between route probes while the network is unreachable.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Update: while offline because the network was unreachable, checks every
/// few seconds whether a route to the server exists again.
fn probe_network(
    mut conn: ResMut<Connection>,
    platform: Res<Platform>,
    config: Res<NetConfig>,
    time: Res<Time>,
    mut network: MessageWriter<NetworkStatus>,
) {
    while let Ok(up) = conn.probe_rx.try_recv() {
        if up && conn.offline_inferred && !conn.is_online() {
            tracing::info!("the network is back");
            conn.offline_inferred = false;
            network.write(NetworkStatus { online: true });
        }
    }
    let now = time.elapsed();
    if conn.offline_inferred && !conn.is_online() && now >= conn.next_probe {
        conn.next_probe = now + PROBE_EVERY;
        let tx = conn.probe_tx.clone();
        platform.probe_route(
            &config,
            Box::new(move |ok| {
                let _ = tx.send(ok);
            }),
        );
    }
}

/// Update: announces state changes.
fn report_state(mut conn: ResMut<Connection>, mut changed: MessageWriter<ConnectionChanged>) {
    let now = (conn.machine.state().clone(), conn.machine.generation());
    if conn.last_reported.as_ref() != Some(&now) {
        changed.write(ConnectionChanged {
            state: now.0.clone(),
            generation: now.1,
        });
        conn.last_reported = Some(now);
    }
}

/// PostUpdate: frames leave for the live socket.
fn send_frames(mut conn: ResMut<Connection>, mut frames: MessageReader<SendFrame>) {
    let conn = &mut *conn;
    let live = conn.machine.is_connected();
    for SendFrame(f) in frames.read() {
        match &conn.socket {
            Some((g, h)) if live && *g == conn.machine.generation() => {
                h.send(Outgoing::Text(f.to_json()));
                conn.stats.frames_out += 1;
            }
            _ => tracing::debug!("not connected; dropping an outgoing frame"),
        }
    }
}
