//! hush's window: egui panels over the connection and messaging plugins. The
//! panels read the world through views and return intents; this plugin turns
//! intents into the plugins' messages. Nothing here does I/O.

pub mod keys;
pub mod model;
pub mod panels;
pub mod reactive;
pub mod theme;

#[cfg(not(target_arch = "wasm32"))]
use std::io::Write;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use hush_chat::threads::{Focused, Request, Thread, ThreadLog, Unread};
use hush_chat::{
    AddContact, Block, ChatSystems, ContactEvent, CreateIdentity, Discovery, Drafts, Find,
    FindInThread, IgnoreRequest, LoadOlder, LoadThrough, LockIntent, OutboxIntent, Prefs,
    RemoveContact, RenameContact, SendIntent, SetDraft, SetPrefs, StoreFailed, UnlockIntent, Vault,
    VaultEvent, VaultState,
};
use hush_core::http::ApiFailure;
use hush_net::{
    ConnState, Connection, ConnectionIntent, DisconnectReason, ServerList, Session, SessionError,
    SetServer,
};
use zeroize::Zeroizing;

use crate::model::{ChatView, Screen, StatusView, ThreadItem, ThreadView, UiIntent, UnlockStatus};
use crate::panels::app::{Frame, UiState, app};

/// What the window was started with.
#[derive(Resource)]
pub struct UiConfig {
    pub server: String,
    pub profile: String,
    pub data_dir: String,
    /// The words of a vault the embedded relay just created (shown once).
    pub new_words: Option<Zeroizing<String>>,
    /// Words to unlock with at start (from `HUSH_WORDS` / `--words-file`).
    pub auto_words: Option<Zeroizing<String>>,
    /// Print progress lines on stdout (`connected`, `shown N`) for scripts.
    pub report: bool,
    /// Also print `frame N` after every update (the idle benchmark).
    pub report_frames: bool,
    /// System fonts for the scripts egui's own fonts lack (CJK, Arabic,
    /// Hebrew…), used after them in this order. Taken once, at start.
    pub fallback_fonts: Vec<FallbackFont>,
}

/// A font the app found for the UI (the UI does no I/O itself).
pub struct FallbackFont {
    pub name: String,
    pub data: Vec<u8>,
    /// The face's index in a font collection (`.ttc`).
    pub index: u32,
}

/// egui's four fonts natively; in the browser the bundle carries one
/// (Ubuntu Light, UFL) for size.
pub fn base_fonts() -> egui::FontDefinitions {
    #[cfg(not(target_arch = "wasm32"))]
    return egui::FontDefinitions::default();
    #[cfg(target_arch = "wasm32")]
    {
        let mut fonts = egui::FontDefinitions::empty();
        fonts.font_data.insert(
            "ubuntu-light".into(),
            std::sync::Arc::new(egui::FontData::from_static(include_bytes!(
                "../../../assets/fonts/Ubuntu-Light.ttf"
            ))),
        );
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts
                .families
                .entry(family)
                .or_default()
                .push("ubuntu-light".into());
        }
        fonts
    }
}

/// egui's fonts with `fallbacks` after them in every family.
pub fn font_definitions(
    mut fonts: egui::FontDefinitions,
    fallbacks: Vec<FallbackFont>,
) -> egui::FontDefinitions {
    for f in fallbacks {
        let mut data = egui::FontData::from_owned(f.data);
        data.index = f.index;
        fonts
            .font_data
            .insert(f.name.clone(), std::sync::Arc::new(data));
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts
                .families
                .entry(family)
                .or_default()
                .push(f.name.clone());
        }
    }
    fonts
}

/// The window's form state, a resource.
#[derive(Resource, Default)]
pub struct UiRes(pub UiState);

pub struct HushUiPlugin;

impl Plugin for HushUiPlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(EguiPlugin::default())
            .add_plugins(keys::plugin)
            .init_resource::<UiRes>()
            // A person uses this app: auto-lock applies.
            .init_resource::<hush_chat::Attended>()
            .add_systems(Startup, setup)
            .add_systems(EguiPrimaryContextPass, draw)
            .add_systems(
                Update,
                (auto_unlock, follow_events, focus_a_thread, report_progress)
                    .chain()
                    .in_set(ChatSystems::Present),
            )
            .add_systems(Last, report_frames);
    }
}

