//! The accept loop, hardened for the open internet: hyper's connection
//! builder with a header-read timeout (a client that sends nothing, or half
//! a header, is dropped), a cap on connections that are not (yet) WebSockets,
//! and accept errors such as "too many open files" that pause the loop
//! instead of spinning it. WebSockets leave the cap once upgraded: they hold
//! a token, and the hub watches them (slow readers, silence). A connection
//! from a trusted proxy may start with a PROXY protocol header naming the
//! client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How to serve connections.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub max_http_connections: usize,
    /// Peers whose PROXY protocol header is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// Raises the open-file limit to the hard limit (a relay holds a descriptor
/// per client). Returns the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).ok()
    }
    #[cfg(not(unix))]
    None
}

/// Freed large buffers go back to the system. A message of the largest size
/// is a ~1.4 MB frame; glibc raises its mmap threshold after the first such
/// free, so later frames come from heap arenas it never trims, and one burst
/// (or one subscriber that stopped reading) would leave the relay's memory
/// high for good. A fixed threshold keeps them mmapped. Call it before any
/// thread starts.
pub fn return_large_frees() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, and no other thread
    // is allocating yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Hands the heap's free memory back to the system soon after a WebSocket
/// ends: what a connection's queues and frames held is freed into glibc's
/// arenas, which keep it (the relay's RSS stayed 16 MB over its start after
/// a subscriber that never read was closed). Closes within 200 ms of each
/// other share one `malloc_trim`, which runs off the async threads.
pub fn trim_after_close() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SCHEDULED: AtomicBool = AtomicBool::new(false);
        if SCHEDULED.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            SCHEDULED.store(false, Ordering::Release);
            // SAFETY: malloc_trim only returns free memory to the system.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        });
    }
}

/// Serves `app` on `listener` until `stop`, over TLS when `tls` is given
/// (the handshake has the header timeout too).
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_http_connections.max(1)));
    let mut last_error_log: Option<tokio::time::Instant> = None;
    loop {
        // Past the cap, new connections wait in the kernel's backlog.
        let slot = tokio::select! {
            _ = stop.cancelled() => break,
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: pause rather than spin, and say so
                // once a minute, not once a millisecond.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::error!("accept failed (pausing new connections briefly): {e}");
                    last_error_log = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let mut tcp = tcp;
            // hyper's header timeout starts at the first byte: a client that
            // sends nothing at all is dropped here instead.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(limits.header_timeout, tcp.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let mut addr = addr;
            if limits
                .trusted_proxies
                .iter()
                .any(|n| n.contains(&addr.ip()))
            {
                match tokio::time::timeout(
                    limits.header_timeout,
                    crate::proxy_protocol::read_header(&mut tcp),
                )
                .await
                {
                    Ok(Ok(Some(client))) => addr = client,
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(peer = %addr, "dropping a connection from a trusted proxy: {e}");
                        return;
                    }
                    Err(_) => return,
                }
            }
            let svc = app.map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                req
            });
            let svc = TowerToHyperService::new(svc);
            let io = match tls {
                None => Either::Left(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => Either::Right(stream),
                        // A failed or stalled handshake: nothing to answer.
                        _ => return,
                    }
                }
            };
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
            // An upgraded connection ends its HTTP part here and frees its slot.
            drop(slot);
        });
    }
}
