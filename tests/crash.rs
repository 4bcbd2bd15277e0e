//! Crash safety: `hush send` processes killed with SIGKILL at random moments
//! (seeded) during a burst of sends. Afterwards every message that was
//! written to the outbox is delivered exactly once, nothing twice, and the
//! redb store opens every time.

mod common;

use std::time::Duration;

use common::*;
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture};

#[test]
fn sends_killed_at_random_moments_are_delivered_exactly_once() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (_, b) = setup(&url, data.path());
    // Alice's link is slow, so a kill often lands between the outbox write
    // and the acknowledgement.
    let proxy = FaultProxy::start(relay.addr);
    proxy.set_mode(ProxyMode::Delay(Duration::from_millis(120)));
    let slow = proxy.url();
    let t0 = std::time::Instant::now();
    ok(&run(
        &slow,
        data.path(),
        "alice",
        &["send", &b, "calibration"],
    ));
    let full = t0.elapsed().as_millis() as u64;
    let mut next = seeded("HUSH_CRASH_SEED", 0xc0ffee);
    const RUNS: usize = 30;
    let mut queued_after_kill = std::collections::BTreeSet::new();
    let mut killed = 0;
    let mut in_window = 0;
    let mut prev_stored = relay.get(|s| &s.messages_stored);
    let mut prev_queued = std::collections::BTreeSet::new();
    for i in 0..RUNS {
        let mut child = hush(
            &slow,
            data.path(),
            "alice",
            &["send", &b, &format!("crash {i}"), "--timeout", "30"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        if i % 2 == 0 {
            // Anywhere from mid-unlock to just after the acknowledgement.
            std::thread::sleep(Duration::from_millis(full / 3 + next() % full));
        } else {
            // Aimed at the dangerous window: the server has just stored a
            // message and its acknowledgement is still on the slow link.
            let before = relay.get(|s| &s.messages_stored);
            let t = std::time::Instant::now();
            while relay.get(|s| &s.messages_stored) == before
                && t.elapsed() < Duration::from_secs(20)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(next() % 150));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
        // The store survived: it opens, and says what is still queued.
        let queued: std::collections::BTreeSet<String> =
            json_lines(&ok(&run(&url, data.path(), "alice", &["outbox"])))
                .iter()
                .map(|l| l["content"].as_str().unwrap().to_owned())
                .collect();
        // A kill between the server storing a message and the client writing
        // that down is the window that could duplicate. Certain when the
        // server stored more during this run than the outbox let go of.
        let stored = relay.get(|s| &s.messages_stored);
        let let_go = prev_queued.difference(&queued).count() as u64
            + u64::from(!queued.contains(&format!("crash {i}")));
        if stored - prev_stored > let_go {
            in_window += 1;
        }
        prev_stored = stored;
        queued_after_kill.extend(queued.iter().cloned());
        prev_queued = queued;
    }
    // One clean run sends what is left (older entries of the thread first).
    ok(&run(&url, data.path(), "alice", &["send", &b, "final"]));
    assert_eq!(
        ok(&run(&url, data.path(), "alice", &["outbox"])),
        "",
        "the outbox drained"
    );
    let got = json_lines(&ok(&run(
        &url,
        data.path(),
        "bob",
        &["listen", "--timeout", "8"],
    )));
    let contents: Vec<String> = got
        .iter()
        .map(|l| l["content"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = contents.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        contents.len(),
        "a message arrived twice: {contents:?}"
    );
    for q in &queued_after_kill {
        assert!(contents.contains(q), "{q:?} was queued but never delivered");
    }
    assert!(contents.iter().any(|c| c == "final") && contents.iter().any(|c| c == "calibration"));
    let delivered = contents.len() - 2;
    // Resends the server turned away as already stored (most such entries are
    // settled by catch-up before any resend).
    let dupes = relay.get(|s| &s.duplicate_sends);
    eprintln!(
        "crash safety: {RUNS} sends, {killed} killed with SIGKILL, {} left queued by a kill, \
         {in_window} kills after the server stored a message the client had not yet recorded, \
         {dupes} resends refused as duplicates, {delivered} delivered once, 0 twice",
        queued_after_kill.len()
    );
    assert_eq!(
        relay.get(|s| &s.messages_stored),
        contents.len() as u64,
        "the server stored each once"
    );
    assert!(
        killed >= RUNS / 3,
        "too few kills landed ({killed}) for the test to mean much"
    );
    assert!(
        !queued_after_kill.is_empty(),
        "no kill left a queued message: the test would prove nothing"
    );
}
