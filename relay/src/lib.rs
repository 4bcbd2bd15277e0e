//! hush-relay: a hush server that a stock hush web client cannot tell from the
//! original backend, plus the [ext] extensions of PROTOCOL.md, which it
//! advertises on `GET /health`.
//!
//! [`Relay::start`] runs it on the caller's tokio runtime; [`RelayThread`]
//! runs it on a runtime of its own, for tests and for the client's embedded
//! relay.

mod auth;
pub mod cli;
mod client_ip;
mod cluster;
mod db;
mod hub;
mod limits;
pub mod local;
mod messages;
mod proxy_protocol;
mod rest;
pub mod serve;
mod web;
mod ws;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use hush_core::ThreadId;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use zeroize::Zeroizing;

pub use auth::generate_words;
pub use db::DbError;
pub use limits::Rate;

use auth::{AuthGuard, Tokens, VaultSecret};
use db::Db;
use hub::Hub;
use limits::IpLimiter;

/// Where the relay keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// SQLite in memory: gone when the relay stops (tests only).
    Memory,
    /// SQLite file `relay.sqlite3` in this directory (created if missing).
    SqliteDir(PathBuf),
    /// Any sqlx URL, e.g. `postgres://user:pass@host/db`.
    Url(String),
}

/// Rate limits; `None` in [`RelayConfig::rate_limits`] turns them all off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Every `/api` route but `/api/auth`, per client address.
    pub http: Rate,
    /// `POST /api/auth`, per client address.
    pub auth: Rate,
    /// `message` frames, per WebSocket connection.
    pub ws_messages: Rate,
    /// [ext] `GET /api/messages/…` (history pages), per client address: its
    /// own bucket, so that a reconnecting client catching up neither meets
    /// 429s nor spends what the other routes need. A stock server counts
    /// history reads with every other route (`http`).
    pub history: Rate,
}

impl RateLimits {
    /// A stock server's limits (PROTOCOL.md §1): every route 60 a minute per
    /// address with a burst of 10, `/api/auth` 10 a minute with a burst of 3.
    /// It has no WebSocket message limit of its own that a client meets
    /// before these; the relay's default one stays.
    pub const STOCK: RateLimits = RateLimits {
        http: Rate::new(60.0, 10.0),
        auth: Rate::new(10.0, 3.0),
        ws_messages: Rate::new(12_000.0, 1_000.0),
        history: Rate::new(60.0, 10.0),
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            http: Rate::new(600.0, 120.0),
            // Generous: wrong words are stopped by the failure block, and
            // scripts that run `hush send` in a loop authenticate each time.
            auth: Rate::new(60.0, 20.0),
            ws_messages: Rate::new(12_000.0, 1_000.0),
            // 200 pages of up to `Limits::max_page` at once, 20 a second after.
            history: Rate::new(1_200.0, 200.0),
        }
    }
}

/// Size limits of PROTOCOL.md §2.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest decoded ciphertext, bytes.
    pub max_ciphertext: usize,
    /// Largest text frame, bytes; larger ones get a `payload_too_large` error.
    pub max_frame: usize,
    /// Most subscriptions of one connection.
    pub max_subscriptions: usize,
    /// [ext] The largest `limit` of a history page (a stock server's is
    /// [`MAX_PAGE`](hush_core::http::MAX_PAGE)).
    pub max_page: usize,
}

impl Limits {
    /// The limits for a largest decoded ciphertext of `max_ciphertext`
    /// bytes, with frames (and `/api` bodies) large enough to carry it.
    pub fn for_ciphertext(max_ciphertext: usize) -> Limits {
        Limits {
            max_ciphertext,
            // base64 (4/3) plus the frame's other fields.
            max_frame: max_ciphertext.div_ceil(3) * 4 + 64 * 1024,
            max_subscriptions: 500,
            max_page: hush_core::http::EXT_MAX_PAGE,
        }
    }
}

impl Default for Limits {
    /// 1 MiB of ciphertext: what stock clients send (a stock server has no
    /// limit; 100 KB messages are ordinary).
    fn default() -> Self {
        Limits::for_ciphertext(hush_core::http::DEFAULT_MAX_CIPHERTEXT)
    }
}

