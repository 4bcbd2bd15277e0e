//! The chat screen: the sidebar (you, your contacts by last activity with
//! unread badges, add contact) and the open thread, side by side; below
//! [`NARROW`] points wide (a phone), one at a time, with a back button.

use std::collections::HashMap;

use bevy_egui::egui::{self, RichText, TextEdit};
use hush_core::ThreadId;
use hush_core::ids::parse_user_uuid;
use hush_core::payload::validate_display_name;

use crate::model::{ChatView, ThreadItem, ThreadView, UiIntent};
use crate::panels::composer::{Limit, composer};
use crate::panels::messages::{ListState, list};
use crate::theme;

/// The add-contact form.
#[derive(Default)]
pub struct AddContactForm {
    pub user_id: String,
    pub name: String,
    /// The last refusal from the app (duplicate, yourself…).
    pub error: Option<String>,
}

/// Narrower than this, the chat screen shows one pane at a time.
pub const NARROW: f32 = 600.0;

/// What the chat screen keeps between frames.
#[derive(Default)]
pub struct ChatState {
    pub add: AddContactForm,
    pub drafts: HashMap<ThreadId, String>,
    pub lists: HashMap<ThreadId, ListState>,
    /// Narrow: the list of conversations is shown instead of the open one
    /// (the back button).
    pub show_list: bool,
    /// The open thread's contact actions are shown (the Manage button).
    pub manage: Option<ThreadId>,
    /// The new name being typed for the open thread's contact.
    pub rename: Option<(ThreadId, String)>,
    /// "Remove and delete history" was clicked once: asks to confirm.
    pub confirm_forget: Option<ThreadId>,
    pub find: FindBar,
}

/// The find bar of the open thread.
#[derive(Default)]
pub struct FindBar {
    /// The thread it is open in.
    pub open: Option<ThreadId>,
    pub query: String,
    /// The match shown, an index into the hits (oldest first).
    pub current: Option<usize>,
}

/// The chat screen in `ui`: two panes, or one when narrow.
pub fn screen(ui: &mut egui::Ui, v: &ChatView, st: &mut ChatState) -> Vec<UiIntent> {
    if ui.available_width() >= NARROW {
        let mut out = Vec::new();
        egui::Panel::left("sidebar")
            .resizable(true)
            .default_size(260.0)
            .show(ui, |ui| out.extend(sidebar(ui, v, st)));
        egui::CentralPanel::default().show(ui, |ui| out.extend(thread(ui, v, st, false)));
        return out;
    }
    egui::CentralPanel::default()
        .show(ui, |ui| {
            // Fingers, not a mouse: taller rows and buttons.
            let s = ui.spacing_mut();
            s.interact_size.y = s.interact_size.y.max(40.0);
            s.button_padding = egui::vec2(12.0, 8.0);
            s.item_spacing.y = s.item_spacing.y.max(8.0);
            if v.open.is_none() || st.show_list {
                sidebar(ui, v, st)
            } else {
                thread(ui, v, st, true)
            }
        })
        .inner
}

