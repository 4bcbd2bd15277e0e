//! The panels without a GPU: egui_kittest drives them by label and role.

use std::sync::Arc;

use bevy_egui::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use hush_chat::threads::ThreadLog;
use hush_chat::{ChatMessage, LocalEcho, MessageStatus};
use hush_ui::model::{ChatView, StatusView, ThreadItem, ThreadView, UiIntent, UnlockStatus};
use hush_ui::panels::chat::{ChatState, screen, sidebar, thread};
use hush_ui::panels::composer::{Limit, composer};
use hush_ui::panels::forms::{UnlockForm, identity, unlock};
use hush_ui::panels::messages::{ListState, list};
use hush_ui::panels::status::{indicator, storage_banner};
use uuid::Uuid;

const WORDS: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

/// A chat panel's state and what it asked for, for the chat screen tests.
#[derive(Default)]
struct S {
    chat: ChatState,
    out: Vec<UiIntent>,
}

const LIMIT_32K: Limit<'static> = Limit {
    sender_name: "Ada",
    max_ciphertext: 32 * 1024,
};

fn disabled(h: &Harness<'_, impl Sized>, label: &str) -> bool {
    h.get_by_label(label).accesskit_node().is_disabled()
}

#[test]
fn unlock_counts_words_and_unlocks_only_with_twelve() {
    struct S {
        form: UnlockForm,
        status: UnlockStatus,
        out: Vec<UiIntent>,
    }
    let mut h = Harness::new_ui_state(
        |ui, s: &mut S| s.out.extend(unlock(ui, &mut s.form, &s.status)),
        S {
            form: UnlockForm {
                server: "http://127.0.0.1:8000".into(),
                ..Default::default()
            },
            status: UnlockStatus::default(),
            out: Vec::new(),
        },
    );
    assert!(h.query_by_label("0 / 12 words").is_some());
    assert!(disabled(&h, "Unlock"));
    let eleven: Vec<&str> = WORDS.split(' ').take(11).collect();
    h.get_by_label("Your 12 words").focus();
    h.get_by_label("Your 12 words")
        .type_text(&eleven.join("  "));
    h.run();
    assert!(h.query_by_label("11 / 12 words").is_some());
    assert!(disabled(&h, "Unlock"));
    // The field is masked.
    let shown = h.get_by_label("Your 12 words").value().unwrap_or_default();
    assert!(!shown.contains("abandon"), "words visible: {shown}");
    h.get_by_label("Your 12 words").type_text(" accident");
    h.run();
    assert!(h.query_by_label("12 / 12 words").is_some());
    assert!(!disabled(&h, "Unlock"));
    h.get_by_label("Unlock").click();
    h.run();
    let out = std::mem::take(&mut h.state_mut().out);
    match out.as_slice() {
        [UiIntent::Unlock { server, words }] => {
            assert_eq!(server, "http://127.0.0.1:8000");
            assert_eq!(hush_core::crypto::normalize_words(words).as_str(), WORDS);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unlock_shows_progress_and_precise_errors() {
    let status = UnlockStatus {
        busy: Some("Deriving the vault key (Argon2id, 64 MiB)…".into()),
        error: Some("rate limited: retry in 6 s; trying again automatically".into()),
    };
    let mut form = UnlockForm {
        server: "http://x".into(),
        words: zeroize::Zeroizing::new(WORDS.into()),
        show_words: false,
    };
    let h = Harness::new_ui(|ui| {
        unlock(ui, &mut form, &status);
    });
    assert!(
        h.query_by_label_contains("Deriving the vault key")
            .is_some()
    );
    assert!(h.query_by_label_contains("rate limited").is_some());
    assert!(disabled(&h, "Unlock"), "no second unlock while one runs");
    let wrong = UnlockStatus {
        busy: None,
        error: Some("wrong words (2 attempts left before a block)".into()),
    };
    let mut form = UnlockForm::default();
    let h = Harness::new_ui(|ui| {
        unlock(ui, &mut form, &wrong);
    });
    assert!(
        h.query_by_label("wrong words (2 attempts left before a block)")
            .is_some()
    );
}

#[test]
fn identity_name_is_validated_inline() {
    struct S {
        name: String,
        out: Vec<UiIntent>,
    }
    let mut h = Harness::new_ui_state(
        |ui, s: &mut S| s.out.extend(identity(ui, &mut s.name, None)),
        S {
            name: String::new(),
            out: Vec::new(),
        },
    );
    assert!(disabled(&h, "Create identity"));
    h.get_by_label("Display name").focus();
    h.get_by_label("Display name").type_text(&"x".repeat(51));
    h.run();
    assert!(h.query_by_label_contains("longer than 50").is_some());
    assert!(disabled(&h, "Create identity"));
    h.state_mut().name = "  Ada ".into();
    h.run();
    h.get_by_label("Create identity").click();
    h.run();
    assert_eq!(
        h.state().out,
        [UiIntent::CreateIdentity { name: "Ada".into() }]
    );
}

#[test]
fn the_status_indicator_shows_every_state() {
    let cases = [
        (StatusView::Connected, "Connected", false),
        (StatusView::Connecting, "Connecting…", false),
        (
            StatusView::Reconnecting {
                attempt: 3,
                retry_in: 3.2,
                why: None,
            },
            "Reconnecting… (attempt 3, retrying in 4 s)",
            true,
        ),
        (
            StatusView::Reconnecting {
                attempt: 2,
                retry_in: 1.5,
                why: Some("connection refused".into()),
            },
            "Reconnecting… (connection refused; attempt 2, retrying in 2 s)",
            true,
        ),
        (StatusView::Idle, "Not connected", false),
        (
            StatusView::Disconnected {
                reason: "offline".into(),
                retryable: true,
            },
            "Disconnected: offline",
            true,
        ),
        (
            StatusView::Disconnected {
                reason: "sign-in refused (wrong words)".into(),
                retryable: false,
            },
            "Disconnected: sign-in refused (wrong words)",
            false,
        ),
    ];
    for (view, label, retry) in cases {
        let mut out = Vec::new();
        // The reconnecting icon pulses (it keeps repainting): step, not run.
        let mut h = Harness::builder().with_max_steps(2).build_ui_state(
            |ui, out: &mut Vec<UiIntent>| out.extend(indicator(ui, &view, 0.0)),
            out,
        );
        assert!(h.query_by_label(label).is_some(), "{label}");
        assert_eq!(h.query_by_label("Retry now").is_some(), retry, "{label}");
        if retry {
            h.get_by_label("Retry now").click();
            h.step();
            out = std::mem::take(h.state_mut());
            assert_eq!(out, [UiIntent::RetryNow]);
        }
    }
}

fn message(i: usize, mine: bool, status: MessageStatus, content: &str) -> Arc<ChatMessage> {
    Arc::new(ChatMessage {
        id: format!("m{i}"),
        created_at: String::new(),
        micros: 1_795_000_000_000_000 + i as i64 * 1_000_000,
        sender_id: None,
        sender_name: if mine { "Me".into() } else { "Grace".into() },
        content: content.into(),
        timestamp_ms: 1_795_000_000_000 + i as i64 * 1000,
        mine,
        status,
    })
}

#[test]
fn message_statuses_and_failed_sends_can_be_retried_or_cancelled() {
    let log = ThreadLog {
        messages: vec![
            message(0, false, MessageStatus::Sent, "hello there"),
            message(1, true, MessageStatus::Sent, "hi back"),
            message(
                2,
                false,
                MessageStatus::Undecryptable("authentication failed".into()),
                "",
            ),
        ],
        pending: vec![
            LocalEcho {
                seq: 7,
                client_message_id: "c7".into(),
                content: "waiting".into(),
                timestamp_ms: 1,
                status: MessageStatus::Queued,
            },
            LocalEcho {
                seq: 8,
                client_message_id: "c8".into(),
                content: "on the wire".into(),
                timestamp_ms: 2,
                status: MessageStatus::Sending,
            },
            LocalEcho {
                seq: 9,
                client_message_id: "c9".into(),
                content: "too big".into(),
                timestamp_ms: 3,
                status: MessageStatus::Failed("payload too large".into()),
            },
        ],
        revision: 1,
        older: false,
    };
    struct S {
        list: ListState,
        out: Vec<UiIntent>,
    }
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(list(ui, tid(), &log, &mut s.list)),
            S {
                list: ListState::default(),
                out: Vec::new(),
            },
        );
    for l in [
        "hello there",
        "hi back",
        "sent",
        "queued",
        "sending…",
        "failed: payload too large",
        "This message could not be decrypted.",
    ] {
        assert!(h.query_by_label(l).is_some(), "{l} missing");
    }
    assert!(h.query_by_label("undecryptable").is_some());
    h.get_by_label("Retry").click();
    h.run();
    h.get_by_label("Cancel").click();
    h.run();
    assert_eq!(
        h.state().out,
        [UiIntent::RetrySend(9), UiIntent::CancelSend(9)]
    );
}

#[test]
fn a_huge_thread_lays_out_only_what_is_visible() {
    let log = ThreadLog {
        messages: (0..100_000)
            .map(|i| {
                message(
                    i,
                    i % 3 == 0,
                    MessageStatus::Sent,
                    &format!("message number {i}"),
                )
            })
            .collect(),
        pending: Vec::new(),
        revision: 1,
        older: false,
    };
    let mut st = ListState::default();
    let h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui(|ui| {
            list(ui, tid(), &log, &mut st);
        });
    // It sticks to the bottom: the newest message is visible, the oldest not.
    assert!(h.query_by_label("message number 99999").is_some());
    assert!(h.query_by_label("message number 0").is_none());
    let labels = h.query_all_by_label_contains("message number").count();
    assert!(labels > 3 && labels < 60, "{labels} rows laid out");
    drop(h);
    assert!(st.row_count() >= 100_000);
}

fn tid() -> hush_core::ThreadId {
    hush_core::ThreadId::parse("ab000000-0000-4000-8000-0000000000ab").unwrap()
}

fn numbered(range: std::ops::Range<usize>) -> Vec<Arc<ChatMessage>> {
    range
        .map(|i| {
            message(
                i,
                i % 3 == 0,
                MessageStatus::Sent,
                &format!("message number {i}"),
            )
        })
        .collect()
}

/// The mouse wheel, a long way up, and the scrolling settled.
fn scroll_to_top<S>(h: &mut Harness<'_, S>) {
    for _ in 0..40 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Page,
            delta: egui::vec2(0.0, 10.0),
            phase: egui::TouchPhase::Move,
            modifiers: egui::Modifiers::default(),
        });
        h.step();
    }
    h.run_steps(10);
}

