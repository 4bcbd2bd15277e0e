//! `https://` / `wss://` against a relay behind TLS with a self-signed CA:
//! refused by default, accepted with `--ca-cert`.

use std::process::Command;

use hush_testkit::{RelayFixture, TlsProxy, WORDS, self_signed};

fn hush(server: &str, data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["--server", server, "--data-dir"])
        .arg(data)
        .args(args)
        .env("HUSH_WORDS", WORDS)
        .output()
        .unwrap()
}

#[test]
fn a_private_ca_is_refused_by_default_and_trusted_with_ca_cert() {
    let relay = RelayFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let tls = TlsProxy::start(relay.addr, &cert, &key);
    let data = dir.path().join("data");
    // Untrusted: the unlock cannot even authenticate, and says why.
    let o = hush(&tls.url(), &data, &["identity", "--name", "T"]);
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains("TLS refused"), "the reason is TLS: {err}");
    // Trusted with --ca-cert: identity over https, then a send over wss.
    let ca_arg = ca.to_str().unwrap();
    let o = hush(
        &tls.url(),
        &data,
        &["--ca-cert", ca_arg, "identity", "--name", "T"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peer = uuid::Uuid::new_v4().to_string();
    let o = hush(
        &tls.url(),
        &data,
        &[
            "--ca-cert",
            ca_arg,
            "send",
            &peer,
            "over TLS",
            "--timeout",
            "30",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        relay.get(|s| &s.ws_upgrades) >= 1,
        "the WebSocket went through TLS"
    );
    assert_eq!(relay.get(|s| &s.messages_stored), 1);
}

/// The relay's own TLS (`--tls-cert`, `--tls-key`): no proxy in front; the
/// same private CA is refused by default and trusted with `--ca-cert`.
#[test]
fn the_relay_serves_https_and_wss_itself() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = self_signed(dir.path());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_hush"))
        .args(["relay", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("relay"))
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .env("HUSH_WORDS", WORDS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first:?}"))
        .replace("127.0.0.1", "localhost");
    assert!(url.starts_with("https://"), "{url}");
    let data = dir.path().join("data");
    let o = hush(&url, &data, &["identity", "--name", "T"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("TLS refused"),
        "an unknown CA must be refused: {err}"
    );
    let ca_arg = ca.to_str().unwrap();
    let o = hush(
        &url,
        &data,
        &["--ca-cert", ca_arg, "identity", "--name", "T"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let peer = uuid::Uuid::new_v4().to_string();
    let o = hush(
        &url,
        &data,
        &[
            "--ca-cert",
            ca_arg,
            "send",
            &peer,
            "over the relay's own TLS",
            "--timeout",
            "30",
        ],
    );
    let _ = relay.kill();
    let _ = relay.wait();
    assert!(
        o.status.success(),
        "wss send: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
