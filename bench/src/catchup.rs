//! `catchup`: a new device catching up on 50 000 messages from a relay with
//! its default rate limits on (issue 18, point 5). The same run measures the
//! relay as it was before: pages of 200, and history reads counted in the
//! bucket of every other route (600 a minute, burst 120), so that the
//! client met 429s after 120 pages.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_chat::headless::Client;
use hush_core::ThreadId;
use hush_core::http::MAX_PAGE;
use hush_relay::{RateLimits, RelayConfig, Storage};
use hush_store::{RedbStore, Store};
use hush_testkit::RelayFixture;
use serde_json::json;

use crate::cpu::client_cpu;
use crate::scenarios::{
    Report, Setup, log_len, new_device_of, rt, sealed_frames, send_burst, setup, words,
};

/// A new device of the same profile against a relay on `data`: seconds to
/// the whole thread shown, and the CPU of every client thread.
fn catch_up(
    data: &Path,
    profile: &dyn Store,
    t: ThreadId,
    n: usize,
    tweak: impl FnOnce(&mut RelayConfig),
) -> (f64, f64) {
    let relay = RelayFixture::start_with(|c| {
        c.storage = Storage::SqliteDir(data.to_owned());
        c.rate_limits = Some(RateLimits::default());
        tweak(c);
    });
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("new.redb")).unwrap());
    new_device_of(profile, &*store);
    let s = Instant::now();
    let cpu0 = client_cpu();
    let mut c = Client::new(&relay.url(), store, None).unwrap();
    c.unlock(&words()).unwrap();
    while log_len(&c, t) < n {
        assert!(
            s.elapsed() < Duration::from_secs(600),
            "catch-up stopped at {} of {n}",
            log_len(&c, t)
        );
        c.step();
    }
    (s.elapsed().as_secs_f64(), client_cpu() - cpu0)
}

pub fn catchup(n: usize) -> Report {
    let Setup {
        mut relay,
        dir,
        b,
        peer,
        t,
        key,
    } = setup();
    let frames = sealed_frames(&key, t, peer, n, "history");
    let rt = rt();
    send_burst(&rt, &relay, frames);
    let s = Instant::now();
    while relay.get(|s| &s.messages_stored) < n as u64 {
        assert!(
            s.elapsed() < Duration::from_secs(300),
            "the history was not stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let me = b.user_id();
    drop(b);
    drop(rt);
    let profile = RedbStore::open(&dir.path().join("b.redb")).unwrap();
    relay.stop();
    let data = relay.data_dir();
    let (now_s, now_cpu) = catch_up(&data, &profile, t, n, |_| {});
    let (old_s, old_cpu) = catch_up(&data, &profile, t, n, |c| {
        c.limits.max_page = MAX_PAGE;
        let d = RateLimits::default();
        c.rate_limits = Some(RateLimits {
            history: d.http,
            ..d
        });
    });
    let speedup = old_s / now_s;
    let pager = reference_pager(&data, me, peer, n);
    let pager_text = match &pager {
        Ok((secs, cpu)) => format!(
            "the Python reference pager (bench/pager.py), same relay: {secs:.2} s, {:.0} msg per CPU-second; \
             hush {:.2}× its speed, {:.2}× its CPU",
            n as f64 / cpu,
            secs / now_s,
            now_cpu / cpu
        ),
        Err(e) => format!("the Python reference pager: not run ({e})"),
    };
    Report {
        summary: format!(
            "a new device catching up on {n} messages, default rate limits on: {now_s:.2} s, {:.0} msg per CPU-second \
             (every client thread); the relay as before (pages of {MAX_PAGE}, history in the shared bucket), same run: \
             {old_s:.2} s, {:.0} msg per CPU-second; {speedup:.1}× faster (target ≥3×: {}); {pager_text}",
            n as f64 / now_cpu,
            n as f64 / old_cpu,
            if speedup >= 3.0 { "met" } else { "MISSED" }
        ),
        json: json!({
            "messages": n,
            "seconds": now_s, "cpu_s": now_cpu,
            "baseline_pages_of_200_shared_bucket_seconds": old_s,
            "baseline_cpu_s": old_cpu,
            "speedup": speedup,
            "reference_pager": match pager {
                Ok((secs, cpu)) => json!({ "seconds": secs, "cpu_s": cpu }),
                Err(e) => json!({ "error": e }),
            },
        }),
    }
}

/// `bench/pager.py` against the relay of `data` as it is now (default rate
/// limits): its seconds and CPU seconds. The Python is `HUSH_BENCH_PYTHON`,
/// else the interop venv `scripts/test` makes, else `python3`; it needs
/// argon2-cffi and cryptography.
fn reference_pager(
    data: &Path,
    me: uuid::Uuid,
    peer: uuid::Uuid,
    n: usize,
) -> Result<(f64, f64), String> {
    let relay = RelayFixture::start_with(|c| {
        c.storage = Storage::SqliteDir(data.to_owned());
        c.rate_limits = Some(RateLimits::default());
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("../target/interop-venv/bin/python");
    let python = std::env::var("HUSH_BENCH_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    });
    let out = std::process::Command::new(&python)
        .arg(root.join("pager.py"))
        .args([relay.url(), me.to_string(), peer.to_string(), n.to_string()])
        .env("HUSH_WORDS", hush_testkit::WORDS)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("failed").to_owned());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("its output: {e}"))?;
    if v["messages"].as_u64() != Some(n as u64) {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!("it read {} of {n}; {tail:?}", v["messages"]));
    }
    Ok((
        v["seconds"].as_f64().unwrap_or(f64::NAN),
        v["cpu_s"].as_f64().unwrap_or(f64::NAN),
    ))
}