#[test]
fn scrolled_to_the_top_it_asks_for_older_messages_and_keeps_the_view_in_place() {
    struct S {
        log: ThreadLog,
        list: ListState,
        out: Vec<UiIntent>,
    }
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(list(ui, tid(), &s.log, &mut s.list)),
            S {
                log: ThreadLog {
                    messages: numbered(300..500),
                    older: true,
                    revision: 1,
                    ..Default::default()
                },
                list: ListState::default(),
                out: Vec::new(),
            },
        );
    h.run_steps(4);
    assert!(h.query_by_label("message number 499").is_some());
    assert!(
        h.state().out.is_empty(),
        "at the bottom: {:?}",
        h.state().out
    );
    // The user scrolls all the way up.
    h.hover_at(egui::pos2(450.0, 350.0));
    scroll_to_top(&mut h);
    let oldest = h.get_by_label("message number 300").rect().top();
    assert!(
        h.state().out.contains(&UiIntent::LoadOlder(tid())),
        "{:?}",
        h.state().out
    );
    // The page before comes in: what was on screen stays where it was.
    let s = h.state_mut();
    s.log.messages.splice(0..0, numbered(100..300));
    s.log.revision += 1;
    s.out.clear();
    // On the first frame with the page in, and once its rows are measured.
    for steps in [1, 3] {
        h.run_steps(steps);
        let moved = h.get_by_label("message number 300").rect().top() - oldest;
        assert!(moved.abs() < 2.0, "the view jumped by {moved} points");
    }
    assert!(
        h.query_by_label_contains("new messages").is_none(),
        "older messages are not new ones"
    );
    assert!(h.query_by_label("message number 100").is_none());
    // Nothing older: no more asking, even at the top.
    let s = h.state_mut();
    s.log.older = false;
    s.log.revision += 1;
    scroll_to_top(&mut h);
    assert!(h.query_by_label("message number 100").is_some());
    h.state_mut().out.clear();
    h.run_steps(3);
    assert!(h.state().out.is_empty(), "{:?}", h.state().out);
}

