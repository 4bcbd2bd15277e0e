//! A TCP proxy that injects faults between a client and the relay: pass,
//! delay, black-hole (a half-open connection: bytes vanish, nothing closes),
//! cut after N bytes, or reset every connection. It can also write raw bytes
//! (hand-made WebSocket frames) into every upgraded connection towards the
//! client, to play a hostile or broken server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the proxy does with bytes from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    /// Hold each chunk this long before forwarding it.
    Delay(Duration),
    /// Hold each chunk of an HTTP reply this long; WebSocket traffic passes
    /// at once, so a live frame overtakes a reply asked for before it.
    DelayReplies(Duration),
    /// Read and drop everything, close nothing: a half-open connection.
    BlackHole,
    /// Forward client→server, drop server→client (lost acknowledgements).
    BlackHoleDown,
    /// Forward this many more bytes (both directions together), then reset.
    CutAfter(u64),
    /// Refuse new connections (accept, then reset at once).
    Refuse,
}

struct Shared {
    mode: Mutex<ProxyMode>,
    budget: AtomicU64,
    kill: Mutex<Vec<Arc<Notify>>>,
    accepted: AtomicU64,
    bytes: AtomicU64,
    /// Upgraded (101) connections, to inject server→client bytes into.
    injectors: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>>,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let shared = Arc::new(Shared {
            mode: Mutex::new(ProxyMode::Pass),
            budget: AtomicU64::new(0),
            kill: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            injectors: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(Notify::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
                    tx.send(listener.local_addr().expect("addr"))
                        .expect("report addr");
                    loop {
                        tokio::select! {
                            _ = st.notified() => break,
                            acc = listener.accept() => {
                                let Ok((client, _)) = acc else { continue };
                                tokio::spawn(serve(client, upstream, sh.clone()));
                            }
                        }
                    }
                    for k in sh.kill.lock().expect("lock").drain(..) {
                        k.notify_waiters();
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("proxy thread");
        let addr = rx.recv().expect("proxy address");
        FaultProxy {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, m: ProxyMode) {
        if let ProxyMode::CutAfter(n) = m {
            self.shared.budget.store(n, Ordering::SeqCst);
        }
        *self.shared.mode.lock().expect("lock") = m;
    }

    pub fn mode(&self) -> ProxyMode {
        *self.shared.mode.lock().expect("lock")
    }

    /// Resets every open connection (RST, no close frames).
    pub fn reset_all(&self) {
        for k in self.shared.kill.lock().expect("lock").drain(..) {
            k.notify_waiters();
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Writes `bytes` towards the client on every open WebSocket connection,
    /// between two reads from the server. Returns how many got them. Meant for
    /// an idle link: a server frame split across reads would be corrupted.
    pub fn inject_down(&self, bytes: &[u8]) -> usize {
        let mut inj = self.shared.injectors.lock().expect("lock");
        inj.retain(|tx| tx.send(bytes.to_vec()).is_ok());
        inj.len()
    }

    /// Bytes forwarded so far.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.notify_one();
        self.reset_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn abort(s: &TcpStream) {
    // Zero linger makes the close an RST: the peer sees a reset, not a FIN.
    let _ = socket2_linger_zero(s);
}

#[expect(
    deprecated,
    reason = "set_linger is the only way to an RST on tokio's stream"
)]
fn socket2_linger_zero(s: &TcpStream) -> std::io::Result<()> {
    s.set_linger(Some(Duration::ZERO))
}

async fn serve(client: TcpStream, upstream: SocketAddr, sh: Arc<Shared>) {
    sh.accepted.fetch_add(1, Ordering::SeqCst);
    if *sh.mode.lock().expect("lock") == ProxyMode::Refuse {
        abort(&client);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        abort(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    sh.kill.lock().expect("lock").push(kill.clone());
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (inject_tx, inject_rx) = tokio::sync::mpsc::unbounded_channel();
    let up = pump(&mut cr, &mut sw, &sh, false, None);
    let down = pump(&mut sr, &mut cw, &sh, true, Some((inject_tx, inject_rx)));
    tokio::select! {
        _ = kill.notified() => {}
        _ = up => {}
        _ = down => {}
    }
    // Reunite to reset both sides.
    if let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) {
        abort(&c);
        abort(&s);
    }
}

/// Where injected bytes come from, and the sender to register once upgraded.
type Injector = (
    tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
);

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    sh: &Shared,
    downstream: bool,
    mut inject: Option<Injector>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    let mut upgraded = false;
    loop {
        let read = async {
            match inject.as_mut() {
                Some((_, rx)) if !first => tokio::select! {
                    r = from.read(&mut buf) => Ok(r),
                    Some(extra) = rx.recv() => Err(extra),
                },
                _ => Ok(from.read(&mut buf).await),
            }
        };
        let n = match read.await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(extra) => {
                if to.write_all(&extra).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if std::mem::take(&mut first)
            && let Some((tx, _)) = &inject
            && buf[..n].starts_with(b"HTTP/1.1 101")
        {
            upgraded = true;
            sh.injectors.lock().expect("lock").push(tx.clone());
        }
        let mode = *sh.mode.lock().expect("lock");
        let mut chunk = &buf[..n];
        match mode {
            ProxyMode::Pass | ProxyMode::Refuse => {}
            ProxyMode::Delay(d) => tokio::time::sleep(d).await,
            ProxyMode::DelayReplies(d) if downstream && !upgraded => tokio::time::sleep(d).await,
            ProxyMode::DelayReplies(_) => {}
            ProxyMode::BlackHole => continue,
            ProxyMode::BlackHoleDown if downstream => continue,
            ProxyMode::BlackHoleDown => {}
            ProxyMode::CutAfter(_) => {
                let left = sh
                    .budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                        Some(b.saturating_sub(n as u64))
                    })
                    .unwrap_or(0);
                if left < n as u64 {
                    chunk = &buf[..left as usize];
                    let _ = to.write_all(chunk).await;
                    sh.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    return;
                }
            }
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
        sh.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
}
