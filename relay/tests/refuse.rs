//! A relay refuses, quickly and by name, a database it cannot serve rather
//! than silently making a new vault: one with history but no vault (a copy
//! taken without its `-wal` file), and one that is not a database at all.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{WORDS, listening_url, sign_in};

fn relay(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hush-relay"));
    c.args(["--listen", "127.0.0.1:0", "--no-rate-limit", "--data-dir"])
        .arg(dir)
        .env("HUSH_LOG", "warn")
        .stdin(Stdio::null());
    c
}

/// Runs a relay that must fail; returns its output and how long it took.
fn must_fail(dir: &std::path::Path) -> (Output, Duration) {
    let t = Instant::now();
    let out = relay(dir).output().unwrap();
    (out, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_without_a_vault_is_refused_and_no_words_are_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("relay");
    // A relay with one thread, stopped.
    let mut child = relay(&dir)
        .env("HUSH_WORDS", WORDS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = listening_url(&mut child);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = &sign_in(&http, &base).await;
    common::create_thread_at(&http, &base, token, &common::thread(1)).await;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    // The vault row is gone, as in a copy without its -wal file.
    sqlx::any::install_default_drivers();
    let db = dir.join("relay.sqlite3");
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM vault")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let (out, took) = must_fail(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(
        err.contains("no vault") && err.contains(&db.display().to_string()),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("abandon") && stdout.split_whitespace().count() < 12 + 3,
        "new words were printed: {stdout}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_file_that_is_no_database_fails_within_five_seconds_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("relay");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("relay.sqlite3");
    std::fs::write(&db, vec![0xA5u8; 8192]).unwrap();
    let (out, took) = must_fail(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    eprintln!("refused in {:.2} s: {}", took.as_secs_f64(), err.trim());
}
