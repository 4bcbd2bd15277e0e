//! The `hush-relay` command line, shared by the `hush-relay` binary and `hush relay`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{RateLimits, Relay, RelayConfig, Storage, default_data_dir};
use clap::Parser;

/// A hush server: the stock hush protocol plus compatible extensions.
#[derive(Parser, Debug)]
#[command(name = "hush-relay", version, about)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Directory of the embedded SQLite store (created if missing).
    /// Default: the hush data directory's `relay` folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of SQLite, e.g. postgres://user:pass@host/db.
    #[arg(long, env = "HUSH_DATABASE_URL")]
    database_url: Option<String>,
    /// Seconds between the server's heartbeat frames.
    #[arg(long, default_value_t = 30)]
    heartbeat_secs: u64,
    /// Lifetime of an access token, seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
    /// Failed unlocks from one address before it is blocked.
    #[arg(long, default_value_t = 5)]
    auth_max_failures: u32,
    /// How long such a block lasts, seconds.
    #[arg(long, default_value_t = 900)]
    auth_block_secs: u64,
    /// Turn every rate limit off (benchmarks).
    #[arg(long)]
    no_rate_limit: bool,
    /// Requests per minute per address on /api (burst: a fifth of it, at
    /// least 10). Default 600, or 60 with --stock.
    #[arg(long)]
    http_per_minute: Option<f64>,
    /// Behave like a stock hush server (no extensions, and its rate limits:
    /// 60 requests a minute per address with a burst of 10, /api/auth 10 a
    /// minute with a burst of 3), for client testing.
    #[arg(long)]
    stock: bool,
    /// A built web client to serve at / (default: web/dist, once it exists).
    #[arg(long)]
    web_dir: Option<PathBuf>,
    /// Largest message accepted, in bytes of decoded ciphertext (frames and
    /// request bodies are sized to carry it); advertised on /health.
    #[arg(long, default_value_t = hush_core::http::DEFAULT_MAX_CIPHERTEXT)]
    max_ciphertext_bytes: usize,
    /// Serve HTTPS and WSS with this certificate chain (PEM, leaf first);
    /// needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A reverse proxy (CIDR, repeatable) whose X-Forwarded-For or Forwarded
    /// header, or PROXY protocol header (v1 or v2, as HAProxy's send-proxy
    /// sends), names the client; from any other address they are ignored.
    #[arg(long, value_name = "CIDR")]
    trusted_proxy: Vec<ipnet::IpNet>,
    /// Stop after this many seconds without a WebSocket connection (the
    /// local relay that hush windows start for their data directory).
    #[arg(long)]
    exit_when_idle: Option<u64>,
    /// Print a line `ready` on stdout once started (after any new words), for
    /// the program that started this relay; nothing is printed after it.
    #[arg(long, hide = true)]
    ready_line: bool,
}

/// Parses `args` (program name first) and runs the relay until a signal.
pub fn run<I, T>(args: I)
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    // A descriptor per client: take all the system allows.
    let _ = crate::serve::raise_fd_limit();
    crate::serve::return_large_frees();
    crate::local::private_files();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUSH_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let storage = match (&cli.database_url, &cli.data_dir) {
        (Some(url), _) => Storage::Url(url.clone()),
        (None, Some(dir)) => Storage::SqliteDir(dir.clone()),
        (None, None) => Storage::SqliteDir(default_data_dir().join("relay")),
    };
    // One relay per SQLite directory: a second one would store into the same
    // database but never fan out to the first one's connections.
    let mut dir_lock = match &storage {
        Storage::SqliteDir(dir) => match crate::local::lock_dir(dir) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("hush-relay: {e}");
                std::process::exit(match e {
                    crate::local::LocalError::Busy(_) => BUSY_EXIT,
                    crate::local::LocalError::Io(..) => 1,
                });
            }
        },
        _ => None,
    };
    let instance = crate::local::new_instance_id();
    let words = std::env::var("HUSH_WORDS")
        .ok()
        .filter(|w| !w.trim().is_empty())
        .map(zeroize::Zeroizing::new);
    let config = RelayConfig {
        listen: cli.listen,
        storage,
        words,
        heartbeat: Duration::from_secs(cli.heartbeat_secs.max(1)),
        token_ttl: Duration::from_secs(cli.token_ttl_secs.max(1)),
        auth_max_failures: cli.auth_max_failures,
        auth_block: Duration::from_secs(cli.auth_block_secs),
        rate_limits: (!cli.no_rate_limit).then(|| {
            let base = if cli.stock {
                RateLimits::STOCK
            } else {
                RateLimits::default()
            };
            match cli.http_per_minute {
                Some(n) => RateLimits {
                    http: crate::Rate::new(n, (n / 5.0).max(10.0)),
                    ..base
                },
                None => base,
            }
        }),
        stock: cli.stock,
        trusted_proxies: cli.trusted_proxy,
        tls: match (cli.tls_cert, cli.tls_key) {
            (Some(cert), Some(key)) => Some(crate::TlsFiles { cert, key }),
            _ => None,
        },
        limits: crate::Limits::for_ciphertext(cli.max_ciphertext_bytes.max(1024)),
        instance: Some(instance.clone()),
        // Served once it exists, also when built after the relay started.
        web_dir: cli.web_dir.or_else(|| Some(PathBuf::from("web/dist"))),
        ..RelayConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let relay = match Relay::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("hush-relay: {e}");
                std::process::exit(1);
            }
        };
        // The first line on stdout is the address, so scripts can find the port.
        println!("listening on {}", relay.url());
        if let Some(lock) = &mut dir_lock {
            let record = crate::local::PortRecord {
                url: relay.url(),
                pid: std::process::id(),
                instance,
            };
            if let Err(e) = lock.publish(&record) {
                tracing::warn!("no port file, local clients will not find this relay: {e}");
            }
        }
        if let Some(w) = &relay.new_words {
            println!();
            println!("A new vault was created. Its 12 words are shown this once;");
            println!("write them down, everyone who should unlock it needs them:");
            println!();
            println!("    {}", w.as_str());
            println!();
        }
        if cli.ready_line {
            println!("ready");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        relay
            .run_until_signal_or_idle(cli.exit_when_idle.map(Duration::from_secs))
            .await;
        // The port file goes, and the lock is released, only once stopped.
        drop(dir_lock);
    });
}

/// The exit status when another relay already uses the data directory.
pub const BUSY_EXIT: i32 = 3;
