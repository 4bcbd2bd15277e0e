//! What tests do over the relay's REST API by hand, as the stock web client
//! would: create a thread, post a message, count a thread's messages. Each
//! asserts the status the protocol promises.

use std::fmt::Display;

use serde_json::{Value, json};

use crate::relay::RelayFixture;

/// An IV that looks like one (12 bytes, base64); the relay does not read it.
pub const IV: &str = "AAECAwQFBgcICQoL";

/// A signed-in REST client of one relay. It can move to another thread.
#[derive(Clone)]
pub struct Rest {
    url: String,
    token: String,
    client: reqwest::blocking::Client,
}

impl RelayFixture {
    pub fn rest(&self) -> Rest {
        Rest {
            url: self.url(),
            token: self.token(),
            client: reqwest::blocking::Client::new(),
        }
    }
}

impl Rest {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().expect("the relay answers");
        let status = resp.status().as_u16();
        let text = resp.text().expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates the thread (its metadata blob is not read by the relay).
    pub fn create_thread(&self, t: impl Display) {
        let body = json!({ "id": t.to_string(), "ciphertext": "AAAA", "iv": IV });
        let (s, v) = self.call(reqwest::Method::POST, "/api/threads", Some(body));
        assert_eq!(s, 201, "creating thread {t}: {v}");
    }

    /// Posts a message (the relay broadcasts it) and returns it as stored.
    pub fn post_message(&self, t: impl Display, ciphertext: &str, iv: &str) -> Value {
        let body = json!({ "thread_id": t.to_string(), "ciphertext": ciphertext, "iv": iv });
        let (s, v) = self.call(reqwest::Method::POST, "/api/messages", Some(body));
        assert_eq!(s, 201, "posting to {t}: {v}");
        v
    }

    /// How many messages the relay stores in the thread.
    pub fn message_count(&self, t: impl Display) -> u64 {
        let (s, v) = self.call(
            reqwest::Method::GET,
            &format!("/api/messages/{t}/count"),
            None,
        );
        assert_eq!(s, 200, "counting {t}: {v}");
        v["count"].as_u64().expect("a count")
    }
}
