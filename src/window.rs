//! The windowed client: bevy_egui over the connection and messaging
//! plugins. Without `--server` it uses the data directory's local relay
//! (`local_relay`): the one running for it, or one it starts.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::window::WindowResolution;
use hush_chat::HushClientPlugins;
use hush_net::{NetConfig, ServerList};
use hush_ui::{HushUiPlugin, UiConfig};
use zeroize::Zeroizing;

use crate::headless::open_profile;

pub struct WindowOptions {
    pub server: Option<String>,
    pub data_dir: PathBuf,
    pub profile: String,
    pub ca_cert: Option<Vec<u8>>,
    pub words: Option<Zeroizing<String>>,
    pub report: bool,
}

pub fn run(opts: WindowOptions) -> i32 {
    let (server, relay) = match &opts.server {
        Some(s) => (s.clone(), None),
        None => match crate::local_relay::find_or_start(&opts.data_dir) {
            Ok(r) => (r.url.clone(), Some(r)),
            Err(e) => {
                eprintln!("hush: {e}");
                return 1;
            }
        },
    };
    let url = match ServerList::parse(&server) {
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
            "hush: using the local relay at {server} (data in {})",
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
    .add_plugins(HushClientPlugins { config, store })
    .insert_resource(UiConfig {
        server,
        profile: opts.profile.clone(),
        data_dir: opts.data_dir.display().to_string(),
        new_words,
        auto_words: opts.words,
        report: opts.report,
        report_frames: opts.report && std::env::var_os("HUSH_REPORT_FRAMES").is_some(),
        fallback_fonts: Vec::new(),
    })
    .add_plugins(HushUiPlugin)
    .add_plugins(crate::fonts::plugin)
    .add_plugins(crate::notify::plugin(format!("hush — {}", opts.profile)));
    // HUSH_RENDER=continuous draws every frame as games do (the idle
    // benchmark's baseline); otherwise the window sleeps while idle.
    if std::env::var("HUSH_RENDER").as_deref() != Ok("continuous") {
        app.add_plugins(hush_ui::reactive::plugin);
    }
    if relay.is_some() {
        app.add_plugins(crate::local_relay::plugin(
            opts.data_dir.clone(),
            app.world().resource::<UiConfig>().server.clone(),
        ));
    }
    let exit = app.run();
    match exit {
        AppExit::Success => 0,
        AppExit::Error(code) => code.get() as i32,
    }
}