#[test]
fn enter_sends_and_shift_enter_makes_a_new_line() {
    struct S {
        draft: String,
        out: Vec<UiIntent>,
    }
    let to = Uuid::new_v4();
    let mut h = Harness::new_ui_state(
        move |ui, s: &mut S| s.out.extend(composer(ui, &mut s.draft, to, LIMIT_32K)),
        S {
            draft: String::new(),
            out: Vec::new(),
        },
    );
    h.get_by_label("Message").focus();
    h.run();
    h.get_by_label("Message").type_text("first line");
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    h.get_by_label("Message").type_text("second line");
    h.run();
    assert!(h.state().out.is_empty());
    assert_eq!(h.state().draft, "first line\nsecond line");
    h.key_press(egui::Key::Enter);
    h.run();
    assert_eq!(
        h.state().out,
        [UiIntent::Send {
            to,
            text: "first line\nsecond line".into()
        }]
    );
    assert!(h.state().draft.is_empty());
    // An empty draft sends nothing.
    h.key_press(egui::Key::Enter);
    h.run();
    assert_eq!(h.state().out.len(), 1);
}

#[test]
fn a_text_over_the_limit_is_refused_inline_and_the_draft_stays() {
    struct S {
        draft: String,
        out: Vec<UiIntent>,
    }
    let to = Uuid::new_v4();
    let pasted = "a long paste ".repeat(40 * 1024 / 13);
    let mut h = Harness::new_ui_state(
        move |ui, s: &mut S| s.out.extend(composer(ui, &mut s.draft, to, LIMIT_32K)),
        S {
            draft: pasted.clone(),
            out: Vec::new(),
        },
    );
    h.get_by_label("Message").focus();
    h.run();
    h.key_press(egui::Key::Enter);
    h.run();
    h.get_by_label("Send").click();
    h.run();
    assert!(h.state().out.is_empty(), "nothing is sent");
    assert_eq!(h.state().draft, pasted, "the draft stays");
    assert!(
        h.query_by_label_contains("This message is 40 KB; the most a message can hold is 32 KB")
            .is_some(),
        "the reason is shown"
    );
}