pub fn sidebar(ui: &mut egui::Ui, v: &ChatView, st: &mut ChatState) -> Vec<UiIntent> {
    let mut out = Vec::new();
    ui.add_space(6.0);
    ui.label(RichText::new(&v.my_name).strong().size(16.0));
    ui.horizontal(|ui| {
        // Large enough to read out or copy by hand.
        ui.add(
            egui::Label::new(RichText::new(v.my_id.to_string()).monospace().size(12.0))
                .selectable(true),
        );
    });
    // "Copied" for two seconds after a click.
    let copied_id = ui.make_persistent_id("copied-my-id");
    let now = ui.input(|i| i.time);
    let copied_at: Option<f64> = ui.data(|d| d.get_temp(copied_id));
    let copied = copied_at.is_some_and(|t| now - t < 2.0);
    let label = if copied { "Copied ✓" } else { "Copy my ID" };
    if ui
        .button(label)
        .on_hover_text("Contacts add you by this UUID")
        .clicked()
    {
        out.push(UiIntent::CopyToClipboard(v.my_id.to_string()));
        ui.data_mut(|d| d.insert_temp(copied_id, now));
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs(2));
    } else if let Some(t) = copied_at.filter(|_| copied) {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs_f64(2.0 - (now - t)));
    }
    ui.separator();
    let requests = v.threads.iter().filter(|t| t.request).count();
    egui::ScrollArea::vertical()
        .id_salt("threads")
        .max_height(ui.available_height() - 170.0)
        .show(ui, |ui| {
            if requests > 0 {
                ui.label(RichText::new(format!("Message requests ({requests})")).strong());
                for t in v.threads.iter().filter(|t| t.request) {
                    thread_row(ui, t, st, &mut out);
                }
                ui.separator();
            }
            ui.label(RichText::new("Contacts").strong());
            if requests == v.threads.len() {
                ui.label(RichText::new("No contacts yet.").color(theme::MUTED));
            }
            for t in v.threads.iter().filter(|t| !t.request) {
                thread_row(ui, t, st, &mut out);
            }
            if v.requests_unsupported {
                ui.label(
                    RichText::new(
                        "This server cannot show requests from unknown people: \
                         someone you have not added is seen once you add them.",
                    )
                    .small()
                    .color(theme::MUTED),
                );
            }
        });
    ui.separator();
    ui.label(RichText::new("Add a contact").strong());
    let f = &mut st.add;
    let l = ui.label("Their UUID");
    ui.add(
        TextEdit::singleline(&mut f.user_id)
            .hint_text("xxxxxxxx-xxxx-…")
            .desired_width(f32::INFINITY),
    )
    .labelled_by(l.id);
    let l = ui.label("Name");
    let name_field = ui
        .add(TextEdit::singleline(&mut f.name).desired_width(f32::INFINITY))
        .labelled_by(l.id);
    let enter = name_field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let id_check = parse_user_uuid(&f.user_id);
    let name_check = validate_display_name(&f.name);
    if !f.user_id.trim().is_empty() {
        match id_check {
            Err(_) => {
                ui.label(RichText::new("Not a UUID").color(theme::AMBER));
            }
            Ok(u) if u == v.my_id => {
                ui.label(RichText::new("That is your own UUID").color(theme::AMBER));
            }
            Ok(u) if v.threads.iter().any(|t| t.peer == u) => {
                ui.label(RichText::new("Already a contact").color(theme::AMBER));
            }
            _ => {}
        }
    }
    if let (false, Err(e)) = (f.name.is_empty(), &name_check) {
        ui.label(RichText::new(e.to_string()).color(theme::AMBER));
    }
    if let Some(e) = &f.error {
        ui.label(RichText::new(e).color(theme::ERROR));
    }
    let ok = matches!(id_check, Ok(u) if u != v.my_id && !v.threads.iter().any(|t| t.peer == u))
        && name_check.is_ok();
    let clicked = ui
        .add_enabled(ok, egui::Button::new("Add contact"))
        .clicked();
    if clicked || (ok && enter) {
        out.push(UiIntent::AddContact {
            user_id: f.user_id.trim().to_owned(),
            name: f.name.trim().to_owned(),
        });
        f.error = None;
        f.user_id.clear();
        f.name.clear();
    }
    out
}

/// One conversation in the sidebar: name, unread count, time, preview.
fn thread_row(ui: &mut egui::Ui, t: &ThreadItem, st: &mut ChatState, out: &mut Vec<UiIntent>) {
    let mut text = if t.unread > 0 {
        format!("{}   ({})", t.name, t.unread)
    } else {
        t.name.clone()
    };
    if t.last_activity_ms > 0 {
        text.push_str(&format!("   {}", theme::clock(t.last_activity_ms)));
    }
    if let Some(p) = &t.preview {
        text.push('\n');
        text.push_str(p);
    }
    let label = if t.unread > 0 {
        RichText::new(text).strong()
    } else {
        RichText::new(text)
    };
    if ui.selectable_label(t.selected, label).clicked() {
        if !t.selected {
            out.push(UiIntent::Select(t.thread));
        }
        // Narrow: the conversation replaces the list.
        st.show_list = false;
    }
}