fn setup(mut commands: Commands, config: Res<UiConfig>, mut ui: ResMut<UiRes>) {
    // egui smooths its own edges: multisampling only costs (4× the samples
    // under software GL, in a browser or lavapipe).
    commands.spawn((Camera2d, Msaa::Off));
    ui.0.unlock.server = config.server.clone();
}

/// The status indicator's view of the connection; `why`: the last failed
/// attempt's reason, in words.
pub fn status_view(state: &ConnState, now: std::time::Duration, why: Option<&str>) -> StatusView {
    match state {
        ConnState::Connected => StatusView::Connected,
        ConnState::Connecting { .. } => StatusView::Connecting,
        ConnState::Reconnecting { attempt, retry_at } => StatusView::Reconnecting {
            attempt: *attempt,
            retry_in: retry_at.saturating_sub(now).as_secs_f32(),
            why: why.map(str::to_owned),
        },
        ConnState::Disconnected { reason } => match reason {
            None | Some(DisconnectReason::ClientRequested) => StatusView::Idle,
            Some(DisconnectReason::AuthFailed(why)) => StatusView::Disconnected {
                reason: format!("sign-in refused ({why})"),
                retryable: false,
            },
            Some(DisconnectReason::Offline) => StatusView::Disconnected {
                reason: "offline".into(),
                retryable: true,
            },
            Some(DisconnectReason::GaveUp) => StatusView::Disconnected {
                reason: "stopped retrying".into(),
                retryable: true,
            },
        },
    }
}

fn session_note(s: &Session) -> Option<String> {
    match s.last_error.as_ref()? {
        SessionError::Rejected(
            f @ (ApiFailure::RateLimited { .. } | ApiFailure::Blocked { .. }),
        ) => Some(format!("{f}; trying again automatically")),
        SessionError::Network(e) => Some(format!("server unreachable: {e}")),
        _ => None,
    }
}

/// The unlock screen's view of the vault and session.
pub fn unlock_status(vault: &Vault, session: &Session) -> UnlockStatus {
    let mut st = UnlockStatus::default();
    if let VaultState::Unlocking { step, offline } = &vault.state {
        let mut busy = match step {
            hush_chat::vault::UnlockStep::Authenticating => {
                "Checking the words with the server…".to_owned()
            }
            hush_chat::vault::UnlockStep::DerivingKey => {
                "Deriving the vault key (Argon2id, 64 MiB)…".to_owned()
            }
        };
        if *offline {
            busy.push_str(" The server is unreachable: unlocking offline.");
        }
        st.busy = Some(busy);
        st.error = session_note(session);
    }
    if let Some(e) = &vault.error {
        st.error = Some(e.to_string());
    }
    st
}

#[derive(SystemParam)]
struct Writers<'w> {
    unlock: MessageWriter<'w, UnlockIntent>,
    identity: MessageWriter<'w, CreateIdentity>,
    contact: MessageWriter<'w, AddContact>,
    send: MessageWriter<'w, SendIntent>,
    outbox: MessageWriter<'w, OutboxIntent>,
    older: MessageWriter<'w, LoadOlder>,
    conn: MessageWriter<'w, ConnectionIntent>,
    lock: MessageWriter<'w, LockIntent>,
    draft: MessageWriter<'w, SetDraft>,
    prefs: MessageWriter<'w, SetPrefs>,
    server: MessageWriter<'w, SetServer>,
    active: MessageWriter<'w, hush_chat::UserActive>,
    ignore: MessageWriter<'w, IgnoreRequest>,
    find: MessageWriter<'w, FindInThread>,
    through: MessageWriter<'w, LoadThrough>,
    block: MessageWriter<'w, Block>,
    rename: MessageWriter<'w, RenameContact>,
    remove: MessageWriter<'w, RemoveContact>,
}

/// What the connection details are made of.
#[derive(SystemParam)]
struct DetailsSources<'w> {
    outbox: Res<'w, hush_chat::Outbox>,
    catchup: Res<'w, hush_chat::LastCatchup>,
    net: Res<'w, hush_net::NetConfig>,
    find: Res<'w, Find>,
}