#[test]
fn adding_a_contact_is_validated_inline() {
    let me = Uuid::new_v4();
    let known = Uuid::new_v4();
    let view = ChatView {
        my_name: "Ada".into(),
        my_id: me,
        threads: vec![ThreadItem {
            thread: hush_core::ThreadId::for_pair(&me, &known),
            peer: known,
            name: "Grace".into(),
            unread: 2,
            last_activity_ms: 1,
            selected: false,
            preview: Some("Are you there?".into()),
            request: false,
        }],
        open: None::<ThreadView<'_>>,
        offline: false,
        max_ciphertext: 1 << 20,
        requests_unsupported: false,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(300.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(sidebar(ui, &view, &mut s.chat)),
            S::default(),
        );
    assert!(
        h.query_by_label_contains("Grace   (2)").is_some(),
        "unread badge"
    );
    assert!(
        h.query_by_label_contains("Are you there?").is_some(),
        "the last message's preview"
    );
    assert!(disabled(&h, "Add contact"));
    for (id, msg) in [
        ("nope", "Not a UUID"),
        (me.to_string().as_str(), "That is your own UUID"),
        (known.to_string().as_str(), "Already a contact"),
    ] {
        h.state_mut().chat.add.user_id = id.to_owned();
        h.state_mut().chat.add.name = "X".into();
        h.run();
        assert!(h.query_by_label(msg).is_some(), "{msg}");
        assert!(disabled(&h, "Add contact"));
    }
    let new = Uuid::new_v4();
    h.state_mut().chat.add.user_id = format!(" {} ", new.to_string().to_uppercase());
    h.state_mut().chat.add.name = String::new();
    h.run();
    // Enter in the name field adds, like the button.
    h.get_by_label("Name").focus();
    h.run();
    h.get_by_label("Name").type_text("X");
    h.run();
    h.key_press(egui::Key::Enter);
    h.run();
    h.get_by_label("Copy my ID").click();
    h.run();
    assert!(
        h.query_by_label("Copied ✓").is_some(),
        "the copy is confirmed"
    );
    h.get_by_label_contains("Grace   (2)").click();
    h.run();
    let out = &h.state().out;
    assert_eq!(
        out[0],
        UiIntent::AddContact {
            user_id: new.to_string().to_uppercase(),
            name: "X".into()
        }
    );
    assert_eq!(out[1], UiIntent::CopyToClipboard(me.to_string()));
    assert!(matches!(out[2], UiIntent::Select(_)));
}

#[test]
fn a_refused_write_is_explained_until_dismissed() {
    let mut h = Harness::builder().build_ui_state(
        |ui, dismissed: &mut bool| {
            if !*dismissed {
                *dismissed = storage_banner(ui, "store messages: the disk is full", false);
            }
        },
        false,
    );
    h.run();
    let text = "Could not save to disk (store messages: the disk is full). Nothing is lost: \
                incoming messages are fetched again, and a message that could not be saved \
                was not sent. Free some space.";
    assert!(h.query_by_label(text).is_some());
    h.get_by_label("Dismiss").click();
    h.run();
    assert!(*h.state(), "dismissed");
    assert!(h.query_by_label(text).is_none());
}

#[test]
fn a_full_browser_store_says_that_nothing_is_lost_while_the_tab_is_open() {
    let h = Harness::new_ui(|ui| {
        storage_banner(
            ui,
            "keep this tab's data: the browser's storage for this site is full",
            true,
        );
    });
    let text = "Could not save in this browser (keep this tab's data: the browser's storage \
                for this site is full). Nothing is lost while this tab stays open: hush keeps \
                it and tries again every few seconds. Free some space for this site, or allow \
                it more, before you close the tab.";
    assert!(h.query_by_label(text).is_some());
}

#[test]
fn a_saved_draft_is_shown_and_every_change_is_kept() {
    let me = Uuid::new_v4();
    let peer = Uuid::new_v4();
    let t = hush_core::ThreadId::for_pair(&me, &peer);
    let log = ThreadLog::default();
    let view = ChatView {
        my_name: "Ada".into(),
        my_id: me,
        threads: vec![],
        open: Some(ThreadView {
            thread: t,
            peer,
            peer_name: "Grace".into(),
            log: &log,
            saved_draft: "typed before the restart",
            request: false,
            find: None,
        }),
        offline: false,
        max_ciphertext: 1 << 20,
        requests_unsupported: false,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(700.0, 500.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(thread(ui, &view, &mut s.chat, false)),
            S::default(),
        );
    h.run();
    assert_eq!(h.state().chat.drafts[&t], "typed before the restart");
    assert!(h.state().out.is_empty(), "showing it changes nothing");
    h.get_by_label("Message").focus();
    h.run();
    h.get_by_label("Message").type_text(", and more");
    h.run();
    let drafts: Vec<_> = h
        .state()
        .out
        .iter()
        .filter_map(|i| match i {
            UiIntent::Draft { thread, text } if *thread == t => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        drafts.last().map(String::as_str),
        Some("typed before the restart, and more")
    );
    // Sending clears it, and the cleared draft is kept too.
    h.key_press(egui::Key::Enter);
    h.run();
    let out = &h.state().out;
    assert!(
        matches!(out[out.len() - 2], UiIntent::Send { .. }),
        "{out:?}"
    );
    assert_eq!(
        out.last(),
        Some(&UiIntent::Draft {
            thread: t,
            text: String::new()
        })
    );
}

#[test]
fn notifications_are_on_by_default_and_each_setting_is_an_intent() {
    use hush_store::Prefs;
    use hush_ui::panels::app::notification_settings;
    struct S {
        prefs: Prefs,
        out: Vec<UiIntent>,
    }
    let mut h = Harness::new_ui_state(
        |ui, s: &mut S| s.out.extend(notification_settings(ui, s.prefs)),
        S {
            prefs: Prefs::default(),
            out: Vec::new(),
        },
    );
    h.run();
    let checked = |h: &Harness<'_, S>, label: &str| {
        h.get_by_label(label).accesskit_node().toggled() == Some(egui::accesskit::Toggled::True)
    };
    assert!(checked(&h, "Desktop notifications for new messages"));
    assert!(checked(&h, "Show the message text in notifications"));
    h.get_by_label("Show the message text in notifications")
        .click();
    h.run();
    let hidden = Prefs {
        notification_text_hidden: true,
        ..Prefs::default()
    };
    assert_eq!(h.state().out, [UiIntent::SetPrefs(hidden)]);
    h.state_mut().prefs = hidden;
    h.get_by_label("Desktop notifications for new messages")
        .click();
    h.run();
    assert_eq!(
        h.state().out.last(),
        Some(&UiIntent::SetPrefs(Prefs {
            notifications_off: true,
            notification_text_hidden: true,
            auto_lock_minutes: None,
        }))
    );
    h.state_mut().prefs.notifications_off = true;
    h.run();
    assert!(
        disabled(&h, "Show the message text in notifications"),
        "the text setting means nothing with notifications off"
    );
    // Auto-lock: off by default, a choice of minutes.
    assert!(checked(&h, "never"));
    h.get_by_label("5 min").click();
    h.run();
    assert_eq!(
        h.state().out.last(),
        Some(&UiIntent::SetPrefs(Prefs {
            notifications_off: true,
            notification_text_hidden: true,
            auto_lock_minutes: Some(5),
        }))
    );
}

#[test]
fn a_phone_sized_window_shows_one_pane_at_a_time() {
    let me = Uuid::new_v4();
    let peer = Uuid::new_v4();
    let t = hush_core::ThreadId::for_pair(&me, &peer);
    let log = ThreadLog::default();
    let view = ChatView {
        my_name: "Ada".into(),
        my_id: me,
        threads: vec![ThreadItem {
            thread: t,
            peer,
            name: "Grace".into(),
            unread: 0,
            last_activity_ms: 0,
            selected: true,
            preview: None,
            request: false,
        }],
        open: Some(ThreadView {
            thread: t,
            peer,
            peer_name: "Grace".into(),
            log: &log,
            saved_draft: "",
            request: false,
            find: None,
        }),
        offline: false,
        max_ciphertext: 1 << 20,
        requests_unsupported: false,
    };
    let build = |w: f32| {
        Harness::builder()
            .with_size(egui::vec2(w, 740.0))
            .build_ui_state(
                |ui, s: &mut S| s.out.extend(screen(ui, &view, &mut s.chat)),
                S::default(),
            )
    };
    let mut h = build(360.0);
    h.run();
    // The open conversation fills the width: the message box is usable.
    assert!(h.query_by_label("Add a contact").is_none(), "no sidebar");
    let field = h.get_by_label("Message").rect().width();
    assert!(field > 0.6 * 360.0, "the message box is {field} wide");
    let back = h.get_by_label("< Chats");
    assert!(back.rect().height() >= 40.0, "a finger-sized button");
    back.click();
    h.run();
    // The list instead, full width.
    assert!(h.query_by_label("Message").is_none());
    assert!(h.query_by_label("< Chats").is_none());
    h.get_by_label("Add a contact");
    h.get_by_label_contains("Grace").click();
    h.run();
    h.get_by_label("Message");
    assert!(
        h.state().out.is_empty(),
        "reopening the open thread selects nothing new: {:?}",
        h.state().out
    );
    // Wide: both at once, no back button.
    let mut h = build(900.0);
    h.run();
    h.get_by_label("Add a contact");
    h.get_by_label("Message");
    assert!(h.query_by_label("< Chats").is_none());
}

/// A chat view of Ada with Grace (a contact) and Zed (a request), one open.
fn with_request(me: Uuid, grace: Uuid, zed: Uuid, open_zed: bool, log: &ThreadLog) -> ChatView<'_> {
    let item = |peer: Uuid, name: &str, request: bool| ThreadItem {
        thread: hush_core::ThreadId::for_pair(&me, &peer),
        peer,
        name: name.into(),
        unread: 0,
        last_activity_ms: 0,
        selected: request == open_zed,
        preview: Some(format!("hello from {name}")),
        request,
    };
    let (peer, name) = if open_zed {
        (zed, "Zed")
    } else {
        (grace, "Grace")
    };
    ChatView {
        my_name: "Ada".into(),
        my_id: me,
        threads: vec![item(grace, "Grace", false), item(zed, "Zed", true)],
        open: Some(ThreadView {
            thread: hush_core::ThreadId::for_pair(&me, &peer),
            peer,
            peer_name: name.into(),
            log,
            saved_draft: "",
            request: open_zed,
            find: None,
        }),
        offline: false,
        max_ciphertext: 1 << 20,
        requests_unsupported: false,
    }
}

#[test]
fn a_message_request_is_listed_apart_and_answered_with_accept_ignore_or_block() {
    let (me, grace, zed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let log = ThreadLog::default();
    let view = with_request(me, grace, zed, true, &log);
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(screen(ui, &view, &mut s.chat)),
            S::default(),
        );
    h.run();
    h.get_by_label("Message requests (1)");
    h.get_by_label_contains("hello from Zed");
    h.get_by_label_contains("hello from Grace");
    // Above the contacts, apart from them.
    let requests_y = h.get_by_label("Message requests (1)").rect().top();
    let contacts_y = h.get_by_label("Contacts").rect().top();
    assert!(requests_y < contacts_y);
    // The open request has no composer and no contact actions: its answers.
    assert!(
        h.query_by_label("Message").is_none(),
        "no reply before Accept"
    );
    assert!(h.query_by_label("Manage").is_none());
    h.get_by_label_contains("Zed is not in your contacts");
    for b in ["Accept", "Ignore", "Block"] {
        h.get_by_label(b).click();
        h.run();
    }
    let t = hush_core::ThreadId::for_pair(&me, &zed);
    assert_eq!(
        h.state().out,
        [
            UiIntent::AcceptRequest {
                peer: zed,
                name: "Zed".into()
            },
            UiIntent::IgnoreRequest(t),
            UiIntent::Block(zed),
        ]
    );
    // A server that cannot list threads says so where requests would be.
    let mut view = with_request(me, grace, zed, false, &log);
    view.threads.retain(|t| !t.request);
    view.requests_unsupported = true;
    let h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(sidebar(ui, &view, &mut s.chat)),
            S::default(),
        );
    assert!(h.query_by_label_contains("Message requests").is_none());
    h.get_by_label_contains("cannot show requests from unknown people");
}

