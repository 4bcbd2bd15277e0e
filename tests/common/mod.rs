//! Helpers of the command-line system tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use hush_testkit::WORDS;

pub fn hush(server: &str, data: &Path, profile: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hush"));
    c.args(["--server", server, "--data-dir"])
        .arg(data)
        .args(["--profile", profile])
        .args(args)
        .env("HUSH_WORDS", WORDS)
        .env_remove("HUSH_LOG");
    c
}

pub fn run(server: &str, data: &Path, profile: &str, args: &[&str]) -> Output {
    hush(server, data, profile, args).output().unwrap()
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn setup(server: &str, data: &Path) -> (String, String) {
    let a = json_lines(&ok(&run(
        server,
        data,
        "alice",
        &["identity", "--name", "Alice"],
    )))[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = json_lines(&ok(&run(
        server,
        data,
        "bob",
        &["identity", "--name", "Bob"],
    )))[0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Identity is created once; later runs print the same.
    let again = json_lines(&ok(&run(server, data, "alice", &["identity"])));
    assert_eq!(again[0]["user_id"], a.as_str());
    assert_eq!(again[0]["display_name"], "Alice");
    ok(&run(server, data, "alice", &["contacts", "add", &b, "Bob"]));
    ok(&run(
        server,
        data,
        "bob",
        &["contacts", "add", &a.to_uppercase(), "Alice"],
    ));
    let list = json_lines(&ok(&run(server, data, "bob", &["contacts", "list"])));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["user_id"], a.as_str(), "stored lowercased");
    (a, b)
}

/// A seeded xorshift64 source: the seed from the environment variable `var`,
/// else `default`, so a failing run can be replayed.
pub fn seeded(var: &str, default: u64) -> impl FnMut() -> u64 {
    let mut rng: u64 = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    }
}
