//! Telling the user a message arrived while they look elsewhere: a desktop
//! notification (notify-rust: D-Bus `org.freedesktop.Notifications` on
//! Linux; in a browser the Notification API, whose permission is asked for
//! once the vault is unlocked), the unread count in the window title (the
//! page's title in a browser), and the window's attention request (winit's;
//! Bevy's `Window` has none; none in a browser).
//!
//! A live message from someone else notifies unless it is in the open
//! thread of a focused window. Messages fetched by a catch-up do not: a
//! device that was away for a week would otherwise get a notification per
//! page of history. They still count as unread.

use std::collections::BTreeMap;

#[cfg(not(target_arch = "wasm32"))]
use bevy::ecs::system::NonSendMarker;
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use hush_chat::threads::{Focused, Request, Thread, Unread};
use hush_chat::{MessageReceived, Prefs, Threads};
use hush_core::ThreadId;

/// The longest text a notification shows, in characters.
pub const MAX_BODY_CHARS: usize = 200;

/// Whether a received message gets a notification.
pub fn notifies(prefs: &hush_store::Prefs, m: &MessageReceived, in_view: bool) -> bool {
    !prefs.notifications_off && m.live && !m.message.mine && !in_view
}

/// The summary (the sender) and body of the notification of `count` new
/// messages in one thread, `last` being the newest one's text.
pub fn notification_text(
    prefs: &hush_store::Prefs,
    sender: &str,
    last: &str,
    count: usize,
) -> (String, String) {
    let body = if prefs.notification_text_hidden {
        match count {
            1 => "New message".to_owned(),
            n => format!("{n} new messages"),
        }
    } else {
        let text = if last.is_empty() {
            "A message that could not be decrypted".to_owned()
        } else {
            let mut t: String = last.chars().take(MAX_BODY_CHARS).collect();
            if t.len() < last.len() {
                t.push('…');
            }
            t
        };
        match count {
            1 => text,
            n => format!("{text}\n(+{} more)", n - 1),
        }
    };
    (sender.to_owned(), body)
}

/// The window title with `unread` messages waiting: `(3) hush — alice`.
pub fn title(base: &str, unread: u32) -> String {
    match unread {
        0 => base.to_owned(),
        n => format!("({n}) {base}"),
    }
}

/// Shows notifications from a thread of its own: a D-Bus call may block.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Resource)]
struct Notifier(crossbeam_channel::Sender<(String, String)>);

#[cfg(not(target_arch = "wasm32"))]
impl Notifier {
    fn start() -> Notifier {
        let (tx, rx) = crossbeam_channel::unbounded::<(String, String)>();
        let spawned = std::thread::Builder::new()
            .name("hush-notify".into())
            .spawn(move || show_all(rx));
        if let Err(e) = spawned {
            tracing::warn!("no desktop notifications: {e}");
        }
        Notifier(tx)
    }

    fn show(&self, summary: String, body: String) {
        let _ = self.0.send((summary, body));
    }
}

/// The browser's Notification API (shown only once permitted).
#[cfg(target_arch = "wasm32")]
#[derive(Resource)]
struct Notifier;

#[cfg(target_arch = "wasm32")]
impl Notifier {
    fn start() -> Notifier {
        Notifier
    }

    fn show(&self, summary: String, body: String) {
        use web_sys::{Notification, NotificationOptions, NotificationPermission};
        if Notification::permission() != NotificationPermission::Granted {
            return;
        }
        let opts = NotificationOptions::new();
        opts.set_body(&body);
        opts.set_tag("hush");
        if let Err(e) = Notification::new_with_options(&summary, &opts) {
            tracing::warn!("could not show a notification: {e:?}");
        }
    }
}

/// Asks the browser for permission to notify, once, when the vault is
/// first unlocked (not before: the page has not been used yet).
#[cfg(target_arch = "wasm32")]
fn ask_permission(vault: Res<hush_chat::Vault>, prefs: Res<Prefs>, mut asked: Local<bool>) {
    use web_sys::{Notification, NotificationPermission};
    if *asked || !vault.is_unlocked() || prefs.notifications_off {
        return;
    }
    *asked = true;
    if Notification::permission() == NotificationPermission::Default {
        let _ = Notification::request_permission();
    }
}

/// The title without a count.
#[derive(Resource)]
struct BaseTitle(String);

/// Messages that arrived in the open thread while the window was not
/// focused: unread for the title, though the thread's own count stays 0.
#[derive(Resource, Default)]
struct Away(u32);

/// A notification was shown while the window was not focused.
#[derive(Resource, Default)]
struct WantsAttention(bool);

