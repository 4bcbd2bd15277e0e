//! The headless command line as a new user runs it: two profiles, one relay.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use hush_testkit::{RelayFixture, WORDS};

#[test]
fn send_and_listen_between_two_profiles() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (a, b) = setup(&url, data.path());
    // Bob listens first, Alice sends twice.
    let listener = hush(
        &url,
        data.path(),
        "bob",
        &["listen", "--count", "2", "--timeout", "60"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    ok(&run(&url, data.path(), "alice", &["send", &b, "hello bob"]));
    ok(&run(
        &url,
        data.path(),
        "alice",
        &["send", &b, "ünïcödé ✓ line\nbreak"],
    ));
    let out = listener.wait_with_output().unwrap();
    let lines = json_lines(&ok(&out));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["content"], "hello bob");
    assert_eq!(lines[1]["content"], "ünïcödé ✓ line\nbreak");
    for l in &lines {
        assert_eq!(l["sender_id"], a.as_str());
        assert_eq!(l["sender_name"], "Alice");
        for k in ["thread_id", "id", "timestamp", "created_at"] {
            assert!(!l[k].is_null(), "{k} missing in {l}");
        }
    }
    // Alice's outbox is empty.
    assert_eq!(ok(&run(&url, data.path(), "alice", &["outbox"])), "");
}

#[test]
fn a_send_that_cannot_go_out_exits_3_and_goes_on_the_next_run() {
    let mut relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (a, b) = setup(&url, data.path());
    relay.stop();
    let o = run(
        &url,
        data.path(),
        "alice",
        &["send", &b, "while the server is down", "--timeout", "3"],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("stays in the outbox"));
    let queued = json_lines(&ok(&run(&url, data.path(), "alice", &["outbox"])));
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["state"], "queued");
    assert_eq!(queued[0]["content"], "while the server is down");
    assert_eq!(queued[0]["peer"], b.as_str());
    // `status` says the server is away and how long the queue has waited.
    let o = run(
        &url,
        data.path(),
        "alice",
        &["status", "--json", "--timeout", "2"],
    );
    assert_eq!(o.status.code(), Some(5));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["connected"], false);
    assert_eq!(st["queued"], 1);
    assert!(st["oldest_queued_s"].as_f64().unwrap() >= 0.0, "{st}");
    relay.restart();
    // Back: connected, with the relay's features, a measured round trip and
    // the catch-up it ran (the queued message goes out meanwhile).
    let st: serde_json::Value =
        serde_json::from_str(&ok(&run(&url, data.path(), "alice", &["status", "--json"]))).unwrap();
    assert_eq!(st["connected"], true, "{st}");
    assert!(
        st["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "thread_list"),
        "{st}"
    );
    assert!(st["rtt_ms"].as_f64().is_some_and(|r| r > 0.0), "{st}");
    assert!(st["last_catchup"]["took_s"].as_f64().is_some(), "{st}");
    let text = ok(&run(&url, data.path(), "alice", &["status"]));
    for line in ["server", "round trip", "reconnects", "queued", "catch-up"] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    ok(&run(
        &url,
        data.path(),
        "alice",
        &["send", &b, "after the restart"],
    ));
    assert_eq!(ok(&run(&url, data.path(), "alice", &["outbox"])), "");
    let got = json_lines(&ok(&run(
        &url,
        data.path(),
        "bob",
        &["listen", "--count", "2", "--timeout", "30"],
    )));
    let texts: Vec<&str> = got.iter().map(|l| l["content"].as_str().unwrap()).collect();
    assert_eq!(texts, ["while the server is down", "after the restart"]);
    assert!(got.iter().all(|l| l["sender_id"] == a.as_str()));
}

