//! The forms before the chat: a new vault's words, unlock, identity.

use bevy_egui::egui::{self, RichText, TextEdit};
use hush_core::crypto::word_count;
use hush_core::payload::validate_display_name;
use zeroize::Zeroizing;

use crate::model::{UiIntent, UnlockStatus};
use crate::theme;

/// The unlock form's fields.
#[derive(Default)]
pub struct UnlockForm {
    pub server: String,
    pub words: Zeroizing<String>,
    pub show_words: bool,
}

/// Number of words the vault has.
pub const WORDS: usize = 12;

fn centered<R>(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    let width = ui.available_width().min(460.0);
    let margin = ((ui.available_width() - width) / 2.0).max(0.0);
    ui.add_space(24.0);
    ui.horizontal(|ui| {
        ui.add_space(margin);
        ui.vertical(|ui| {
            ui.set_max_width(width);
            add(ui)
        })
        .inner
    })
    .inner
}

/// A just-created vault's words, shown once.
pub fn new_vault_words(ui: &mut egui::Ui, words: &str, noted: &mut bool) -> Option<UiIntent> {
    centered(ui, |ui| {
        ui.heading("A new vault was created");
        ui.add_space(8.0);
        ui.label(
            "These 12 words are the vault. Everyone who should chat in it needs them, \
             and nothing can recover them. Write them down now: they are shown this once.",
        );
        ui.add_space(12.0);
        egui::Grid::new("vault-words")
            .num_columns(3)
            .spacing([24.0, 8.0])
            .show(ui, |ui| {
                for (i, w) in words.split_whitespace().enumerate() {
                    ui.label(
                        RichText::new(format!("{:>2}. {w}", i + 1))
                            .monospace()
                            .size(16.0),
                    );
                    if i % 3 == 2 {
                        ui.end_row();
                    }
                }
            });
        ui.add_space(12.0);
        ui.checkbox(noted, "I have written them down");
        ui.add_space(8.0);
        ui.add_enabled(*noted, egui::Button::new("Continue"))
            .clicked()
            .then_some(UiIntent::WordsNoted)
    })
}

/// The unlock screen.
pub fn unlock(ui: &mut egui::Ui, form: &mut UnlockForm, status: &UnlockStatus) -> Option<UiIntent> {
    centered(ui, |ui| {
        ui.heading("Unlock your vault");
        ui.add_space(12.0);
        let l = ui.label("Server");
        ui.add(
            TextEdit::singleline(&mut form.server)
                .hint_text("https://host — several nodes: separate with commas")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(l.id);
        ui.add_space(8.0);
        let l = ui.label("Your 12 words");
        let words = ui
            .add(
                TextEdit::singleline(&mut *form.words)
                    .password(!form.show_words)
                    .hint_text("abandon ability able …")
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(l.id);
        let n = word_count(&form.words);
        ui.horizontal(|ui| {
            let colour = if n == WORDS || n == 0 {
                theme::SECONDARY
            } else {
                theme::AMBER
            };
            ui.label(RichText::new(format!("{n} / {WORDS} words")).color(colour));
            ui.checkbox(&mut form.show_words, "Show words");
        });
        if let Some(busy) = &status.busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(busy);
            });
        }
        if let Some(err) = &status.error {
            ui.label(RichText::new(err).color(theme::ERROR));
        }
        ui.add_space(8.0);
        let ready = n == WORDS && status.busy.is_none() && !form.server.trim().is_empty();
        let submit = ui.add_enabled(ready, egui::Button::new("Unlock")).clicked()
            || (ready && words.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)));
        submit.then(|| UiIntent::Unlock {
            server: form.server.trim().to_owned(),
            words: form.words.clone(),
        })
    })
}

/// The identity form of a profile's first unlock.
pub fn identity(ui: &mut egui::Ui, name: &mut String, error: Option<&str>) -> Option<UiIntent> {
    centered(ui, |ui| {
        ui.heading("Who are you?");
        ui.add_space(8.0);
        ui.label(
            "Choose the name others see. It travels inside your encrypted messages; \
             a new UUID is made for you, which is how contacts find each other.",
        );
        ui.add_space(8.0);
        let l = ui.label("Display name");
        let field = ui
            .add(TextEdit::singleline(name).desired_width(f32::INFINITY))
            .labelled_by(l.id);
        let check = validate_display_name(name);
        if let (Err(e), false) = (&check, name.is_empty()) {
            ui.label(RichText::new(e.to_string()).color(theme::AMBER));
        }
        if let Some(e) = error {
            ui.label(RichText::new(e).color(theme::ERROR));
        }
        let ok = check.is_ok();
        let submit = ui
            .add_enabled(ok, egui::Button::new("Create identity"))
            .clicked()
            || (ok && field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)));
        submit.then(|| UiIntent::CreateIdentity {
            name: name.trim().to_owned(),
        })
    })
}
