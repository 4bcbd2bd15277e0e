//! A relay fixture on its own runtime, with its data in a temp dir, that can
//! be stopped and restarted on the same port.

use std::net::SocketAddr;
use std::path::PathBuf;

use hush_relay::{RelayConfig, RelayThread, Stats, Storage};

pub struct RelayFixture {
    relay: Option<RelayThread>,
    pub addr: SocketAddr,
    pub config: RelayConfig,
    pub dir: tempfile::TempDir,
}

impl RelayFixture {
    /// A relay on 127.0.0.1:0 with rate limits off and the fixture words.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(tweak: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = RelayConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            storage: Storage::SqliteDir(dir.path().join("relay")),
            words: Some(zeroize::Zeroizing::new(crate::WORDS.to_owned())),
            rate_limits: None,
            ..RelayConfig::default()
        };
        tweak(&mut config);
        let relay = RelayThread::spawn(config.clone()).expect("relay starts");
        let addr = relay.addr;
        // Restarts reuse the port the first start got.
        config.listen = addr;
        RelayFixture {
            relay: Some(relay),
            addr,
            config,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("relay")
    }

    pub fn is_running(&self) -> bool {
        self.relay.is_some()
    }

    fn running(&self) -> &RelayThread {
        self.relay.as_ref().expect("the relay is running")
    }

    pub fn stats(&self) -> &Stats {
        self.running().stats()
    }

    pub fn get(&self, c: impl Fn(&Stats) -> &std::sync::atomic::AtomicU64) -> u64 {
        Stats::get(c(self.stats()))
    }

    /// A valid token (issued without the words).
    pub fn token(&self) -> String {
        self.running().test_token().to_owned()
    }

    pub fn kdf_salt(&self) -> String {
        self.running().kdf_salt.clone()
    }

    /// Stops it (graceful: close frames are not sent, sockets just end).
    pub fn stop(&mut self) {
        if let Some(r) = self.relay.take() {
            r.stop();
        }
    }

    /// Stops it like a crash.
    pub fn kill(&mut self) {
        if let Some(r) = self.relay.take() {
            r.kill();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = None;
        // The port may take a moment to be free again.
        for _ in 0..50 {
            match RelayThread::spawn(self.config.clone()) {
                Ok(r) => {
                    self.relay = Some(r);
                    return;
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
        panic!("relay did not restart: {last:?}");
    }
}
