//! `history`: what a long local history costs (issue 18, point 3). The same
//! profile is opened in fresh processes with an empty thread and with a
//! 100 000-message one, offline (the unlock is the stored-salt Argon2id and
//! no server): the wall time and CPU (every thread) from the process's start
//! to the thread's last page shown, and the peak resident memory.
//!
//! The same-run baseline is what opening a thread did before history was
//! paged: reading and decrypting the whole thread, timed in the same child.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_chat::headless::Client;
use hush_chat::history::PAGE;
use hush_chat::threads::ThreadLog;
use hush_chat::{ChatMessage, ProfileStore, Threads, Vault};
use hush_store::{RedbStore, Store};
use serde_json::{Value, json};

use crate::cpu::client_cpu;
use crate::scenarios::{Report, percentile, words};

/// CPU seconds of this process, every thread, and its peak resident memory.
fn own_usage() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(u.ru_utime) + secs(u.ru_stime),
        u.ru_maxrss as f64 / 1024.0,
    )
}

/// Runs in a fresh process: opens the profile in `dir` and reports when the
/// thread's newest page is shown.
pub(crate) fn history_child(dir: &Path) -> String {
    let start = Instant::now();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.join("m.redb")).unwrap());
    let rec = store.threads().unwrap()[0].clone();
    let mut c = Client::new("http://127.0.0.1:9", store.clone(), None).unwrap();
    c.unlock(&words()).expect("offline unlock");
    let unlocked = start.elapsed();
    let shown = |c: &Client| {
        c.app
            .world()
            .resource::<Threads>()
            .entity(rec.id)
            .and_then(|e| c.app.world().get::<ThreadLog>(e))
            .is_some_and(|l| l.revision > 0)
    };
    while !shown(&c) {
        assert!(start.elapsed() < Duration::from_secs(120), "never shown");
        c.step();
    }
    let open = start.elapsed();
    let (cpu, peak_mib) = own_usage();
    let log = c
        .app
        .world()
        .get::<ThreadLog>(c.app.world().resource::<Threads>().entity(rec.id).unwrap());
    let loaded = log.map_or(0, |l| l.messages.len());
    let vault = c.app.world().resource::<Vault>();
    let key = vault.thread_key(&rec.peer).unwrap();
    let me = vault.my_id().unwrap();
    // Opening the thread: what its entity is spawned with (the newest page,
    // read and decrypted), timed on its own, median of 5.
    let mut opens: Vec<f64> = (0..5)
        .map(|_| {
            let s = Instant::now();
            let (msgs, _) =
                hush_chat::history::page(&ProfileStore(store.clone()), rec.id, &key, me, None)
                    .unwrap();
            assert_eq!(msgs.len(), loaded);
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    opens.sort_by(f64::total_cmp);
    // The baseline: the whole thread read and decrypted, as opening did.
    let s = Instant::now();
    let all: Vec<ChatMessage> = store
        .messages(rec.id, None, usize::MAX)
        .unwrap()
        .iter()
        .map(|m| ChatMessage::decrypt(&key, m, me))
        .collect();
    let whole_ms = s.elapsed().as_secs_f64() * 1000.0;
    json!({
        "open_ms": open.as_secs_f64() * 1000.0,
        "unlocked_ms": unlocked.as_secs_f64() * 1000.0,
        "thread_page_ms": percentile(&opens, 0.5),
        "cpu_s": cpu,
        "peak_rss_mib": peak_mib,
        "loaded": loaded,
        "stored": all.len(),
        "read_and_decrypt_all_ms": whole_ms,
    })
    .to_string()
}

fn child(dir: &Path) -> Value {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["history-child", dir.to_str().unwrap()])
        .output()
        .expect("child runs");
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_else(|_| {
        panic!(
            "history child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The memory scenario's writer, in its own process.
fn setup(dir: &Path, n: usize) {
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["memory-setup", dir.to_str().unwrap(), &n.to_string()])
        .status()
        .expect("set-up runs");
    assert!(st.success(), "set-up of {n} messages failed");
}

pub fn history(n: usize) -> Report {
    const RUNS: usize = 5;
    let empty = tempfile::tempdir().unwrap();
    let full = tempfile::tempdir().unwrap();
    setup(empty.path(), 0);
    setup(full.path(), n);
    // Alternate, so that both see the same machine.
    let (mut e, mut f) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        e.push(child(empty.path()));
        f.push(child(full.path()));
    }
    let median = |v: &[Value], k: &str| {
        let mut x: Vec<f64> = v.iter().filter_map(|r| r[k].as_f64()).collect();
        x.sort_by(f64::total_cmp);
        percentile(&x, 0.5)
    };
    let (ew, fw) = (median(&e, "open_ms"), median(&f, "open_ms"));
    let (ec, fc) = (median(&e, "cpu_s"), median(&f, "cpu_s"));
    let (er, fr) = (median(&e, "peak_rss_mib"), median(&f, "peak_rss_mib"));
    let thread_ms = median(&f, "thread_page_ms");
    let whole_ms = median(&f, "read_and_decrypt_all_ms");
    let wall_ratio = fw / ew;
    let loaded = f[0]["loaded"].as_u64().unwrap_or(0);
    let stored = f[0]["stored"].as_u64().unwrap_or(0);
    assert_eq!(stored, n as u64, "the thread holds every message");
    let met = |b: bool| if b { "met" } else { "MISSED" };
    Report {
        summary: format!(
            "open to the last page shown, median of {RUNS} fresh processes: empty {ew:.0} ms, {n} stored \
             {fw:.0} ms (ratio {wall_ratio:.2}; target ≤1.20: {}); CPU {ec:.3} vs {fc:.3} s (ratio {:.2}); \
             peak RSS {er:.1} vs {fr:.1} MiB; opening the thread reads and decrypts its last page ({loaded} of {stored}) in {thread_ms:.1} ms \
             (target ≤100 ms: {}); reading and decrypting all of it, as opening did before: {whole_ms:.0} ms",
            met(wall_ratio <= 1.2),
            fc / ec,
            met(thread_ms <= 100.0),
        ),
        json: json!({
            "messages": n, "page": PAGE, "runs": RUNS,
            "open_ms_empty": ew, "open_ms_full": fw, "open_wall_ratio": wall_ratio,
            "cpu_s_empty": ec, "cpu_s_full": fc, "cpu_ratio": fc / ec,
            "peak_rss_mib_empty": er, "peak_rss_mib_full": fr,
            "thread_open_ms": thread_ms,
            "baseline_read_and_decrypt_all_ms": whole_ms,
            "empty_runs": e, "full_runs": f,
        }),
    }
}

/// Messages per CPU-second (every client thread) of a live burst of `n`,
/// into a thread whose store already holds `stored` older messages.
fn receive_cost(n: usize, stored: usize) -> f64 {
    use crate::scenarios::{Setup, log_len, rt, sealed_frames, send_burst, setup};
    use hush_core::payload::MessagePayload;
    use hush_store::StoredMessage;
    let Setup {
        relay,
        dir: _dir,
        mut b,
        peer,
        t,
        key,
    } = setup();
    let store = b.app.world().resource::<ProfileStore>().clone();
    for chunk in (0..stored).collect::<Vec<_>>().chunks(1000) {
        let msgs: Vec<StoredMessage> = chunk
            .iter()
            .map(|&i| {
                let s = key.seal_json(&MessagePayload {
                    sender_id: peer,
                    sender_name: "peer".into(),
                    content: format!("an older message, number {i}"),
                    timestamp: 1_600_000_000_000 + i as i64,
                });
                StoredMessage {
                    id: format!("old-{i:08}"),
                    thread_id: t,
                    ciphertext: s.ciphertext,
                    iv: s.iv,
                    created_at: hush_core::time::format_ws(1_600_000_000_000_000 + i as i64 * 1000),
                    client_message_id: None,
                }
            })
            .collect();
        store.store_messages(&msgs, None, &[]).unwrap();
    }
    store.flush().unwrap();
    let frames = sealed_frames(&key, t, peer, n, "live");
    let rt = rt();
    let cpu0 = client_cpu();
    send_burst(&rt, &relay, frames);
    let s = Instant::now();
    while log_len(&b, t) < n {
        assert!(
            s.elapsed() < Duration::from_secs(600),
            "the burst did not arrive"
        );
        b.step();
    }
    n as f64 / (client_cpu() - cpu0)
}

/// `history-receive`: whether a live message costs more with a long history
/// stored (the issue measured 46 % more at 100 000).
pub fn history_receive(n: usize, stored: usize) -> Report {
    let empty = receive_cost(n, 0);
    let full = receive_cost(n, stored);
    let ratio = full / empty;
    Report {
        summary: format!(
            "a live burst of {n} into an empty thread: {empty:.0} msg per CPU-second (every client thread); \
             into one with {stored} older messages stored: {full:.0} ({ratio:.2}×; flat would be ≥0.83×: {})",
            if ratio >= 1.0 / 1.2 { "met" } else { "MISSED" }
        ),
        json: json!({
            "burst": n, "stored": stored,
            "msgs_per_cpu_s_empty": empty, "msgs_per_cpu_s_stored": full, "ratio": ratio,
        }),
    }
}