#[test]
fn bad_words_missing_words_and_a_busy_profile_fail_clearly() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    setup(&url, data.path());
    let o = hush(&url, data.path(), "alice", &["identity"])
        .env(
            "HUSH_WORDS",
            "abandon abandon abandon abandon abandon abandon abandon",
        )
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong words"));
    let o = hush(&url, data.path(), "alice", &["identity"])
        .env_remove("HUSH_WORDS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HUSH_WORDS"));
    // A profile is used by one process at a time.
    let mut first = hush(&url, data.path(), "bob", &["listen", "--timeout", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let o = run(&url, data.path(), "bob", &["outbox"]);
    first.kill().unwrap();
    let _ = first.wait();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("open in another hush process"));
    // A fresh profile cannot unlock without the server the first time.
    let o = run(
        "http://127.0.0.1:9",
        data.path(),
        "carol",
        &["identity", "--name", "Carol"],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("unreachable"));
}

#[cfg(unix)]
#[test]
fn profile_files_are_private_to_their_user() {
    use std::os::unix::fs::PermissionsExt;
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    setup(&relay.url(), data.path());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for p in walk(data.path()) {
        let m = mode(&p);
        assert_eq!(m & 0o077, 0, "{} is {m:o}", p.display());
    }
    let profile = data.path().join("profiles").join("bob");
    assert_eq!(mode(&profile), 0o700);
    assert_eq!(mode(&profile.join("store.redb")), 0o600);
}

#[test]
fn nothing_plaintext_reaches_the_disk() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (_, b) = setup(&url, data.path());
    let secret = "a very particular plaintext 7f3a";
    ok(&run(&url, data.path(), "alice", &["send", &b, secret]));
    let got = json_lines(&ok(&run(
        &url,
        data.path(),
        "bob",
        &["listen", "--count", "1", "--timeout", "30"],
    )));
    assert_eq!(got[0]["content"], secret);
    let mut checked = 0;
    for dir in [data.path(), relay.dir.path()] {
        for entry in walk(dir) {
            let bytes = std::fs::read(&entry).unwrap();
            checked += 1;
            for needle in [
                secret.as_bytes(),
                b"particular",
                WORDS.as_bytes(),
                b"abandon ability",
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds {:?}",
                    entry.display(),
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
    assert!(checked >= 3, "looked at {checked} files");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn debug_logs_hold_no_token_words_or_key() {
    // A relay process of its own, logging at debug level too.
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--no-rate-limit",
            "--data-dir",
        ])
        .arg(dir.path().join("relay"))
        .env("HUSH_WORDS", WORDS)
        .env("HUSH_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(relay.stdout.as_mut().unwrap());
        r.read_line(&mut first).unwrap();
    }
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let data = dir.path().join("data");
    let mut logs = String::new();
    let mut run_dbg = |profile: &str, args: &[&str]| {
        let o = hush(&url, &data, profile, args)
            .env("HUSH_LOG", "debug")
            .output()
            .unwrap();
        logs.push_str(&String::from_utf8_lossy(&o.stderr));
        ok(&o)
    };
    let a = json_lines(&run_dbg("alice", &["identity", "--name", "Alice"]))[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = json_lines(&run_dbg("bob", &["identity", "--name", "Bob"]))[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    run_dbg("bob", &["contacts", "add", &a, "Alice"]);
    run_dbg("alice", &["send", &b, "a secret sentence for the log test"]);
    run_dbg("bob", &["listen", "--count", "1", "--timeout", "30"]);
    let salt: serde_json::Value = serde_json::from_str(
        &std::process::Command::new("curl")
            .args(["-s", &format!("{url}/api/auth/salt")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    relay.kill().unwrap();
    let out = relay.wait_with_output().unwrap();
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    // Debug logging really was on (the test must be able to fail).
    assert!(logs.contains("DEBUG"), "no debug output captured");
    assert!(logs.lines().count() > 20, "too little output: {logs}");
    let mut needles: Vec<String> = vec![
        WORDS.into(),
        "abandon ability".into(),
        "eyJ".into(), // any JWT (its header)
        "a secret sentence".into(),
    ];
    {
        let s = salt["kdf_salt"].as_str().expect("the relay's salt");
        let vk = hush_core::crypto::VaultKey::derive(WORDS, s).unwrap();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        needles.push(hex(vk.expose()));
        needles.push(hex(vk.identity_key().expose()));
        needles.push(hex(vk.contacts_key().expose()));
    }
    for n in &needles {
        assert!(!logs.contains(n.as_str()), "the logs hold {n:?}");
    }
}