#[test]
fn a_contact_is_renamed_blocked_or_removed_and_deleting_the_history_asks_first() {
    let (me, grace, zed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let log = ThreadLog::default();
    let view = with_request(me, grace, zed, false, &log);
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(thread(ui, &view, &mut s.chat, false)),
            S::default(),
        );
    h.run();
    assert!(h.query_by_label("Rename").is_none(), "behind Manage");
    h.get_by_label("Manage").click();
    h.run();
    h.get_by_label("Rename").click();
    h.run();
    // The field starts with the current name; an empty one cannot be saved.
    h.get_by_label("New name").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.key_press(egui::Key::Backspace);
    h.run();
    assert!(disabled(&h, "Save name"));
    h.get_by_label("New name").type_text("Grace H.");
    h.run();
    h.get_by_label("Save name").click();
    h.run();
    assert!(h.query_by_label("New name").is_none(), "done");
    h.get_by_label("Manage").click();
    h.run();
    h.get_by_label("Remove and delete history").click();
    h.run();
    assert_eq!(h.state().out.len(), 1, "not before it is confirmed");
    h.get_by_label_contains("Delete every message with Grace");
    h.get_by_label("Keep").click();
    h.run();
    h.get_by_label("Remove and delete history").click();
    h.run();
    h.get_by_label("Yes, delete").click();
    h.run();
    h.get_by_label("Manage").click();
    h.run();
    h.get_by_label("Block").click();
    h.run();
    h.get_by_label("Manage").click();
    h.run();
    h.get_by_label("Remove").click();
    h.run();
    assert_eq!(
        h.state().out,
        [
            UiIntent::RenameContact {
                peer: grace,
                name: "Grace H.".into()
            },
            UiIntent::RemoveContact {
                peer: grace,
                forget_history: true
            },
            UiIntent::Block(grace),
            UiIntent::RemoveContact {
                peer: grace,
                forget_history: false
            },
        ]
    );
}