type ThreadRows<'w, 's> = Query<
    'w,
    's,
    (
        Entity,
        &'static Thread,
        &'static ThreadLog,
        &'static Unread,
        Has<Focused>,
        Option<&'static Request>,
    ),
>;

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn draw(
    mut contexts: EguiContexts,
    mut ui_res: ResMut<UiRes>,
    mut config: ResMut<UiConfig>,
    vault: Res<Vault>,
    conn: Res<Connection>,
    session: Res<Session>,
    time: Res<Time>,
    real: Res<Time<Real>>,
    threads: ThreadRows,
    drafts: Res<Drafts>,
    prefs: Res<Prefs>,
    discovery: Res<Discovery>,
    sources: DetailsSources,
    mut store_failed: MessageReader<StoreFailed>,
    mut commands: Commands,
    mut w: Writers,
) -> Result {
    if let Some(f) = store_failed.read().last() {
        ui_res.0.storage_error = Some((format!("{}: {}", f.what, f.error), f.retrying));
    }
    let ctx = contexts.ctx_mut()?;
    if ctx.input(|i| {
        i.events.iter().any(|e| {
            matches!(
                e,
                egui::Event::Key { .. }
                    | egui::Event::Text(_)
                    | egui::Event::PointerButton { .. }
                    | egui::Event::PointerMoved(_)
                    | egui::Event::MouseWheel { .. }
                    | egui::Event::Touch { .. }
            )
        })
    }) {
        w.active.write(hush_chat::UserActive);
    }
    if !ui_res.0.style_set {
        ui_res.0.style_set = true;
        // A blinking cursor repaints twice a second for as long as a text
        // field has focus: a steady one costs nothing while idle.
        ctx.all_styles_mut(|s| s.visuals.text_cursor.blink = false);
    }
    if !ui_res.0.fonts_set {
        ui_res.0.fonts_set = true;
        let fallbacks = std::mem::take(&mut config.fallback_fonts);
        ctx.set_fonts(font_definitions(base_fonts(), fallbacks));
    }
    let screen = if config.new_words.is_some() && !ui_res.0.words_noted {
        Screen::NewVaultWords
    } else {
        match vault.state {
            VaultState::Locked | VaultState::Unlocking { .. } => Screen::Unlock,
            VaultState::NeedsIdentity => Screen::Identity,
            VaultState::Unlocked => Screen::Chat,
        }
    };
    let chat =
        (screen == Screen::Chat).then(|| {
            let identity = vault.identity.clone().expect("unlocked");
            let mut items: Vec<ThreadItem> = threads
                .iter()
                // An ignored request stays out of sight (`hush requests` lists it).
                .filter(|(.., r)| !r.is_some_and(|r| r.ignored))
                .map(|(_, t, log, unread, focused, request)| ThreadItem {
                    thread: t.id,
                    peer: t.peer,
                    name: t.peer_name.clone(),
                    unread: unread.0,
                    last_activity_ms: log.last_activity_ms(),
                    selected: focused,
                    preview: log
                        .messages
                        .last()
                        .map(|m| crate::model::preview(&m.content, m.mine, 40)),
                    request: request.is_some(),
                })
                .collect();
            items.sort_by(|a, b| {
                b.last_activity_ms
                    .cmp(&a.last_activity_ms)
                    .then(a.name.cmp(&b.name))
            });
            let open = threads.iter().find(|(.., focused, _)| *focused).map(
                |(_, t, log, _, _, request)| ThreadView {
                    thread: t.id,
                    peer: t.peer,
                    peer_name: t.peer_name.clone(),
                    log,
                    saved_draft: drafts.get(t.id),
                    request: request.is_some(),
                    find: (sources.find.thread == Some(t.id)).then(|| crate::model::FindView {
                        hits: &sources.find.hits,
                        searched: sources.find.searched,
                        complete: sources.find.complete,
                    }),
                },
            );
            ChatView {
                my_name: identity.display_name,
                my_id: identity.user_id,
                threads: items,
                open,
                offline: !conn.is_online(),
                max_ciphertext: conn.max_ciphertext(),
                requests_unsupported: discovery.unsupported == Some(true),
            }
        });
    let identity_error = vault.error.as_ref().map(|e| e.to_string());
    let frame = Frame {
        screen,
        status: status_view(conn.state(), time.elapsed(), conn.last_failure.as_deref()),
        unlock: unlock_status(&vault, &session),
        identity_error,
        new_words: config.new_words.as_deref().map(String::as_str),
        chat,
        profile: &config.profile,
        server: &config.server,
        data_dir: &config.data_dir,
        prefs: prefs.0,
        time: real.elapsed_secs_f64(),
        details: ui_res.0.details_open.then(|| {
            hush_chat::status::report_of(
                hush_chat::status::Parts {
                    server: &sources.net.server.to_string(),
                    conn: &conn,
                    outbox: &sources.outbox,
                    catchup: &sources.catchup,
                    now: time.elapsed(),
                },
                hush_chat::now_ms(),
            )
        }),
    };
    let mut root = egui::Ui::new(
        ctx.clone(),
        "hush".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );
    let intents = app(&mut root, &frame, &mut ui_res.0);
    drop(frame);
    for i in intents {
        match i {
            UiIntent::WordsNoted => {
                ui_res.0.words_noted = true;
                // Prefill the unlock form; the notice itself is gone for good.
                if let Some(words) = config.new_words.take() {
                    ui_res.0.unlock.words = words;
                }
            }
            UiIntent::Unlock { server, words } => {
                if server != config.server {
                    match ServerList::parse(&server) {
                        Ok(url) => {
                            w.server.write(SetServer(url));
                            config.server = server;
                        }
                        Err(e) => {
                            ui_res.0.unlock.words = Zeroizing::default();
                            tracing::warn!("bad server URL: {e}");
                            continue;
                        }
                    }
                }
                ui_res.0.unlock.words = Zeroizing::default();
                w.unlock.write(UnlockIntent { words });
            }
            UiIntent::CreateIdentity { name } => {
                w.identity.write(CreateIdentity { display_name: name });
            }
            UiIntent::AddContact { user_id, name } => {
                w.contact.write(AddContact {
                    user_id,
                    display_name: name,
                });
            }
            UiIntent::Select(t) => {
                for (e, thread, .., focused, _) in &threads {
                    if focused && thread.id != t {
                        commands.entity(e).remove::<Focused>();
                    } else if thread.id == t && !focused {
                        commands.entity(e).insert(Focused);
                    }
                }
            }
            UiIntent::Send { to, text } => {
                w.send.write(SendIntent { to, text });
            }
            UiIntent::RetrySend(seq) => {
                w.outbox.write(OutboxIntent::Retry(seq));
            }
            UiIntent::CancelSend(seq) => {
                w.outbox.write(OutboxIntent::Cancel(seq));
            }
            UiIntent::LoadOlder(t) => {
                w.older.write(LoadOlder(t));
            }
            UiIntent::RetryNow => {
                w.conn.write(ConnectionIntent::RetryNow);
            }
            UiIntent::MeasureRoundTrip => {
                w.conn.write(ConnectionIntent::MeasureRoundTrip);
            }
            UiIntent::Lock => {
                w.lock.write(LockIntent);
            }
            UiIntent::CopyToClipboard(s) => ctx.copy_text(s),
            UiIntent::SetPrefs(p) => {
                w.prefs.write(SetPrefs(p));
            }
            UiIntent::Draft { thread, text } => {
                w.draft.write(SetDraft {
                    thread,
                    text: Zeroizing::new(text),
                });
            }
            UiIntent::AcceptRequest { peer, name } => {
                w.contact.write(AddContact {
                    user_id: peer.to_string(),
                    display_name: name,
                });
            }
            UiIntent::IgnoreRequest(t) => {
                w.ignore.write(IgnoreRequest(t));
            }
            UiIntent::Find { thread, query } => {
                w.find.write(FindInThread { thread, query });
            }
            UiIntent::Reveal { thread, key } => {
                w.through.write(LoadThrough(thread, key));
            }
            UiIntent::Block(peer) => {
                w.block.write(Block {
                    user_id: peer,
                    blocked: true,
                });
            }
            UiIntent::RenameContact { peer, name } => {
                w.rename.write(RenameContact {
                    user_id: peer,
                    display_name: name,
                });
            }
            UiIntent::RemoveContact {
                peer,
                forget_history,
            } => {
                w.remove.write(RemoveContact {
                    user_id: peer,
                    forget_history,
                });
            }
        }
    }
    Ok(())
}

