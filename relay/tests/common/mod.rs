//! Test harness: a real relay on 127.0.0.1:0 (SQLite in a temp dir, or a fresh
//! PostgreSQL database), raw HTTP and WebSocket clients.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hush_relay::{Relay, RelayConfig, Storage};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const WORDS: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestRelay {
    pub relay: Option<Relay>,
    pub base: String,
    pub ws: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub config: RelayConfig,
    pg: Option<(String, String)>,
}

/// Runs `f` against a relay on `backend` (rate limits off unless `tweak` sets them).
pub async fn start(backend: Backend, tweak: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = None;
    let storage = match backend {
        Backend::Sqlite => Storage::SqliteDir(dir.path().join("relay")),
        Backend::Postgres => {
            let admin = std::env::var("HUSH_TEST_DATABASE_URL")
                .expect("HUSH_TEST_DATABASE_URL must name a PostgreSQL database for these tests");
            let name = format!("hush_t_{}", uuid::Uuid::new_v4().simple());
            use sqlx::Connection;
            let mut c = sqlx::postgres::PgConnection::connect(&admin).await.unwrap();
            sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            c.close().await.unwrap();
            let (prefix, _) = admin.rsplit_once('/').unwrap();
            let url = format!("{prefix}/{name}");
            pg = Some((admin, name));
            Storage::Url(url)
        }
    };
    let mut config = RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage,
        words: Some(zeroize::Zeroizing::new(WORDS.to_owned())),
        rate_limits: None,
        ..RelayConfig::default()
    };
    tweak(&mut config);
    let relay = Relay::start(config.clone()).await.unwrap();
    let base = relay.url();
    let ws = format!("ws://{}/ws", relay.addr);
    TestRelay {
        relay: Some(relay),
        base,
        ws,
        http: reqwest::Client::new(),
        dir,
        config,
        pg,
    }
}

impl TestRelay {
    pub fn relay(&self) -> &Relay {
        self.relay.as_ref().unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.shutdown().await;
        }
    }

    /// Starts again on the same store (a new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        let relay = Relay::start(self.config.clone()).await.unwrap();
        self.base = relay.url();
        self.ws = format!("ws://{}/ws", relay.addr);
        self.relay = Some(relay);
    }

    pub async fn finish(mut self) {
        self.stop().await;
        if let Some((admin, name)) = self.pg.take() {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::postgres::PgConnection::connect(&admin).await {
                let _ = sqlx::Executor::execute(
                    &mut c,
                    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                )
                .await;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.http.delete(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn token(&self) -> String {
        let (s, v) = self
            .post("/api/auth", None, json!({ "words": WORDS }))
            .await;
        assert_eq!(s, 200, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Creates a thread (any sealed-looking blob will do for the server).
    pub async fn create_thread(&self, token: &str, id: &str) -> Value {
        create_thread_at(&self.http, &self.base, token, id).await
    }

    pub async fn ws_query(&self, token: &str) -> Ws {
        Ws::connect(&format!("{}?token={token}", self.ws), None).await
    }

    pub async fn ws_bearer(&self, token: &str) -> Ws {
        Ws::connect(&self.ws, Some(token)).await
    }
}

pub const IV: &str = "AAECAwQFBgcICQoL";

pub fn thread(n: u8) -> String {
    format!("{n:02x}000000-0000-4000-8000-0000000000{n:02x}")
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Ws {
    pub s: Stream,
}

/// What the client saw when the server ended the socket.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Close(u16, String),
    Dropped,
}

impl Ws {
    pub async fn connect(url: &str, bearer: Option<&str>) -> Ws {
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (s, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Ws { s }
    }

    pub async fn send(&mut self, v: Value) {
        self.s.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.s.send(m).await.unwrap();
    }

    /// The next frame that is not a heartbeat, within 5 s.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("a frame within the timeout")
    }

    pub async fn recv_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let m = tokio::time::timeout_at(deadline, self.s.next())
                .await
                .ok()??;
            match m.ok()? {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] != "heartbeat" {
                        return Some(v);
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Any frame, heartbeats included.
    pub async fn recv_any(&mut self, d: Duration) -> Option<Value> {
        let m = tokio::time::timeout(d, self.s.next()).await.ok()??;
        match m.ok()? {
            Message::Text(t) => Some(serde_json::from_str(t.as_str()).unwrap()),
            _ => None,
        }
    }

    /// Reads until the server ends the socket.
    pub async fn ended(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.s.next()).await {
                Err(_) => panic!("the server did not end the socket"),
                Ok(None) | Ok(Some(Err(_))) => return Ended::Dropped,
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    return Ended::Close(f.code.into(), f.reason.to_string());
                }
                Ok(Some(Ok(Message::Close(None)))) => return Ended::Dropped,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    pub async fn subscribe(&mut self, t: &str) {
        self.send(json!({ "type": "subscribe", "thread_id": t }))
            .await;
        let v = self.recv().await;
        assert_eq!(v, json!({ "type": "subscribed", "thread_id": t }));
    }
}

/// Declares `name::sqlite` and `name::postgres` tests from one async fn.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set HUSH_TEST_DATABASE_URL and run with --ignored (scripts/test does)"]
            async fn postgres() {
                super::$name(super::common::Backend::Postgres).await
            }
        }
    )*};
}

/// The base URL a `hush-relay` process prints first (`listening on URL`).
pub fn listening_url(child: &mut std::process::Child) -> String {
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout piped")),
        &mut first,
    )
    .unwrap();
    first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned()
}

/// Creates thread `id` on the relay at `base` (any sealed-looking blob will
/// do for the server) and returns the created thread.
pub async fn create_thread_at(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let r = http
        .post(format!("{base}/api/threads"))
        .bearer_auth(token)
        .json(&json!({ "id": id, "ciphertext": "bWV0YQ==", "iv": IV }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{v}");
    v
}

/// A token for the test words from the relay at `base`.
pub async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let v: Value = http
        .post(format!("{base}/api/auth"))
        .json(&json!({ "words": WORDS }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_owned()
}