#[test]
fn the_connection_details_show_every_figure_in_words() {
    use hush_chat::status::{Catchup, Disconnect, StatusReport};
    use hush_ui::panels::status::details;
    let mut r = StatusReport {
        server: "https://chat.example".into(),
        connected: true,
        features: vec!["message_sent".into(), "thread_list".into()],
        rtt_ms: Some(12.34),
        reconnects_24h: 2,
        last_disconnect: Some(Disconnect {
            reason: "closed by the server (code 1006)".into(),
            ago_s: 30.0,
        }),
        queued: 3,
        oldest_queued_s: Some(125.0),
        last_catchup: Some(Catchup {
            messages: 120,
            took_s: Some(0.8),
        }),
    };
    let h = Harness::builder()
        .with_size(egui::vec2(600.0, 300.0))
        .build_ui(|ui| details(ui, &r));
    for l in [
        "https://chat.example",
        "message_sent, thread_list",
        "12.3 ms",
        "2 in the last 24 h",
        "closed by the server (code 1006) (30 s ago)",
        "3 messages, the oldest written 2 min ago",
        "120 messages in 0.80 s",
    ] {
        assert!(h.query_by_label(l).is_some(), "{l} missing");
    }
    drop(h);
    r.features.clear();
    r.rtt_ms = None;
    r.queued = 0;
    r.last_catchup = Some(Catchup {
        messages: 40,
        took_s: None,
    });
    let h = Harness::builder()
        .with_size(egui::vec2(600.0, 300.0))
        .build_ui(|ui| details(ui, &r));
    for l in [
        "none (a stock server)",
        "measuring…",
        "nothing",
        "40 messages so far…",
    ] {
        assert!(h.query_by_label(l).is_some(), "{l} missing");
    }
}