fn auto_unlock(
    mut config: ResMut<UiConfig>,
    vault: Res<Vault>,
    mut unlock: MessageWriter<UnlockIntent>,
) {
    if config.new_words.is_none()
        && vault.state == VaultState::Locked
        && vault.error.is_none()
        && let Some(words) = config.auto_words.take()
    {
        unlock.write(UnlockIntent { words });
    }
}

fn follow_events(
    mut ui: ResMut<UiRes>,
    mut contacts: MessageReader<ContactEvent>,
    mut vault: MessageReader<VaultEvent>,
) {
    for e in contacts.read() {
        if let ContactEvent::Rejected { error, .. } = e {
            ui.0.chat.add.error = Some(error.to_string());
        }
    }
    for e in vault.read() {
        if *e == VaultEvent::Locked {
            // Typed text leaves memory on a lock; drafts stay sealed in the
            // store (hush_chat::drafts) and come back at the next unlock.
            ui.0.chat = Default::default();
            ui.0.identity_name.clear();
        }
    }
}

/// A contact's thread: not a message request.
type ContactThreads = (With<Thread>, Without<Request>);

/// With nothing open, the most recently active contact's thread opens (a
/// request waits to be chosen).
fn focus_a_thread(
    mut commands: Commands,
    threads: Query<(Entity, &ThreadLog), ContactThreads>,
    focused: Query<(), (With<Thread>, With<Focused>)>,
) {
    if !focused.is_empty() {
        return;
    }
    if let Some((e, _)) = threads.iter().max_by_key(|(_, log)| log.last_activity_ms()) {
        commands.entity(e).insert(Focused);
    }
}