/// A request's answer, where a contact's thread has its composer.
fn request_bar(ui: &mut egui::Ui, open: &ThreadView, out: &mut Vec<UiIntent>) {
    ui.label(format!(
        "{} is not in your contacts. Accept to reply; they do not learn whether you \
         read this.",
        open.peer_name
    ));
    ui.horizontal(|ui| {
        if ui.button("Accept").clicked() {
            out.push(UiIntent::AcceptRequest {
                peer: open.peer,
                name: open.peer_name.clone(),
            });
        }
        if ui.button("Ignore").clicked() {
            out.push(UiIntent::IgnoreRequest(open.thread));
        }
        if ui
            .button(RichText::new("Block").color(theme::ERROR))
            .clicked()
        {
            out.push(UiIntent::Block(open.peer));
        }
    });
}

/// The open contact's actions: rename, block, remove (keeping or deleting
/// the history, which asks first).
fn manage_bar(ui: &mut egui::Ui, open: &ThreadView, st: &mut ChatState, out: &mut Vec<UiIntent>) {
    let t = open.thread;
    if let Some((rt, name)) = &mut st.rename
        && *rt == t
    {
        let mut done = false;
        ui.horizontal(|ui| {
            let l = ui.label("New name");
            let field = ui
                .add(TextEdit::singleline(name).desired_width(180.0))
                .labelled_by(l.id);
            let check = validate_display_name(name);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui
                .add_enabled(check.is_ok(), egui::Button::new("Save name"))
                .clicked()
                || enter)
                && let Ok(n) = check
            {
                out.push(UiIntent::RenameContact {
                    peer: open.peer,
                    name: n,
                });
                done = true;
            }
            if ui.button("Cancel").clicked() {
                done = true;
            }
        });
        if done {
            st.rename = None;
            st.manage = None;
        }
        return;
    }
    if st.confirm_forget == Some(t) {
        ui.label(
            RichText::new(format!(
                "Delete every message with {} from this device, and remove them?",
                open.peer_name
            ))
            .color(theme::ERROR),
        );
        ui.horizontal(|ui| {
            if ui.button("Yes, delete").clicked() {
                out.push(UiIntent::RemoveContact {
                    peer: open.peer,
                    forget_history: true,
                });
                st.confirm_forget = None;
                st.manage = None;
            }
            if ui.button("Keep").clicked() {
                st.confirm_forget = None;
            }
        });
        return;
    }
    ui.horizontal_wrapped(|ui| {
        if ui.button("Rename").clicked() {
            st.rename = Some((t, open.peer_name.clone()));
        }
        if ui.button("Block").clicked() {
            out.push(UiIntent::Block(open.peer));
            st.manage = None;
        }
        if ui
            .button("Remove")
            .on_hover_text("The messages stay, and come back if you add them again")
            .clicked()
        {
            out.push(UiIntent::RemoveContact {
                peer: open.peer,
                forget_history: false,
            });
            st.manage = None;
        }
        if ui.button("Remove and delete history").clicked() {
            st.confirm_forget = Some(t);
        }
    });
}

