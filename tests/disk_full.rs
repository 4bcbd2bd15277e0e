//! A full disk under the command line, on a real filesystem filled to the
//! last byte (a tmpfs in a private mount namespace, see `TinyDisk`): a send is
//! refused with a clear error instead of being half-queued, a listener says it
//! cannot store what arrives instead of waiting silently, and once there is
//! room again every message arrives, each once, in order.

mod common;

use common::*;
use hush_testkit::{RelayFixture, TinyDisk};
use std::path::Path;

fn identity(url: &str, data: &Path, profile: &str, name: &str) -> String {
    json_lines(&ok(&run(url, data, profile, &["identity", "--name", name])))[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn listen(url: &str, data: &Path, profile: &str, n: usize) -> Vec<String> {
    let out = ok(&run(
        url,
        data,
        profile,
        &["listen", "--count", &n.to_string(), "--timeout", "60"],
    ));
    json_lines(&out)
        .iter()
        .map(|l| l["content"].as_str().unwrap().to_owned())
        .collect()
}

/// A message too large for the free pages inside Bob's store file: on a full
/// disk a small write may still fit in pages the file already has (and then
/// it is rightly stored), so what Bob writes once the disk is full is larger
/// than everything on his disk (under 100 KiB) and must take new space. An
/// argument of the command line holds up to 128 KiB.
fn too_big_for_the_slack(text: &str) -> String {
    format!("{text} {}", "x".repeat(120 * 1024))
}

#[test]
fn a_full_disk_refuses_clearly_and_loses_nothing() {
    let relay = RelayFixture::start();
    let url = relay.url();
    let home = tempfile::tempdir().unwrap(); // Alice has room
    let disk = TinyDisk::new(16 << 20); // Bob's disk will fill up
    let bob_dir = disk.path();
    let a = identity(&url, home.path(), "alice", "Alice");
    let b = identity(&url, bob_dir, "bob", "Bob");
    ok(&run(
        &url,
        home.path(),
        "alice",
        &["contacts", "add", &b, "Bob"],
    ));
    ok(&run(
        &url,
        bob_dir,
        "bob",
        &["contacts", "add", &a, "Alice"],
    ));
    ok(&run(&url, home.path(), "alice", &["send", &b, "before"]));
    assert_eq!(listen(&url, bob_dir, "bob", 1), ["before"]);

    let filled = disk.fill();
    eprintln!("filled Bob's disk with {filled} bytes");
    assert!(filled > (16 << 20) - (100 << 10), "Bob used over 100 KiB");

    // Bob's send is refused: not queued, and he is told why.
    let o = run(
        &url,
        bob_dir,
        "bob",
        &[
            "send",
            &a,
            &too_big_for_the_slack("on a full disk"),
            "--timeout",
            "20",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("the disk is full"), "stderr: {err}");

    // Alice goes on writing; Bob's listener cannot store and says so.
    let sent: Vec<String> = ["one", "two", "three"].map(too_big_for_the_slack).into();
    for t in &sent {
        ok(&run(&url, home.path(), "alice", &["send", &b, t]));
    }
    let o = run(
        &url,
        bob_dir,
        "bob",
        &["listen", "--count", "3", "--timeout", "30"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("the disk is full"), "stderr: {err}");
    assert!(o.stdout.is_empty(), "printed what it could not store");

    disk.make_room();
    // The refused send was never queued, so nothing goes out behind Bob's back.
    assert_eq!(ok(&run(&url, bob_dir, "bob", &["outbox"])), "");
    // Everything Bob could not store arrives now, once each, in order.
    assert!(
        listen(&url, bob_dir, "bob", 3) == sent,
        "not the three, in order"
    );
    let o = run(
        &url,
        bob_dir,
        "bob",
        &["listen", "--count", "1", "--timeout", "3"],
    );
    assert_eq!(o.status.code(), Some(3), "nothing more, nothing twice");
    assert!(o.stdout.is_empty());
    ok(&run(&url, bob_dir, "bob", &["send", &a, "room again"]));
    assert_eq!(listen(&url, home.path(), "alice", 1), ["room again"]);
}
