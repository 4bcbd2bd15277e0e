//! The unit tests' client: the whole client below the UI on `MinimalPlugins`,
//! an in-memory store, a scripted network (`hush_net::scripted`) and a fast
//! stand-in for Argon2id, in virtual time. No relay, no sockets, no waiting:
//! the test plays the server between updates.

use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use hush_core::ThreadId;
use hush_core::crypto::{CryptoError, VaultKey};
use hush_core::http::{Health, RelayInfo, features};
use hush_core::wire::{ErrorFrame, MessageSent, ServerFrame, WireMessage};
use hush_net::kdf::Kdf;
use hush_net::scripted::{ScriptedNet, reply};
use hush_net::{ApiRequest, ApiResult, Connection, NetConfig, ServerUrl, SubState, Subscription};
use hush_store::{MemoryStore, Store};
use serde_json::{Value, json};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    AddContact, CreateIdentity, HushClientPlugins, Outbox, SendIntent, ThreadLog, ThreadSync,
    Threads, UnlockIntent, Vault, VaultState,
};

/// The contact most tests talk to.
pub const PEER: Uuid = Uuid::from_u128(0xbeef);

/// Virtual time of one update.
pub const TICK: Duration = Duration::from_millis(10);

/// A key from the words at once (the real derivation is tested in hush_core).
fn fast_kdf(words: &str, salt: &str) -> Result<VaultKey, CryptoError> {
    let mut b = [0u8; 32];
    for (i, c) in words.bytes().chain(salt.bytes()).enumerate() {
        b[i % 32] = b[i % 32].wrapping_mul(31).wrapping_add(c);
    }
    Ok(VaultKey::from_bytes(b))
}

pub struct Harness {
    pub app: App,
    pub net: ScriptedNet,
    pub store: Arc<dyn Store>,
    /// The same store, when it is the default in-memory one.
    pub memory: Option<Arc<MemoryStore>>,
}

impl Harness {
    /// A locked client on a fresh store.
    pub fn new() -> Self {
        let memory = Arc::new(MemoryStore::new());
        let mut h = Self::with_store(memory.clone());
        h.memory = Some(memory);
        h
    }

    pub fn with_store(store: Arc<dyn Store>) -> Self {
        let net = ScriptedNet::new();
        let mut config = NetConfig::new(ServerUrl::parse("http://scripted.test").unwrap());
        config.scripted = Some(net.clone());
        config.jitter_seed = Some(7);
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(HushClientPlugins {
                config,
                store: store.clone(),
            });
        app.insert_resource(Kdf(fast_kdf))
            .insert_resource(TimeUpdateStrategy::ManualDuration(TICK));
        crate::headless::single_threaded(&mut app);
        app.world_mut()
            .resource_mut::<Time<Virtual>>()
            .set_max_delta(Duration::from_secs(24 * 3600));
        app.update();
        Harness {
            app,
            net,
            store,
            memory: None,
        }
    }

    pub fn step(&mut self) {
        self.app.update();
    }