/// A progress line for scripts: stdout natively, the console in a browser.
pub fn report_line(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
}

/// `frame N` for every update, with `report_frames` (counts frames drawn).
fn report_frames(config: Res<UiConfig>, frames: Res<bevy::diagnostic::FrameCount>) {
    if config.report_frames {
        report_line(&format!("frame {}", frames.0));
    }
}

#[derive(Default)]
struct Reported {
    connected: bool,
    shown: usize,
    pending: usize,
    vault: String,
    contacts: usize,
}

fn report_progress(
    config: Res<UiConfig>,
    conn: Res<Connection>,
    vault: Res<Vault>,
    contacts: Res<hush_chat::Contacts>,
    open: Query<&ThreadLog, With<Focused>>,
    mut last: Local<Reported>,
) {
    if !config.report {
        return;
    }
    let v = match vault.state {
        VaultState::Locked => "locked",
        VaultState::Unlocking { .. } => "unlocking",
        VaultState::NeedsIdentity => "needs-identity",
        VaultState::Unlocked => "unlocked",
    };
    if last.vault != v {
        last.vault = v.to_owned();
        report_line(&format!("vault {v}"));
        if let (Some(me), VaultState::Unlocked) = (vault.my_id(), &vault.state) {
            report_line(&format!("me {me}"));
        }
        if let Some(e) = &vault.error {
            report_line(&format!("error {e}"));
        }
    }
    if contacts.list.len() != last.contacts {
        last.contacts = contacts.list.len();
        report_line(&format!("contacts {}", last.contacts));
    }
    if conn.is_connected() != last.connected {
        last.connected = conn.is_connected();
        report_line(if last.connected {
            "connected"
        } else {
            "disconnected"
        });
    }
    let shown = open.iter().map(|l| l.messages.len()).sum::<usize>();
    if shown != last.shown {
        last.shown = shown;
        report_line(&format!("shown {shown}"));
    }
    let pending = open.iter().map(|l| l.pending.len()).sum::<usize>();
    if pending != last.pending {
        last.pending = pending;
        report_line(&format!("pending {pending}"));
    }
}
