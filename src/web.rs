//! The client in a browser: the same plugins over IndexedDB, the browser's
//! WebSocket and fetch. The server is the page's own origin (hush-relay
//! serves the bundle), unless `?server=URL` says otherwise (several nodes:
//! `?server=URL,URL`); `?profile=NAME` picks the profile (default
//! `default`); `?report=1` logs progress lines (`connected`, `shown N`,
//! `pending N`) to the console for scripts.

use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use hush_chat::{HushClientPlugins, StoreFailed};
use hush_net::{NetConfig, NextUpdate, ServerList};
use hush_store::WebStore;
use hush_ui::{HushUiPlugin, UiConfig};

fn params() -> (String, String, bool) {
    let window = web_sys::window().expect("a browser window");
    let loc = window.location();
    let origin = loc
        .origin()
        .unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let search = loc.search().unwrap_or_default();
    let q = web_sys::UrlSearchParams::new_with_str(&search).ok();
    let get = |k: &str| q.as_ref().and_then(|q| q.get(k)).filter(|v| !v.is_empty());
    let profile: String = get("profile")
        .unwrap_or_else(|| "default".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    (
        get("server").unwrap_or(origin),
        profile,
        get("report").is_some(),
    )
}

fn fail(msg: &str) {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("status"))
    {
        el.set_text_content(Some(msg));
    }
    hush_ui::report_line(msg);
}

/// Starts the client in the page's `<canvas id="hush">`.
pub fn start() {
    console_error_panic_hook::set_once();
    let (server, profile, report) = params();
    let url = match ServerList::parse(&server) {
        Ok(u) => u,
        Err(e) => return fail(&format!("hush: {e}")),
    };
    wasm_bindgen_futures::spawn_local(async move {
        // Every tab runs; the one holding the profile's lock sends.
        let claim = crate::web_tabs::claim_profile(&profile).await;
        let store = match WebStore::open(&profile).await {
            Ok(s) => Arc::new(s),
            Err(e) => return fail(&format!("hush: cannot open the browser storage: {e}")),
        };
        let tabs = crate::web_tabs::plugin(claim, store.clone(), report);
        let browser_store = BrowserStore(store.clone());
        let title = format!("hush — {profile}");
        let mut app = App::new();
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: title.clone(),
                canvas: Some("#hush".into()),
                fit_canvas_to_parent: true,
                ..default()
            }),
            ..default()
        }))
        .add_plugins(HushClientPlugins {
            config: NetConfig::new(url),
            store,
        })
        .add_plugins(tabs)
        .insert_resource(UiConfig {
            server,
            profile,
            data_dir: "this browser (IndexedDB)".into(),
            new_words: None,
            auto_words: None,
            report,
            report_frames: false,
            fallback_fonts: Vec::new(),
        })
        .add_plugins(HushUiPlugin)
        .add_plugins(crate::notify::plugin(title))
        .add_plugins(crate::web_text::plugin("#hush"))
        .add_plugins(crate::web_fonts::plugin)
        .add_plugins(hush_ui::reactive::plugin)
        .insert_resource(browser_store)
        .add_systems(Last, watch_browser_store);
        app.run();
    });
}

/// The browser's store writes behind the app.
#[derive(Resource)]
struct BrowserStore(Arc<WebStore>);

/// A write the browser's store could not make (a full quota) is kept and
/// tried again by the store; this shows it, once per new reason.
fn watch_browser_store(
    store: Res<BrowserStore>,
    mut shown: Local<Option<String>>,
    mut out: MessageWriter<StoreFailed>,
    mut next: ResMut<NextUpdate>,
) {
    let failure = store.0.write_failure();
    if failure != *shown {
        if let Some(f) = &failure {
            out.write(StoreFailed::retrying("keep this tab's data", f.clone()));
        }
        *shown = failure;
    }
    // Writes end, or fail, between updates: look again while any wait.
    if !store.0.is_flushed() {
        next.within(Duration::from_secs(1));
    }
}
