//! `fanout-engines` (issue 19): the two engines a relay node could use to
//! tell the other nodes of a stored message, measured side by side in one
//! run on this machine: PostgreSQL's LISTEN/NOTIFY (the database the nodes
//! already share) and NATS (a `nats-server` this scenario starts).
//!
//! Each engine carries the same 320-byte notices from one connection to a
//! listener on another: first 2 000 at 1 000 a second (one-way latency),
//! then 20 000 as fast as the publisher can send them (throughput). A
//! notice is what a node would publish per stored message.
//!
//! Needs `HUSH_BENCH_PG` (or `HUSH_TEST_DATABASE_URL`): a PostgreSQL URL,
//! and `nats-server` on the PATH (Debian's package).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::scenarios::{Report, percentile};

const PACED: usize = 2_000;
const BURST: usize = 20_000;
const NOTICE: usize = 320;

/// One engine's figures.
struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    per_sec: f64,
}

pub(crate) fn fanout_engines() -> Report {
    let pg = std::env::var("HUSH_BENCH_PG")
        .or_else(|_| std::env::var("HUSH_TEST_DATABASE_URL"))
        .ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pg = match pg {
        Some(url) => rt.block_on(postgres(&url)),
        None => Err("set HUSH_BENCH_PG to a PostgreSQL URL".to_owned()),
    };
    let nats = match NatsServer::start() {
        Ok(server) => rt.block_on(nats(&server.url)),
        Err(e) => Err(e),
    };
    let show = |name: &str, f: &Result<Figures, String>| match f {
        Ok(f) => format!(
            "{name}: one-way p50 {:.3} ms, p99 {:.3} ms at 1 000/s; {:.0} notices/s flat out",
            f.p50_ms, f.p99_ms, f.per_sec
        ),
        Err(e) => format!("{name}: not measured ({e})"),
    };
    let js = |f: &Result<Figures, String>| match f {
        Ok(f) => json!({ "p50_ms": f.p50_ms, "p99_ms": f.p99_ms, "per_sec": f.per_sec }),
        Err(e) => json!({ "error": e }),
    };
    Report {
        summary: format!(
            "{NOTICE}-byte notices, one publisher, one listener: {}; {}",
            show("PostgreSQL NOTIFY", &pg),
            show("NATS", &nats)
        ),
        json: json!({ "postgres": js(&pg), "nats": js(&nats) }),
    }
}

/// A notice: its index, then padding to `NOTICE` bytes.
fn notice(i: usize) -> String {
    let mut s = format!("{i:08}");
    s.push_str(&"x".repeat(NOTICE - s.len()));
    s
}

fn index_of(payload: &[u8]) -> usize {
    std::str::from_utf8(&payload[..8])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Sends `n` notices (paced at 1 ms apart or not) through `publish` while a
/// listener task hands each arrival's index to `arrived`; returns the
/// one-way latencies (ms) and the whole run's rate.
async fn run_engine<P, F>(
    n: usize,
    paced: bool,
    mut publish: P,
    arrived: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, Instant)>,
) -> Result<(Vec<f64>, f64), String>
where
    P: FnMut(String) -> F,
    F: std::future::Future<Output = Result<(), String>>,
{
    while arrived.try_recv().is_ok() {}
    let mut sent = vec![Instant::now(); n];
    let t0 = Instant::now();
    let mut lat = Vec::with_capacity(n);
    let mut got = 0;
    for (i, at) in sent.iter_mut().enumerate() {
        if paced {
            let due = t0 + Duration::from_millis(i as u64);
            tokio::time::sleep_until(due.into()).await;
        }
        *at = Instant::now();
        publish(notice(i)).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, arrived.recv()).await {
            Ok(Some((i, when))) if i < n => {
                lat.push((when - sent[i]).as_secs_f64() * 1000.0);
                got += 1;
            }
            Ok(Some(_)) => {}
            _ => return Err(format!("{got} of {n} notices arrived")),
        }
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Ok((lat, rate))
}

fn figures(paced: (Vec<f64>, f64), burst: (Vec<f64>, f64)) -> Figures {
    Figures {
        p50_ms: percentile(&paced.0, 0.5),
        p99_ms: percentile(&paced.0, 0.99),
        per_sec: burst.1,
    }
}

async fn postgres(url: &str) -> Result<Figures, String> {
    use sqlx::Connection;
    let e = |e: sqlx::Error| e.to_string();
    let mut listener = sqlx::postgres::PgListener::connect(url).await.map_err(e)?;
    listener.listen("hush_bench").await.map_err(e)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        while let Ok(n) = listener.recv().await {
            let at = (index_of(n.payload().as_bytes()), Instant::now());
            if tx.send(at).is_err() {
                break;
            }
        }
    });
    let conn = std::sync::Arc::new(tokio::sync::Mutex::new(
        sqlx::PgConnection::connect(url).await.map_err(e)?,
    ));
    let publish = |p: String| {
        let conn = conn.clone();
        async move {
            sqlx::query("SELECT pg_notify('hush_bench', $1)")
                .bind(p)
                .execute(&mut *conn.lock().await)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    let paced = run_engine(PACED, true, publish, &mut rx).await;
    let burst = run_engine(BURST, false, publish, &mut rx).await;
    listening.abort();
    Ok(figures(paced?, burst?))
}

async fn nats(url: &str) -> Result<Figures, String> {
    let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
    let mut sub = client
        .subscribe("hush.bench")
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if tx.send((index_of(&m.payload), Instant::now())).is_err() {
                break;
            }
        }
    });
    let publish = |p: String| {
        let client = client.clone();
        async move {
            client
                .publish("hush.bench", p.into())
                .await
                .map_err(|e| e.to_string())?;
            // Sent now, as a node would after its commit (not batched
            // behind later ones).
            client.flush().await.map_err(|e| e.to_string())
        }
    };
    let paced = run_engine(PACED, true, publish, &mut rx).await;
    let burst = run_engine(BURST, false, publish, &mut rx).await;
    listening.abort();
    Ok(figures(paced?, burst?))
}

/// A `nats-server` on a free loopback port, stopped on drop.
struct NatsServer {
    child: Child,
    url: String,
}

impl NatsServer {
    fn start() -> Result<NatsServer, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err("nats-server did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