    pub fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.app.update();
        }
    }

    /// Updates until virtual time has moved on by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.app
            .insert_resource(TimeUpdateStrategy::ManualDuration(d));
        self.app.update();
        self.app
            .insert_resource(TimeUpdateStrategy::ManualDuration(TICK));
        self.app.update();
    }

    pub fn world(&self) -> &World {
        self.app.world()
    }

    pub fn write<M: Message>(&mut self, m: M) {
        self.app.world_mut().write_message(m);
    }

    /// Answers waiting requests, then lets the answers in.
    pub fn answer(&mut self, f: impl FnMut(&ApiRequest) -> Option<ApiResult>) -> usize {
        let n = self.net.answer(f);
        self.steps(2);
        n
    }

    /// A client unlocked as `name`, connected to an [ext] relay (every
    /// feature), with nothing else yet.
    pub fn unlocked(name: &str) -> Self {
        Self::unlocked_on(name, features::ALL)
    }

    /// The same, on a server with only these features (none: a stock server).
    pub fn unlocked_on(name: &str, server_features: &[&str]) -> Self {
        let mut h = Self::new();
        h.unlock();
        assert_eq!(h.vault().state, VaultState::NeedsIdentity);
        h.write(CreateIdentity {
            display_name: name.into(),
        });
        h.steps(2);
        assert_eq!(h.vault().state, VaultState::Unlocked);
        h.connect(server_features);
        h
    }

    /// Unlocks with the words, answering the client's `/api/auth`.
    fn unlock(&mut self) {
        self.write(UnlockIntent {
            words: Zeroizing::new("the words".into()),
        });
        self.steps(2);
        let answered = self.answer(|r| {
            (r.path == "/api/auth").then(|| {
                reply(
                    200,
                    json!({"token": "t0k", "kdf_salt": "c2FsdA==", "expires_in": 3600}),
                )
            })
        });
        assert_eq!(answered, 1, "the unlock asks /api/auth once");
        self.steps(2);
    }

    /// The same profile opened again, as after a restart, unlocked and not
    /// yet connected.
    pub fn reopened(&self) -> Harness {
        let mut h = Self::with_store(self.store.clone());
        h.memory = self.memory.clone();
        h.unlock();
        assert_eq!(h.vault().state, VaultState::Unlocked);
        h
    }

    /// Opens the socket the client is trying, on a server with these features.
    pub fn connect(&mut self, server_features: &[&str]) {
        self.connect_to(Health {
            status: "ok".into(),
            relay: (!server_features.is_empty()).then(|| RelayInfo {
                version: "test".into(),
                features: server_features.iter().map(|f| (*f).to_owned()).collect(),
                ..RelayInfo::default()
            }),
        });
    }

    /// Opens the socket the client is trying, on a server that says this.
    pub fn connect_to(&mut self, health: Health) {
        self.steps(2);
        assert!(self.net.open(health), "no socket attempt to open");
        self.steps(2);
        assert!(self.conn().is_connected(), "{:?}", self.conn().state());
    }

    /// The socket drops; virtual time runs until the client tries again,
    /// and that socket opens (same server features as before: all).
    pub fn reconnect(&mut self) {
        self.drop_and_wait();
        self.connect(features::ALL);
    }

    /// The socket drops; virtual time runs until the client tries again.
    pub fn drop_and_wait(&mut self) {
        let attempts = self.net.attempts();
        assert!(self.net.drop_socket());
        self.steps(2);
        for _ in 0..120 {
            if self.net.attempts() > attempts {
                break;
            }
            self.advance(Duration::from_millis(500));
        }
        assert!(self.net.attempts() > attempts, "no new attempt in 60 s");
    }

    pub fn vault(&self) -> &Vault {
        self.world().resource::<Vault>()
    }

    pub fn conn(&self) -> &Connection {
        self.world().resource::<Connection>()
    }

    pub fn outbox(&self) -> &Outbox {
        self.world().resource::<Outbox>()
    }

    pub fn me(&self) -> Uuid {
        self.vault().my_id().unwrap()
    }

    /// Adds `peer` as a contact; its thread.
    pub fn add_contact(&mut self, peer: Uuid, name: &str) -> ThreadId {
        self.write(AddContact {
            user_id: peer.to_string(),
            display_name: name.into(),
        });
        self.steps(3);
        let t = ThreadId::for_pair(&self.me(), &peer);
        assert!(self.world().resource::<Threads>().entity(t).is_some());
        t
    }

    /// Adds `peer` and plays the server until the thread is subscribed,
    /// exists on the server and is caught up with `history` (one page).
    pub fn ready_thread(&mut self, peer: Uuid, history: Vec<WireMessage>) -> ThreadId {
        let t = self.add_contact(peer, "Peer");
        // Created on the server (what the first send would ask for).
        self.write(crate::threads::EnsureThread(t));
        self.steps(2);
        let n = self.answer(|r| (r.path == "/api/threads").then(|| reply(201, thread_row(t))));
        assert_eq!(n, 1, "one create asked");
        assert!(self.sync(t).machine.on_server());
        self.subscribed(t);
        let page = history.clone();
        let n = self.answer(|r| {
            r.path
                .starts_with(&format!("/api/messages/{t}"))
                .then(|| reply(200, json!(page)))
        });
        assert_eq!(n, 1, "one history page asked");
        assert!(self.sync(t).is_caught_up(self.conn().generation()));
        t
    }

    /// The server answers the subscribe of `t`.
    pub fn subscribed(&mut self, t: ThreadId) {
        self.steps(2);
        let subs = self.sent_of("subscribe");
        assert!(
            subs.iter().any(|f| f["thread_id"] == json!(t)),
            "no subscribe sent for {t}"
        );
        self.net.frame(ServerFrame::Subscribed { thread_id: t });
        self.steps(2);
        assert_eq!(self.subscription(t).state, SubState::Subscribed);
    }

    fn entity(&self, t: ThreadId) -> Entity {
        self.world().resource::<Threads>().entity(t).unwrap()
    }

    pub fn sync(&self, t: ThreadId) -> &ThreadSync {
        self.world().get::<ThreadSync>(self.entity(t)).unwrap()
    }

    pub fn log(&self, t: ThreadId) -> &ThreadLog {
        self.world().get::<ThreadLog>(self.entity(t)).unwrap()
    }

    pub fn subscription(&self, t: ThreadId) -> &Subscription {
        self.world().get::<Subscription>(self.entity(t)).unwrap()
    }

    /// Frames sent since the last look, of this `type`.
    pub fn sent_of(&mut self, kind: &str) -> Vec<Value> {
        self.net
            .sent()
            .into_iter()
            .filter(|f| f["type"] == kind)
            .collect()
    }

    /// Answers the waiting history request with this status and body.
    pub fn answer_history(&mut self, status: u16, body: Value) -> usize {
        self.answer(|r| {
            r.path
                .starts_with("/api/messages/")
                .then(|| reply(status, body.clone()))
        })
    }

    /// Sends `text` to [`PEER`]; the one message frame that went out.
    pub fn send_one(&mut self, text: &str) -> Value {
        self.send(PEER, text);
        let mut sent = self.sent_of("message");
        assert_eq!(sent.len(), 1, "one message frame");
        sent.remove(0)
    }

    /// The server refuses a sent frame with this [ext] code.
    pub fn refuse(&mut self, sent: &Value, message: &str, code: &str) {
        let t = ThreadId::parse(sent["thread_id"].as_str().unwrap()).unwrap();
        let cmid = sent["client_message_id"].as_str();
        self.net.frame(error(message, Some(code), cmid, Some(t)));
        self.steps(2);
    }

    pub fn send(&mut self, to: Uuid, text: &str) {
        self.write(SendIntent {
            to,
            text: text.into(),
        });
        self.steps(2);
    }

    /// A message sealed as `from` (named `name`) would seal it to us in `t`.
    pub fn sealed_from(
        &self,
        from: Uuid,
        t: ThreadId,
        id: &str,
        at: &str,
        text: &str,
    ) -> WireMessage {
        let key = self.vault().thread_key(&from).unwrap();
        let sealed = key.seal_json(&hush_core::payload::MessagePayload {
            sender_id: from,
            sender_name: "Peer".into(),
            content: text.into(),
            timestamp: 1,
        });
        WireMessage {
            id: id.into(),
            thread_id: t,
            ciphertext: sealed.ciphertext,
            iv: sealed.iv,
            created_at: at.into(),
            client_message_id: None,
        }
    }
}

