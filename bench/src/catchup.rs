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
    Report {
        summary: format!(
            "a new device catching up on {n} messages, default rate limits on: {now_s:.2} s, {:.0} msg per CPU-second \
             (every client thread); the relay as before (pages of {MAX_PAGE}, history in the shared bucket), same run: \
             {old_s:.2} s, {:.0} msg per CPU-second; {speedup:.1}× faster (target ≥3×: {})",
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
        }),
    }
}
