//! Message requests from the command line, on a real relay: a stranger's
//! first message reaches `hush listen` marked as a request, accepting makes
//! the sender a contact, and a blocked stranger is never shown again.

mod common;

use std::process::Stdio;

use common::*;
use hush_testkit::RelayFixture;

fn identity(url: &str, data: &std::path::Path, profile: &str, name: &str) -> String {
    let out = ok(&run(url, data, profile, &["identity", "--name", name]));
    json_lines(&out)[0]["user_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_strangers_first_message_is_a_request_that_can_be_accepted_or_blocked() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let (url, d) = (relay.url(), data.path());
    let alice = identity(&url, d, "alice", "Alice");
    let bob = identity(&url, d, "bob", "Bob");
    let carol = identity(&url, d, "carol", "Carol");

    // Bob listens before Alice's thread exists: he hears of it as it is
    // created, and her first message arrives marked as a request.
    let listener = hush(
        &url,
        d,
        "bob",
        &["listen", "--count", "1", "--timeout", "60"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    ok(&run(
        &url,
        d,
        "alice",
        &["send", &bob, "hi Bob, it's Alice"],
    ));
    let lines = json_lines(&ok(&listener.wait_with_output().unwrap()));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["content"], "hi Bob, it's Alice");
    assert_eq!(lines[0]["sender_id"], alice.as_str());
    assert_eq!(lines[0]["request"], true);

    // `hush requests` lists it, with her name and first message.
    let reqs = json_lines(&ok(&run(&url, d, "bob", &["requests"])));
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["user_id"], alice.as_str());
    assert_eq!(reqs[0]["display_name"], "Alice");
    assert_eq!(reqs[0]["first_message"], "hi Bob, it's Alice");

    // Accepted: a contact under her name; no longer a request, and her next
    // message is an ordinary one.
    let c = json_lines(&ok(&run(&url, d, "bob", &["requests", "accept", &alice])));
    assert_eq!(c[0]["display_name"], "Alice");
    let contacts = json_lines(&ok(&run(&url, d, "bob", &["contacts", "list"])));
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["user_id"], alice.as_str());
    assert!(ok(&run(&url, d, "bob", &["requests"])).is_empty());
    ok(&run(&url, d, "alice", &["send", &bob, "glad you added me"]));
    let lines = json_lines(&ok(&run(
        &url,
        d,
        "bob",
        &["listen", "--count", "1", "--timeout", "30"],
    )));
    assert_eq!(lines[0]["content"], "glad you added me");
    assert!(lines[0]["request"].is_null(), "{}", lines[0]);

    // Carol writes while Bob is away: found by listing when he comes back.
    ok(&run(&url, d, "carol", &["send", &bob, "buy my stuff"]));
    let reqs = json_lines(&ok(&run(&url, d, "bob", &["requests"])));
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["display_name"], "Carol");
    let blocked = json_lines(&ok(&run(&url, d, "bob", &["requests", "block", &carol])));
    assert_eq!(blocked[0]["blocked"], true);
    assert!(ok(&run(&url, d, "bob", &["requests"])).is_empty());
    // Her next message is stored nowhere Bob looks: `listen` shows nothing
    // of hers, while Alice's still come through.
    ok(&run(&url, d, "carol", &["send", &bob, "are you there?"]));
    ok(&run(&url, d, "alice", &["send", &bob, "still here"]));
    let lines = json_lines(&ok(&run(&url, d, "bob", &["listen", "--timeout", "8"])));
    let contents: Vec<&str> = lines
        .iter()
        .map(|l| l["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["still here"], "{lines:?}");
    // Unblocked, her request is back (a deliberate act, not a leak).
    ok(&run(&url, d, "bob", &["contacts", "unblock", &carol]));
    let reqs = json_lines(&ok(&run(&url, d, "bob", &["requests"])));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["user_id"], carol.as_str());
}

#[test]
fn contacts_are_renamed_and_removed_from_the_command_line() {
    let relay = RelayFixture::start();
    let data = tempfile::tempdir().unwrap();
    let (url, d) = (relay.url(), data.path());
    let (a, b) = setup(&url, d);
    ok(&run(&url, d, "alice", &["send", &b, "one"]));
    let renamed = json_lines(&ok(&run(
        &url,
        d,
        "alice",
        &["contacts", "rename", &b, "Bobby"],
    )));
    assert_eq!(renamed[0]["display_name"], "Bobby");
    let list = json_lines(&ok(&run(&url, d, "alice", &["contacts", "list"])));
    assert_eq!(list[0]["display_name"], "Bobby");
    // Someone who is no contact, and a bad UUID, fail clearly.
    let o = run(&url, d, "alice", &["contacts", "rename", &a, "Me"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a contact"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&url, d, "alice", &["contacts", "remove", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    ok(&run(
        &url,
        d,
        "alice",
        &["contacts", "remove", &b, "--forget-history"],
    ));
    assert!(ok(&run(&url, d, "alice", &["contacts", "list"])).is_empty());
}

#[test]
fn a_stock_server_says_it_cannot_show_requests() {
    let relay = RelayFixture::start_with(|c| c.stock = true);
    let data = tempfile::tempdir().unwrap();
    let (url, d) = (relay.url(), data.path());
    identity(&url, d, "bob", "Bob");
    let o = run(&url, d, "bob", &["requests", "--timeout", "20"]);
    assert!(ok(&o).is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot show requests from unknown people"),
        "{err}"
    );
}
