//! `hush listen` delivers every message to the program that reads it: killed
//! at seeded random moments during a catch-up and a live burst, with a reader
//! that stops early (`| head -n 1`), with a message that overtakes the
//! history page asked for before it, and against a server that is not there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hush_core::crypto::VaultKey;
use hush_core::payload::MessagePayload;
use hush_testkit::{FaultProxy, ProxyMode, RelayFixture, WORDS};
use uuid::Uuid;

/// Posts sealed messages from `from` into `thread` over REST, as a peer would.
struct Poster {
    rest: hush_testkit::rest::Rest,
    thread: String,
    key: hush_core::crypto::AeadKey,
    from: Uuid,
}

impl Poster {
    fn new(relay: &RelayFixture, thread: &str, a: &str, b: &str) -> Poster {
        let (a, b) = (Uuid::parse_str(a).unwrap(), Uuid::parse_str(b).unwrap());
        let vault = VaultKey::derive(WORDS, &relay.kdf_salt()).unwrap();
        Poster {
            rest: relay.rest(),
            thread: thread.to_owned(),
            key: vault.thread_key(&a, &b),
            from: a,
        }
    }

    /// Returns the server's id of the message.
    fn post(&self, content: &str) -> String {
        let s = self.key.seal_json(&MessagePayload {
            sender_id: self.from,
            sender_name: "Alice".into(),
            content: content.into(),
            timestamp: 0,
        });
        let v = self.rest.post_message(&self.thread, &s.ciphertext, &s.iv);
        v["id"].as_str().unwrap().to_owned()
    }
}

/// Alice and Bob, their thread on the server, and Alice's first message.
fn thread(relay: &RelayFixture, data: &std::path::Path) -> (String, String, String, String) {
    let url = relay.url();
    let (a, b) = setup(&url, data);
    ok(&run(&url, data, "alice", &["send", &b, "first"]));
    let contacts = json_lines(&ok(&run(&url, data, "alice", &["contacts", "list"])));
    let t = contacts[0]["thread_id"].as_str().unwrap().to_owned();
    (a, b, t, "first".into())
}

/// Runs `listen` and returns every line it printed, killed after `kill_after`.
fn listen_lines(
    url: &str,
    data: &std::path::Path,
    kill_after: Option<Duration>,
) -> Vec<serde_json::Value> {
    let mut args = vec!["listen"];
    if kill_after.is_none() {
        args.extend(["--timeout", "6"]);
    }
    let mut child = hush(url, data, "bob", &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str::<serde_json::Value>(&l).expect("a JSON line"))
            .collect::<Vec<_>>()
    });
    if let Some(d) = kill_after {
        std::thread::sleep(d);
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("panicked"), "listen panicked: {err}");
    if kill_after.is_none() {
        assert!(status.success(), "listen failed: {status} {err}");
    }
    reader.join().unwrap()
}