/// A thread row as the server lists it.
pub fn thread_row(t: ThreadId) -> Value {
    json!({"id": t, "ciphertext": "bWV0YQ==", "iv": "aXYtaXYtaXYtaXY=", "created_at": "2026-01-01T00:00:00Z"})
}

/// The server stores a sent frame: its echo to subscribers.
pub fn echo_of(sent: &Value, id: &str, at: &str) -> ServerFrame {
    ServerFrame::Message(WireMessage {
        id: id.into(),
        thread_id: ThreadId::parse(sent["thread_id"].as_str().unwrap()).unwrap(),
        ciphertext: sent["ciphertext"].as_str().unwrap().into(),
        iv: sent["iv"].as_str().unwrap().into(),
        created_at: at.into(),
        client_message_id: sent["client_message_id"].as_str().map(Into::into),
    })
}

/// The [ext] ack of a sent frame.
pub fn ack_of(sent: &Value, id: &str, at: &str) -> ServerFrame {
    ServerFrame::MessageSent(MessageSent {
        id: id.into(),
        thread_id: ThreadId::parse(sent["thread_id"].as_str().unwrap()).unwrap(),
        client_message_id: sent["client_message_id"].as_str().unwrap().into(),
        created_at: at.into(),
    })
}

/// An error frame.
pub fn error(
    message: &str,
    code: Option<&str>,
    cmid: Option<&str>,
    thread: Option<ThreadId>,
) -> ServerFrame {
    ServerFrame::Error(ErrorFrame {
        message: message.into(),
        code: code.map(Into::into),
        client_message_id: cmid.map(Into::into),
        thread_id: thread.map(|t| t.to_string()),
    })
}

/// The n-th second of the test's server clock.
pub fn at(n: u32) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60)
}