#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub storage: Storage,
    /// The words of a new vault; generated when `None` and the store is empty.
    pub words: Option<Zeroizing<String>>,
    /// The KDF salt (base64, 32 bytes) of a new vault; random when `None`.
    /// Set it to take over a vault from another server with its history.
    pub vault_salt: Option<String>,
    /// Interval of the server's `heartbeat` frame.
    pub heartbeat: Duration,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Failed `/api/auth` attempts from one address before it is blocked.
    pub auth_max_failures: u32,
    /// How long such a block lasts.
    pub auth_block: Duration,
    pub rate_limits: Option<RateLimits>,
    pub limits: Limits,
    /// A built web client to serve at `/`.
    pub web_dir: Option<PathBuf>,
    /// Serve HTTPS/WSS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Frames queued for one connection before it counts as too slow.
    pub queue_len: usize,
    /// Bytes queued for one connection before it counts as too slow (at
    /// least two of the largest frames).
    pub queue_bytes: usize,
    /// Bytes of each WebSocket's read buffer, and of frames gathered before
    /// a write: what an idle connection costs beyond its task (larger frames
    /// get room as they come). tungstenite's default is 128 KiB.
    pub ws_buffer: usize,
    /// A write to a connection that takes longer closes it.
    pub write_timeout: Duration,
    /// A WebSocket that sends nothing this long after the upgrade is closed.
    pub first_frame_timeout: Duration,
    /// A request whose headers take longer is dropped (slowloris).
    pub header_timeout: Duration,
    /// A request (headers and body) that takes longer is answered 408.
    pub request_timeout: Duration,
    /// Connections not yet upgraded to a WebSocket (plain HTTP, or not yet
    /// authenticated) open at once; more wait in the listen backlog.
    pub max_http_connections: usize,
    /// Behave like a stock hush server: no [ext] at all (no features on
    /// `/health`, no bearer header, a refused upgrade instead of 4001, no
    /// `message_sent`, no idempotency, no REST broadcast, uncorrelated errors,
    /// and a socket that goes silent after a malformed frame). For testing
    /// clients against the base protocol.
    pub stock: bool,
    /// A random id of this process, shown on `/health` (see `local`).
    pub instance: Option<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            storage: Storage::Memory,
            words: None,
            vault_salt: None,
            heartbeat: Duration::from_secs(30),
            token_ttl: Duration::from_secs(3600),
            auth_max_failures: 5,
            auth_block: Duration::from_secs(15 * 60),
            rate_limits: Some(RateLimits::default()),
            limits: Limits::default(),
            web_dir: None,
            tls: None,
            trusted_proxies: Vec::new(),
            queue_len: 16_384,
            queue_bytes: 8 << 20,
            ws_buffer: 8 << 10,
            write_timeout: Duration::from_secs(30),
            first_frame_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_http_connections: 512,
            stock: false,
            instance: None,
        }
    }
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("storage", &self.storage)
            .field("words", &self.words.as_ref().map(|_| "<redacted>"))
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

