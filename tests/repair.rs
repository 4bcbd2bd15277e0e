//! A damaged profile store, met by real processes: seeded bit flips,
//! truncation, a zero-length file. No command panics, each says what is wrong
//! and what to do, and `hush repair` gets the profile going again, keeping
//! what can be read; the messages come back from the server.

mod common;

use common::*;
use hush_testkit::RelayFixture;

fn store_of(data: &std::path::Path, profile: &str) -> std::path::PathBuf {
    data.join("profiles").join(profile).join("store.redb")
}

fn no_panic(o: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert_ne!(o.status.code(), Some(101), "{what}: {err}");
    assert!(o.status.code().is_some(), "{what} died by a signal");
}

#[test]
fn damaged_stores_fail_clearly_and_repair_recovers() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let url = relay.url();
    let (_, b) = setup(&url, data.path());
    for t in ["one", "two", "three"] {
        ok(&run(&url, data.path(), "alice", &["send", &b, t]));
    }
    assert_eq!(
        json_lines(&ok(&run(
            &url,
            data.path(),
            "bob",
            &["listen", "--count", "3", "--timeout", "30"]
        )))
        .len(),
        3
    );
    let store = store_of(data.path(), "bob");
    let good = std::fs::read(&store).unwrap();

    // A zero-length file is refused with the way out, and not replaced.
    std::fs::write(&store, b"").unwrap();
    let o = run(&url, data.path(), "bob", &["listen", "--timeout", "1"]);
    no_panic(&o, "listen on an empty store");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is damaged") && err.contains("hush repair"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0);
    // The window says the same before it opens (no display is needed to
    // find out; had it gone on, it would have failed for want of one).
    let mut window = hush(&url, data.path(), "bob", &[]);
    window.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let o = window.output().unwrap();
    no_panic(&o, "the window on an empty store");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is damaged") && err.contains("hush repair"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0);
    let o = run(&url, data.path(), "bob", &["repair"]);
    no_panic(&o, "repair of an empty store");
    let report = &json_lines(&ok(&o))[0];
    assert_eq!(report["healthy"], false);
    assert!(std::path::Path::new(report["moved_aside_to"].as_str().unwrap()).exists());

    // Seeded bit flips (and a truncation): every command fails clearly or
    // works, and after `repair` the profile works whenever its identity
    // could be read.
    let mut next = seeded("HUSH_REPAIR_SEED", 0xdead_5eed);
    const SEEDS: usize = 50;
    let (mut failed_clearly, mut still_worked, mut kept_identity, mut refetched) = (0, 0, 0, 0);
    for seed in 0..=SEEDS {
        let mut bytes = good.clone();
        if seed == SEEDS {
            bytes.truncate(bytes.len() / 2);
        } else {
            for _ in 0..100 {
                let bit = (next() % (bytes.len() as u64 * 8)) as usize;
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
        }
        std::fs::write(&store, &bytes).unwrap();
        let o = run(&url, data.path(), "bob", &["listen", "--timeout", "1"]);
        no_panic(&o, &format!("listen, seed {seed}"));
        match o.status.code() {
            Some(0) => still_worked += 1,
            Some(_) => {
                let err = String::from_utf8_lossy(&o.stderr);
                // The last line says what is wrong (warnings may come first).
                let last = err
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("hush: "))
                    .unwrap_or("");
                assert!(
                    last.starts_with("hush: ") && last.len() > 20,
                    "seed {seed}: {err}"
                );
                assert!(
                    !(last.contains("damaged") || last.contains("corrupt"))
                        || last.contains("hush repair"),
                    "seed {seed}: a damaged store must point at the way out: {last}"
                );
                failed_clearly += 1;
            }
            None => unreachable!(),
        }
        let o = run(&url, data.path(), "bob", &["repair", "--force"]);
        no_panic(&o, &format!("repair, seed {seed}"));
        let report = &json_lines(&ok(&o))[0];
        if report["kept"]["identity"] == true {
            kept_identity += 1;
            // The messages come back from the server, once each.
            let o = run(
                &url,
                data.path(),
                "bob",
                &["listen", "--count", "3", "--timeout", "20"],
            );
            no_panic(&o, &format!("listen after repair, seed {seed}"));
            if o.status.success() {
                let got: Vec<_> = json_lines(&String::from_utf8_lossy(&o.stdout))
                    .iter()
                    .map(|l| l["content"].as_str().unwrap_or("").to_owned())
                    .collect();
                if got == ["one", "two", "three"] {
                    refetched += 1;
                }
            }
        }
    }
    eprintln!(
        "{} damaged stores (50 seeds x 100 bit flips, 1 truncation): listen failed clearly {failed_clearly}, still worked {still_worked}; \
         after repair the identity was kept in {kept_identity}, and the 3 messages came back in {refetched}",
        SEEDS + 1
    );
    assert_eq!(failed_clearly + still_worked, SEEDS + 1);
    assert!(refetched <= kept_identity);
}
