//! The windowed client: bevy_egui over the connection and messaging
//! plugins. Without `--server` it uses a local relay: one already running on
//! 127.0.0.1:8000–8009 (another hush window started it), or an embedded one
//! it starts on the first free port of that range.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bevy::prelude::*;
use bevy::window::WindowResolution;
use hush_chat::HushChatPlugin;
use hush_net::{HushNetPlugin, NetConfig, ServerUrl};
use hush_relay::{RelayConfig, RelayThread, Storage};
use hush_ui::{HushUiPlugin, UiConfig};
use zeroize::Zeroizing;

use crate::headless::open_profile;

/// The ports a local relay may be on.
pub const LOCAL_PORTS: std::ops::Range<u16> = 8000..8010;

pub struct WindowOptions {
    pub server: Option<String>,
    pub data_dir: PathBuf,
    pub profile: String,
    pub ca_cert: Option<Vec<u8>>,
    pub words: Option<Zeroizing<String>>,
    pub report: bool,
}

/// Whether a hush-relay answers `/health` at `addr`.
pub fn is_hush_relay(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(800)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.take(64 * 1024).read_to_string(&mut body);
    body.starts_with("HTTP/1.") && body.contains("\"healthy\"") && body.contains("\"relay\"")
}

/// A local relay to use: a running one, or a new embedded one.
fn local_relay(
    data_dir: &Path,
    words: Option<&Zeroizing<String>>,
) -> Result<(String, Option<RelayThread>), String> {
    for port in LOCAL_PORTS {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if is_hush_relay(addr) {
            return Ok((format!("http://{addr}"), None));
        }
    }
    let mut last = String::new();
    for port in LOCAL_PORTS {
        let config = RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            storage: Storage::SqliteDir(data_dir.join("relay")),
            words: words.cloned(),
            ..RelayConfig::default()
        };
        match RelayThread::spawn(config) {
            Ok(r) => return Ok((r.url(), Some(r))),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "could not start a local relay on ports 8000-8009: {last}"
    ))
}

/// A system font with wide Unicode coverage, if the machine has one.
fn system_font() -> Option<Vec<u8>> {
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
        "C:\\Windows\\Fonts\\seguisym.ttf",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok())
}

pub fn run(opts: WindowOptions) -> i32 {
    let (server, relay) = match &opts.server {
        Some(s) => (s.clone(), None),
        None => match local_relay(&opts.data_dir, opts.words.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("hush: {e}");
                return 1;
            }
        },
    };
    let url = match ServerUrl::parse(&server) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("hush: {e}");
            return 2;
        }
    };
    let store = match open_profile(&opts.data_dir, &opts.profile) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hush: {e}");
            return 1;
        }
    };
    // Words the user gave (HUSH_WORDS) need no "write these down" step.
    let new_words = relay
        .as_ref()
        .and_then(|r| r.new_words.clone())
        .filter(|_| opts.words.is_none());
    if relay.is_some() {
        eprintln!(
            "hush: using an embedded relay at {server} (data in {})",
            opts.data_dir.join("relay").display()
        );
    }
    let mut config = NetConfig::new(url);
    config.ca_cert_pem = opts.ca_cert.clone();
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: format!("hush — {}", opts.profile),
            resolution: WindowResolution::new(1100, 720),
            ..default()
        }),
        ..default()
    }))
    .add_plugins(HushNetPlugin { config })
    .add_plugins(HushChatPlugin { store })
    .insert_resource(UiConfig {
        server,
        profile: opts.profile.clone(),
        data_dir: opts.data_dir.display().to_string(),
        new_words,
        auto_words: opts.words,
        report: opts.report,
        fallback_font: system_font(),
    })
    .add_plugins(HushUiPlugin);
    let exit = app.run();
    drop(relay);
    match exit {
        AppExit::Success => 0,
        AppExit::Error(code) => code.get() as i32,
    }
}