/// The plugin, for the native window (`base_title`: its title).
pub fn plugin(base_title: String) -> impl Fn(&mut App) {
    move |app: &mut App| {
        app.insert_resource(Notifier::start())
            .insert_resource(BaseTitle(base_title.clone()))
            .init_resource::<Away>()
            .init_resource::<WantsAttention>()
            .add_systems(
                Update,
                (notify_arrivals, update_title, request_attention)
                    .chain()
                    .in_set(hush_chat::ChatSystems::Present),
            );
        #[cfg(target_arch = "wasm32")]
        app.add_systems(Update, ask_permission);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn show_all(rx: crossbeam_channel::Receiver<(String, String)>) {
    let mut warned = false;
    for (summary, body) in rx {
        let shown = notify_rust::Notification::new()
            .appname("hush")
            .summary(&summary)
            .body(&body)
            .icon("mail-message-new")
            .show();
        match shown {
            Ok(_) => warned = false,
            // Once per outage, and never with the text.
            Err(e) if !warned => {
                warned = true;
                tracing::warn!("could not show a desktop notification: {e}");
            }
            Err(_) => {}
        }
    }
}

#[expect(clippy::too_many_arguments, reason = "a system's parameters")]
fn notify_arrivals(
    mut received: MessageReader<MessageReceived>,
    threads: Res<Threads>,
    rows: Query<(&Thread, Has<Focused>, Option<&Request>)>,
    windows: Query<&Window, With<PrimaryWindow>>,
    prefs: Res<Prefs>,
    notifier: Res<Notifier>,
    mut away: ResMut<Away>,
    mut attention: ResMut<WantsAttention>,
) {
    let focused = windows.iter().any(|w| w.focused);
    if focused {
        away.0 = 0;
    }
    // One notification per thread per update: a burst is one, with a count.
    let mut per_thread: BTreeMap<ThreadId, (String, String, usize)> = BTreeMap::new();
    for m in received.read() {
        let Some((thread, open, request)) = threads.entity(m.thread).and_then(|e| rows.get(e).ok())
        else {
            continue;
        };
        // An ignored request never notifies (a blocked sender has no thread).
        if request.is_some_and(|r| r.ignored) {
            continue;
        }
        if m.live && !m.message.mine && open && !focused {
            away.0 += 1;
        }
        if !notifies(&prefs, m, open && focused) {
            continue;
        }
        let e = per_thread
            .entry(m.thread)
            .or_insert_with(|| (thread.peer_name.clone(), String::new(), 0));
        e.1.clone_from(&m.message.content);
        e.2 += 1;
    }
    for (_, (sender, last, count)) in per_thread {
        let (summary, body) = notification_text(&prefs, &sender, &last, count);
        notifier.show(summary, body);
        if !focused {
            attention.0 = true;
        }
    }
}

fn update_title(
    mut windows: Query<&mut Window, With<PrimaryWindow>>,
    unread: Query<(&Unread, Option<&Request>)>,
    away: Res<Away>,
    base: Res<BaseTitle>,
) {
    let n = unread
        .iter()
        .filter(|(_, r)| !r.is_some_and(|r| r.ignored))
        .map(|(u, _)| u.0)
        .sum::<u32>()
        + away.0;
    let want = title(&base.0, n);
    for mut w in &mut windows {
        if w.title != want {
            w.title.clone_from(&want);
        }
    }
}

/// winit's windows live on the main thread (`NonSendMarker`).
#[cfg(not(target_arch = "wasm32"))]
fn request_attention(
    _main: NonSendMarker,
    mut attention: ResMut<WantsAttention>,
    windows: Query<Entity, With<PrimaryWindow>>,
) {
    if !std::mem::take(&mut attention.0) {
        return;
    }
    bevy::winit::WINIT_WINDOWS.with_borrow(|ws| {
        for e in &windows {
            if let Some(w) = ws.get_window(e) {
                w.request_user_attention(Some(winit::window::UserAttentionType::Informational));
            }
        }
    });
}

/// A page cannot ask for attention; the title's count does it.
#[cfg(target_arch = "wasm32")]
fn request_attention(mut attention: ResMut<WantsAttention>) {
    attention.0 = false;
}

#[cfg(test)]
mod tests {
    use hush_chat::{ChatMessage, MessageStatus};
    use hush_store::Prefs as P;

    use super::*;

    fn msg(live: bool, mine: bool) -> MessageReceived {
        MessageReceived {
            thread: ThreadId::parse("90b3f6e0-fe98-88c0-51f3-0305c43f6b8a").unwrap(),
            message: std::sync::Arc::new(ChatMessage {
                id: "m".into(),
                created_at: String::new(),
                micros: 0,
                sender_id: None,
                sender_name: "Cy".into(),
                content: "hi".into(),
                timestamp_ms: 0,
                mine,
                status: MessageStatus::Sent,
            }),
            live,
        }
    }

    #[test]
    fn only_live_messages_from_others_out_of_view_notify() {
        let on = P::default();
        assert!(notifies(&on, &msg(true, false), false));
        assert!(!notifies(&on, &msg(true, false), true), "in view");
        assert!(!notifies(&on, &msg(true, true), false), "my own");
        assert!(!notifies(&on, &msg(false, false), false), "caught up");
        let off = P {
            notifications_off: true,
            ..P::default()
        };
        assert!(!notifies(&off, &msg(true, false), false), "turned off");
    }

    #[test]
    fn the_text_is_shown_unless_hidden_and_long_texts_are_cut() {
        let on = P::default();
        assert_eq!(
            notification_text(&on, "Cy", "你好 🙂", 1),
            ("Cy".into(), "你好 🙂".into())
        );
        assert_eq!(notification_text(&on, "Cy", "last", 3).1, "last\n(+2 more)");
        let long = "é".repeat(500);
        let body = notification_text(&on, "Cy", &long, 1).1;
        assert_eq!(body.chars().count(), MAX_BODY_CHARS + 1);
        assert!(body.ends_with('…'));
        assert_eq!(
            notification_text(&on, "Cy", "", 1).1,
            "A message that could not be decrypted"
        );
        let hidden = P {
            notification_text_hidden: true,
            ..P::default()
        };
        assert_eq!(
            notification_text(&hidden, "Cy", "secret", 1),
            ("Cy".into(), "New message".into())
        );
        assert_eq!(
            notification_text(&hidden, "Cy", "secret", 4).1,
            "4 new messages"
        );
    }

    #[test]
    fn the_title_carries_the_unread_count() {
        assert_eq!(title("hush — a", 0), "hush — a");
        assert_eq!(title("hush — a", 3), "(3) hush — a");
    }
}