#[test]
fn listen_killed_at_random_moments_during_a_catch_up_and_a_live_burst_loses_nothing() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (a, b, t, _) = thread(&relay, data.path());
    let poster = Arc::new(Poster::new(&relay, &t, &a, &b));
    let sent: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // A backlog of 2 000 for the first runs to catch up on.
    for i in 0..2000 {
        sent.lock()
            .unwrap()
            .insert(poster.post(&format!("backlog {i}")));
    }
    // And a live burst all the while: every kill lands in it.
    let stop = Arc::new(AtomicBool::new(false));
    let burst = {
        let (poster, sent, stop) = (poster.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                sent.lock()
                    .unwrap()
                    .insert(poster.post(&format!("live {i}")));
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut next = seeded("HUSH_LISTEN_SEED", 0x5eed_1157);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    const KILLS: usize = 24;
    let killed_mid_output = AtomicUsize::new(0);
    for _ in 0..KILLS {
        // From the middle of the unlock to well into the output.
        let after = Duration::from_millis(300 + next() % 2700);
        let lines = listen_lines(&url, data.path(), Some(after));
        if !lines.is_empty() {
            killed_mid_output.fetch_add(1, Ordering::SeqCst);
        }
        for l in lines {
            *seen
                .entry(l["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    burst.join().unwrap();
    // One run to the end: it prints whatever the killed ones did not hand over.
    let started = Instant::now();
    loop {
        let lines = listen_lines(&url, data.path(), None);
        let n = lines.len();
        for l in lines {
            *seen
                .entry(l["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        if n == 0 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let sent = sent.lock().unwrap();
    let missing: Vec<_> = sent.iter().filter(|id| !seen.contains_key(*id)).collect();
    let dups = seen.values().filter(|&&n| n > 1).count();
    eprintln!(
        "{KILLS} kills ({} while printing), {} messages sent, {} printed at least once, {dups} printed more than once",
        killed_mid_output.load(Ordering::SeqCst),
        sent.len(),
        seen.len()
    );
    assert!(
        missing.is_empty(),
        "{} never printed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        killed_mid_output.load(Ordering::SeqCst) >= KILLS / 2,
        "the kills did not land while messages were being printed"
    );
}

#[test]
fn a_reader_that_stops_early_gets_the_rest_on_the_next_run_and_listen_does_not_panic() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (a, b, t, _) = thread(&relay, data.path());
    let poster = Poster::new(&relay, &t, &a, &b);
    let ids: Vec<String> = (0..50).map(|i| poster.post(&format!("m {i}"))).collect();
    let bin = env!("CARGO_BIN_EXE_hush");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{bin}' --server {url} --data-dir '{}' --profile bob listen --timeout 20 | head -n 1",
            data.path().display()
        ))
        .env("HUSH_WORDS", WORDS)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the pipeline failed: {:?} {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
    let first = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(first.len(), 1);
    // "first" (from setup) is Alice's message before the backlog.
    let rest = listen_lines(&url, data.path(), None);
    let mut got: Vec<String> = first
        .iter()
        .chain(rest.iter())
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    let before = got.len();
    got.dedup();
    assert!(
        before - got.len() <= 1,
        "more than the line in flight printed twice"
    );
    for id in &ids {
        assert!(got.contains(id), "{id} was lost");
    }
}

#[test]
fn a_message_that_overtakes_its_threads_history_page_is_printed_without_waiting_for_another() {
    // Bob's history page is read by the relay before Alice's message is
    // written, and its reply is held on the way: the message comes live
    // first. The page's end must move the thread's cursor over it, or
    // listen holds it back until some later message moves the cursor.
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let (a, b, t, _) = thread(&relay, data.path());
    let poster = Poster::new(&relay, &t, &a, &b);
    // Bob has listened before: his thread has a cursor, and "first" is taken.
    let url = relay.url();
    let first = json_lines(&ok(&run(
        &url,
        data.path(),
        "bob",
        &["listen", "--count", "1", "--timeout", "20"],
    )));
    assert_eq!(first[0]["content"], "first");
    let proxy = FaultProxy::start(relay.addr);
    proxy.set_mode(ProxyMode::DelayReplies(Duration::from_millis(1500)));
    let upgrades = relay.get(|s| &s.ws_upgrades);
    let args = ["listen", "--count", "1", "--timeout", "20"];
    let child = hush(&proxy.url(), data.path(), "bob", &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay.get(|s| &s.ws_upgrades) == upgrades {
        assert!(Instant::now() < deadline, "listen never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Subscribed and the page asked for within moments; its reply is held.
    std::thread::sleep(Duration::from_millis(400));
    let id = poster.post("overtaking");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "listen failed: {:?} {err}",
        out.status
    );
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["id"], id.as_str());
}

#[test]
fn listen_that_never_reaches_a_server_fails_with_its_own_code() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    setup(&relay.url(), data.path());
    drop(relay);
    // Nothing listens there any more.
    let dead = "http://127.0.0.1:9";
    let out = run(dead, data.path(), "bob", &["listen", "--timeout", "3"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("never reached the server"));
}

#[test]
fn every_line_has_one_time_format_and_send_takes_its_text_from_stdin() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (_, b) = setup(&url, data.path());
    let mut send = hush(&url, data.path(), "alice", &["send", &b, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    send.stdin
        .take()
        .unwrap()
        .write_all(b"  from stdin, not the process list  \n")
        .unwrap();
    assert!(send.wait().unwrap().success());
    // One caught up (REST `Z` on the server), one live (`+00:00`).
    let live = hush(
        &url,
        data.path(),
        "bob",
        &["listen", "--count", "2", "--timeout", "30"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    ok(&run(&url, data.path(), "alice", &["send", &b, "live one"]));
    let lines = json_lines(&ok(&live.wait_with_output().unwrap()));
    assert_eq!(
        lines[0]["content"], "from stdin, not the process list",
        "trimmed at both ends"
    );
    assert_eq!(lines[1]["content"], "live one");
    for l in &lines {
        let t = l["created_at"].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.len() == "2026-01-19T10:00:00.000000Z".len(),
            "{t}"
        );
    }
}