/// The open thread: header (with a back button when `narrow`), messages,
/// composer.
pub fn thread(ui: &mut egui::Ui, v: &ChatView, st: &mut ChatState, narrow: bool) -> Vec<UiIntent> {
    let mut out = Vec::new();
    let Some(open) = &v.open else {
        ui.centered_and_justified(|ui| {
            let hint = if v.threads.is_empty() {
                "Add a contact by their UUID to start chatting."
            } else {
                "Choose a contact on the left."
            };
            ui.label(RichText::new(hint).color(theme::MUTED));
        });
        return out;
    };
    ui.horizontal(|ui| {
        if narrow && ui.button("< Chats").clicked() {
            st.show_list = true;
        }
        ui.heading(&open.peer_name);
        ui.label(
            RichText::new(theme::short_id(&open.peer))
                .monospace()
                .color(theme::MUTED),
        )
        .on_hover_text(open.peer.to_string());
        let finding = st.find.open == Some(open.thread);
        let ctrl_f = ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F));
        if ui
            .selectable_label(finding, "Find")
            .on_hover_text("Search this conversation (Ctrl+F)")
            .clicked()
            || (ctrl_f && !finding)
        {
            if finding {
                out.extend(close_find(st, open.thread));
            } else {
                st.find = FindBar {
                    open: Some(open.thread),
                    ..FindBar::default()
                };
            }
        }
        if !open.request {
            let showing = st.manage == Some(open.thread);
            if ui.selectable_label(showing, "Manage").clicked() {
                st.manage = (!showing).then_some(open.thread);
                st.rename = None;
                st.confirm_forget = None;
            }
        }
    });
    if !open.request && st.manage == Some(open.thread) {
        manage_bar(ui, open, st, &mut out);
    }
    if st.find.open == Some(open.thread) {
        find_bar(ui, open, st, &mut out);
    } else if st.find.open.is_some() {
        // Another thread opened: the search there ends.
        let t = st.find.open.expect("open");
        out.extend(close_find(st, t));
    }
    ui.separator();
    egui::Panel::bottom("composer")
        .resizable(false)
        .show(ui, |ui| {
            ui.add_space(4.0);
            if open.request {
                request_bar(ui, open, &mut out);
                ui.add_space(4.0);
                return;
            }
            let draft = st
                .drafts
                .entry(open.thread)
                .or_insert_with(|| open.saved_draft.to_owned());
            let before = draft.clone();
            let limit = Limit {
                sender_name: &v.my_name,
                max_ciphertext: v.max_ciphertext,
            };
            if let Some(i) = composer(ui, draft, open.peer, limit) {
                out.push(i);
            }
            if *draft != before {
                out.push(UiIntent::Draft {
                    thread: open.thread,
                    text: draft.clone(),
                });
            }
            ui.add_space(4.0);
        });
    let highlight = (st.find.open == Some(open.thread) && !st.find.query.trim().is_empty())
        .then(|| st.find.query.trim().to_lowercase());
    egui::CentralPanel::default().show(ui, |ui| {
        let ls = st.lists.entry(open.thread).or_default();
        ls.highlight = highlight;
        if ls.highlight.is_none() {
            ls.current = None;
        }
        out.extend(list(ui, open.thread, open.log, ls));
    });
    out
}

fn close_find(st: &mut ChatState, thread: ThreadId) -> Option<UiIntent> {
    st.find = FindBar::default();
    Some(UiIntent::Find {
        thread,
        query: String::new(),
    })
}

/// The search field, "3 of 12", and older/newer.
fn find_bar(ui: &mut egui::Ui, open: &ThreadView, st: &mut ChatState, out: &mut Vec<UiIntent>) {
    let t = open.thread;
    let hits = open.find.map_or(&[][..], |f| f.hits);
    let mut go: Option<usize> = None;
    let mut close = false;
    ui.horizontal(|ui| {
        let l = ui.label("Search");
        let field = ui
            .add(
                TextEdit::singleline(&mut st.find.query)
                    .hint_text("in this conversation")
                    .desired_width(200.0),
            )
            .labelled_by(l.id);
        if st.find.query.is_empty() && !field.has_focus() {
            field.request_focus();
        }
        if field.changed() {
            st.find.current = None;
            out.push(UiIntent::Find {
                thread: t,
                query: st.find.query.clone(),
            });
        }
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let n = hits.len();
        let searching = open.find.is_some_and(|f| !f.complete);
        let label = match (st.find.current, n) {
            _ if st.find.query.trim().is_empty() => String::new(),
            (_, 0) if searching => format!(
                "searching… {} messages",
                open.find.map_or(0, |f| f.searched)
            ),
            (_, 0) => "no matches".to_owned(),
            (Some(c), n) => format!("{} of {n}", n - c),
            (None, n) => format!("{n} matches"),
        };
        ui.label(RichText::new(label).color(theme::MUTED));
        // Matches count from the newest: "Older" goes up the conversation.
        let older = ui.add_enabled(n > 0, egui::Button::new("Older"));
        if older.clicked() || (enter && n > 0) {
            go = Some(match st.find.current {
                Some(c) if c > 0 => c - 1,
                Some(c) => c,
                None => n - 1,
            });
        }
        let newer = ui.add_enabled(
            st.find.current.is_some_and(|c| c + 1 < n),
            egui::Button::new("Newer"),
        );
        if newer.clicked() {
            go = st.find.current.map(|c| c + 1);
        }
        if ui.button("Close").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            close = true;
        }
    });
    if close {
        out.extend(close_find(st, t));
        return;
    }
    if let Some(c) = go
        && let Some(key) = hits.get(c)
    {
        st.find.current = Some(c);
        st.lists
            .entry(t)
            .or_default()
            .reveal((key.micros, key.id.clone()));
        out.push(UiIntent::Reveal {
            thread: t,
            key: key.clone(),
        });
    }
}
