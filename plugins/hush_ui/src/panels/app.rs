//! The whole window: a top bar with the status always visible, then the
//! current screen.

use bevy_egui::egui::{self, RichText};
use hush_store::Prefs;

use crate::model::{ChatView, Screen, StatusView, UiIntent, UnlockStatus};
use crate::panels::chat::{self, ChatState};
use crate::panels::forms::{self, UnlockForm};
use crate::panels::status;

/// Everything a frame shows.
pub struct Frame<'a> {
    pub screen: Screen,
    pub status: StatusView,
    pub unlock: UnlockStatus,
    pub identity_error: Option<String>,
    pub new_words: Option<&'a str>,
    pub chat: Option<ChatView<'a>>,
    pub profile: &'a str,
    pub server: &'a str,
    pub data_dir: &'a str,
    pub prefs: Prefs,
    /// Seconds, for animation.
    pub time: f64,
    /// The connection's details, while their window is open.
    pub details: Option<hush_chat::status::StatusReport>,
}

/// What the window keeps between frames.
#[derive(Default)]
pub struct UiState {
    pub unlock: UnlockForm,
    pub identity_name: String,
    /// The user pressed Continue on the new vault's words.
    pub words_noted: bool,
    /// The "I have written them down" box is ticked (Continue is enabled).
    pub words_checked: bool,
    pub chat: ChatState,
    pub settings_open: bool,
    /// The connection details window is open.
    pub details_open: bool,
    /// The last write the store refused (a full disk), until dismissed, and
    /// whether the store is trying it again.
    pub storage_error: Option<(String, bool)>,
    /// The browser build installed its font.
    pub fonts_set: bool,
    /// The window's style (a steady text cursor) is set.
    pub style_set: bool,
}

/// The notification settings; a change is an intent.
pub fn notification_settings(ui: &mut egui::Ui, prefs: Prefs) -> Option<UiIntent> {
    let mut p = prefs;
    let mut on = !p.notifications_off;
    ui.checkbox(&mut on, "Desktop notifications for new messages")
        .on_hover_text("For a message that is not in the conversation you are looking at");
    p.notifications_off = !on;
    ui.add_enabled_ui(on, |ui| {
        let mut text = !p.notification_text_hidden;
        ui.checkbox(&mut text, "Show the message text in notifications")
            .on_hover_text("Off: a notification names the sender only");
        p.notification_text_hidden = !text;
    });
    ui.horizontal(|ui| {
        ui.label("Lock after");
        for (label, minutes) in [
            ("never", None),
            ("1 min", Some(1)),
            ("5 min", Some(5)),
            ("15 min", Some(15)),
            ("1 h", Some(60)),
        ] {
            ui.selectable_value(&mut p.auto_lock_minutes, minutes, label)
                .on_hover_text("without input in this window; drafts and queued messages stay");
        }
    });
    (p != prefs).then_some(UiIntent::SetPrefs(p))
}

/// Draws the window; returns what the user asked for.
pub fn app(ui: &mut egui::Ui, f: &Frame, st: &mut UiState) -> Vec<UiIntent> {
    let mut out = Vec::new();
    egui::Panel::top("top").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.label(RichText::new("hush").strong().size(18.0));
            ui.separator();
            out.extend(status::indicator(ui, &f.status, f.time));
            if ui
                .selectable_label(st.details_open, "Details")
                .on_hover_text("Server, round trip, reconnects, queue, catch-up")
                .clicked()
            {
                st.details_open = !st.details_open;
                if st.details_open {
                    out.push(UiIntent::MeasureRoundTrip);
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Settings").clicked() {
                    st.settings_open = !st.settings_open;
                }
                if f.screen == Screen::Chat
                    && ui
                        .button("Lock")
                        .on_hover_text("Forget the keys; your data stays")
                        .clicked()
                {
                    out.push(UiIntent::Lock);
                }
            });
        });
    });
    if let Some((err, retrying)) = &st.storage_error
        && status::storage_banner(ui, err, *retrying)
    {
        st.storage_error = None;
    }
    if f.screen == Screen::Chat && !matches!(f.status, StatusView::Connected | StatusView::Idle) {
        let offline = f.chat.as_ref().is_some_and(|c| c.offline);
        egui::Panel::bottom("banner").show(ui, |ui| status::offline_banner(ui, &f.status, offline));
    }
    if st.settings_open {
        let mut open = true;
        egui::Window::new("Settings")
            .open(&mut open)
            .resizable(false)
            .show(ui.ctx(), |ui| {
                egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
                    ui.label("Server");
                    ui.label(RichText::new(f.server).monospace());
                    ui.end_row();
                    ui.label("Profile");
                    ui.label(RichText::new(f.profile).monospace());
                    ui.end_row();
                    ui.label("Data");
                    ui.label(RichText::new(f.data_dir).monospace());
                    ui.end_row();
                });
                ui.separator();
                out.extend(notification_settings(ui, f.prefs));
                ui.label(
                    RichText::new("The server can be changed on the unlock screen; the profile with --profile.")
                        .small()
                        .color(crate::theme::MUTED),
                );
            });
        st.settings_open = open;
    }
    if st.details_open
        && let Some(r) = &f.details
    {
        let mut open = true;
        egui::Window::new("Connection")
            .open(&mut open)
            .resizable(false)
            .show(ui.ctx(), |ui| status::details(ui, r));
        st.details_open = open;
    }
    match f.screen {
        Screen::NewVaultWords => {
            egui::CentralPanel::default().show(ui, |ui| {
                out.extend(forms::new_vault_words(
                    ui,
                    f.new_words.unwrap_or(""),
                    &mut st.words_checked,
                ));
            });
        }
        Screen::Unlock => {
            egui::CentralPanel::default().show(ui, |ui| {
                out.extend(forms::unlock(ui, &mut st.unlock, &f.unlock));
            });
        }
        Screen::Identity => {
            egui::CentralPanel::default().show(ui, |ui| {
                out.extend(forms::identity(
                    ui,
                    &mut st.identity_name,
                    f.identity_error.as_deref(),
                ));
            });
        }
        Screen::Chat => {
            let Some(v) = &f.chat else { return out };
            out.extend(chat::screen(ui, v, &mut st.chat));
        }
    }
    out
}