#[test]
fn find_in_a_conversation_counts_matches_and_steps_older_and_newer() {
    use hush_store::MessageKey;
    use hush_ui::model::FindView;
    let me = Uuid::new_v4();
    let peer = Uuid::new_v4();
    let t = hush_core::ThreadId::for_pair(&me, &peer);
    let log = ThreadLog {
        messages: (0..5)
            .map(|i| {
                let text = if i % 2 == 1 { "a Needle here" } else { "hay" };
                message(i, false, MessageStatus::Sent, text)
            })
            .collect(),
        revision: 1,
        ..ThreadLog::default()
    };
    let key = |i: usize| MessageKey {
        micros: log.messages[i].micros,
        id: log.messages[i].id.clone(),
    };
    let hits = [key(1), key(3)];
    let view = ChatView {
        my_name: "Ada".into(),
        my_id: me,
        threads: vec![],
        open: Some(ThreadView {
            thread: t,
            peer,
            peer_name: "Grace".into(),
            log: &log,
            saved_draft: "",
            request: false,
            find: Some(FindView {
                hits: &hits,
                searched: 5,
                complete: true,
            }),
        }),
        offline: false,
        max_ciphertext: 1 << 20,
        requests_unsupported: false,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(800.0, 600.0))
        .build_ui_state(
            |ui, s: &mut S| s.out.extend(thread(ui, &view, &mut s.chat, false)),
            S::default(),
        );
    h.run();
    assert!(h.query_by_label("Older").is_none(), "behind Find");
    h.get_by_label("Find").click();
    h.run();
    h.get_by_label("Search").type_text("needle");
    h.run();
    assert_eq!(
        h.state().out.last(),
        Some(&UiIntent::Find {
            thread: t,
            query: "needle".into()
        })
    );
    h.get_by_label("2 matches");
    assert!(disabled(&h, "Newer"));
    // Older starts from the newest match.
    h.get_by_label("Older").click();
    h.run();
    h.get_by_label("1 of 2");
    h.get_by_label("Older").click();
    h.run();
    h.get_by_label("2 of 2");
    h.get_by_label("Newer").click();
    h.run();
    let reveals: Vec<&str> = h
        .state()
        .out
        .iter()
        .filter_map(|i| match i {
            UiIntent::Reveal { key, .. } => Some(key.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reveals,
        [
            hits[1].id.as_str(),
            hits[0].id.as_str(),
            hits[1].id.as_str()
        ]
    );
    h.get_by_label("Close").click();
    h.run();
    assert_eq!(
        h.state().out.last(),
        Some(&UiIntent::Find {
            thread: t,
            query: String::new()
        })
    );
    assert!(h.query_by_label("Older").is_none());
}