/// Counters a test or benchmark can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// WebSocket upgrade requests (good token or not).
    pub ws_upgrades: AtomicU64,
    /// Upgrades closed with 4001.
    pub ws_auth_failures: AtomicU64,
    /// Messages written (not counting idempotent resends).
    pub messages_stored: AtomicU64,
    /// Resends answered from the stored row.
    pub duplicate_sends: AtomicU64,
    /// Successful `/api/auth` and `/api/auth/refresh`.
    pub tokens_issued: AtomicU64,
    /// Failed `/api/auth`.
    pub auth_failures: AtomicU64,
    /// Connections closed because they could not keep up with broadcasts.
    pub slow_closed: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot start the relay runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot use the TLS certificate or key: {0}")]
    Tls(String),
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// rustls (with ring) for the relay's own TLS; HTTP/1.1 only, as the
/// WebSocket upgrade needs.
fn tls_acceptor(f: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, RelayError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let named = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        RelayError::Tls(format!("{}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&f.cert)
        .map_err(|e| named(&f.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(&f.cert, &e))?;
    if certs.is_empty() {
        return Err(named(&f.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&f.key).map_err(|e| named(&f.key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RelayError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| RelayError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub(crate) struct AppState {
    db: Db,
    tokens: Tokens,
    vault: VaultSecret,
    guard: AuthGuard,
    http_limiter: Option<IpLimiter>,
    history_limiter: Option<IpLimiter>,
    auth_limiter: Option<IpLimiter>,
    hub: Hub,
    config: RelayConfig,
    stats: Arc<Stats>,
    /// The last `created_at` handed out, µs: strictly increasing, so `after`
    /// cursors can never skip a message written in the same microsecond.
    clock: AtomicI64,
    known_threads: Mutex<HashSet<ThreadId>>,
    /// Whether this node hears every node's messages: always on SQLite; on
    /// PostgreSQL while its listener is connected (`cluster`). Sockets are
    /// refused while it is not.
    fanout_up: std::sync::atomic::AtomicBool,
    shutdown: CancellationToken,
}

impl AppState {
    fn next_time(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let prev = self
            .clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .expect("the closure always returns Some");
        now.max(prev + 1)
    }

    async fn thread_exists(&self, t: ThreadId) -> Result<bool, DbError> {
        if self
            .known_threads
            .lock()
            .expect("threads lock")
            .contains(&t)
        {
            return Ok(true);
        }
        let found = self.db.get_thread(&t.to_string()).await?.is_some();
        if found {
            self.known_threads.lock().expect("threads lock").insert(t);
        }
        Ok(found)
    }
}

/// A running relay.
pub struct Relay {
    pub addr: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// The words of a vault created by this start (show them once).
    pub new_words: Option<Zeroizing<String>>,
    state: Arc<AppState>,
    server: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Opens the store, creates the vault on first start, and listens.
    pub async fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let db = match &config.storage {
            Storage::Memory => Db::open_memory().await?,
            Storage::SqliteDir(dir) => Db::open_sqlite_dir(dir).await?,
            Storage::Url(url) => Db::open(url).await?,
        };
        let (vault, new_words) = match db.load_vault().await? {
            Some(v) => (v, None),
            None => {
                db.check_no_orphaned_history().await?;
                let given = config.words.is_some();
                let words = config.words.clone().unwrap_or_else(generate_words);
                let mut secret = VaultSecret::create(&words);
                if let Some(salt) = &config.vault_salt {
                    secret.kdf_salt = salt.clone();
                }
                let v = db.init_vault(secret).await?;
                // Another process may have won the race; only then are these
                // not the words. Words the operator gave are never shown back
                // (they would end up in service logs).
                let fresh = (!given && v.check_words(&words)).then_some(words);
                (v, fresh)
            }
        };
        let clock = db.max_created_at().await?;
        let listener = bind(config.listen).map_err(|e| RelayError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| RelayError::Bind(config.listen, e))?;
        let rl = config.rate_limits;
        let state = Arc::new(AppState {
            tokens: Tokens::new(&vault.jwt_secret, config.token_ttl),
            guard: AuthGuard::new(config.auth_max_failures, config.auth_block),
            http_limiter: rl.map(|r| IpLimiter::new(r.http)),
            auth_limiter: rl.map(|r| IpLimiter::new(r.auth)),
            history_limiter: rl.map(|r| IpLimiter::new(r.history)),
            hub: Hub::default(),
            stats: Arc::new(Stats::default()),
            clock: AtomicI64::new(clock),
            known_threads: Mutex::new(HashSet::new()),
            fanout_up: std::sync::atomic::AtomicBool::new(!db.fans_out_by_notice()),
            shutdown: CancellationToken::new(),
            db,
            vault,
            config,
        });
        if let Storage::Url(url) = &state.config.storage
            && state.db.fans_out_by_notice()
        {
            // Listening before the port opens: no socket misses a message.
            cluster::start(url, state.clone())
                .await
                .map_err(|e| RelayError::Db(DbError::Sql(e)))?;
        }
        let app = router(state.clone());
        let stop = state.shutdown.clone();
        let limits = serve::ServeLimits {
            header_timeout: state.config.header_timeout,
            max_http_connections: state.config.max_http_connections,
            trusted_proxies: Arc::new(state.config.trusted_proxies.clone()),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(serve::run(listener, app, limits, tls, stop));
        tracing::info!(%addr, scheme, "hush-relay listening");
        Ok(Relay {
            addr,
            scheme,
            new_words,
            state,
            server,
        })
    }

    /// `http://IP:PORT` (`https://` with TLS)
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.state.stats.clone()
    }

    /// The KDF salt clients derive the vault key with.
    pub fn kdf_salt(&self) -> &str {
        &self.state.vault.kdf_salt
    }

    /// Issues a token without the words (tests and benchmarks only).
    pub fn issue_token(&self) -> String {
        self.state.tokens.issue()
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.state.hub.connection_count()
    }

    /// Stops listening, drops every connection and closes the store.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.state.hub.kill_all();
        let _ = self.server.await;
        self.state.db.close().await;
    }

    /// Runs until Ctrl-C / SIGTERM, then shuts down.
    pub async fn run_until_signal(self) {
        self.run_until_signal_or_idle(None).await;
    }

    /// Runs until Ctrl-C / SIGTERM, or until no WebSocket connection was
    /// open for `idle` (when given), then shuts down.
    pub async fn run_until_signal_or_idle(self, idle: Option<Duration>) {
        let state = self.state.clone();
        let idle_for = async move {
            let Some(idle) = idle else {
                return std::future::pending::<()>().await;
            };
            // `since`: the last tick a client was seen. It may have left
            // just after it, so one tick more is waited: the relay stops
            // between `idle` and `idle` + 1 s after the last client left.
            let tick = Duration::from_secs(1);
            let mut since = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(tick).await;
                if state.hub.connection_count() > 0 {
                    since = tokio::time::Instant::now();
                } else if since.elapsed() >= idle + tick {
                    tracing::info!("no client for {} s; stopping", idle.as_secs());
                    return;
                }
            }
        };
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
                _ = idle_for => {}
            }
        }
        #[cfg(not(unix))]
        tokio::select! {
            _ = ctrl_c => {}
            _ = idle_for => {}
        }
        self.shutdown().await;
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted relay must get its port back while old sockets sit in TIME_WAIT.
    sock.set_reuseaddr(true)?;
    sock.set_nodelay(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/auth", post(rest::auth))
        .route("/auth/salt", get(rest::salt))
        .route("/auth/refresh", post(rest::refresh))
        .route(
            "/threads",
            post(rest::create_thread).get(rest::list_threads),
        )
        .route("/threads/query", post(rest::query_threads))
        .route(
            "/threads/{id}",
            get(rest::get_thread).delete(rest::delete_thread),
        )
        .route("/messages", post(rest::post_message))
        // One path shape: GET takes a thread id, DELETE a message id.
        .route(
            "/messages/{id}",
            get(rest::list_messages).delete(rest::delete_message),
        )
        .route("/messages/{id}/count", get(rest::count_messages))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.limits.max_frame,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rest::rate_limit,
        ))
        // A body that trickles in is not waited for forever.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        // As a stock server: API answers are never cached.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let mut app = Router::new()
        .route("/health", get(rest::health))
        .route("/ws", get(ws::upgrade))
        .nest("/api", api);
    if let Some(dir) = state.config.web_dir.clone() {
        // Also when the directory appears only later (a build after start).
        app = app.fallback_service(web::files(dir));
    }
    // A web client served from elsewhere (`?server=`) may call the API: the
    // bearer token, not cookies, is the credential, so any origin is fine.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any)
        .expose_headers([axum::http::header::RETRY_AFTER]);
    app.layer(cors)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // Outermost: every limit below sees the client, not its proxy.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.config.trusted_proxies.clone()),
            client_ip::resolve,
        ))
        .with_state(state)
}

/// A relay on a runtime of its own, in a background thread.
pub struct RelayThread {
    pub addr: SocketAddr,
    pub new_words: Option<Zeroizing<String>>,
    pub kdf_salt: String,
    stats: Arc<Stats>,
    token_for_tests: String,
    stop: Option<tokio::sync::oneshot::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RelayThread {
    pub fn spawn(config: RelayConfig) -> Result<RelayThread, RelayError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<bool>();
        let thread = std::thread::Builder::new()
            .name("hush-relay".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("hush-relay-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(RelayError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Relay::start(config).await {
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                        Ok(mut relay) => {
                            let info = (
                                relay.addr,
                                relay.new_words.take(),
                                relay.kdf_salt().to_owned(),
                                relay.stats(),
                                relay.issue_token(),
                            );
                            let _ = ready_tx.send(Ok(info));
                            let graceful = stop_rx.await.unwrap_or(true);
                            if graceful {
                                relay.shutdown().await;
                            }
                        }
                    }
                });
                // Dropping the runtime drops every remaining socket at once.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(RelayError::Runtime)?;
        let (addr, new_words, kdf_salt, stats, token) = ready_rx
            .recv()
            .map_err(|_| RelayError::Runtime(std::io::Error::other("relay thread died")))??;
        Ok(RelayThread {
            addr,
            new_words,
            kdf_salt,
            stats,
            token_for_tests: token,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A valid token issued at start (tests and benchmarks only).
    pub fn test_token(&self) -> &str {
        &self.token_for_tests
    }

    /// Stops the relay: closes connections and the store, frees the port.
    pub fn stop(mut self) {
        self.stop_inner(true);
    }

    /// Stops the relay like a crash: sockets dropped without close frames.
    pub fn kill(mut self) {
        self.stop_inner(false);
    }

    fn stop_inner(&mut self, graceful: bool) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(graceful);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RelayThread {
    fn drop(&mut self) {
        self.stop_inner(true);
    }
}

/// The platform data directory of hush: `$HUSH_DATA_DIR`, else
/// `$XDG_DATA_HOME/hush`, else `~/.local/share/hush`, else `./hush-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HUSH_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("hush");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/share/hush");
    }
    PathBuf::from("hush-data")
}
