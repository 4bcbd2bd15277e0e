//! The composer: Enter sends, Shift+Enter makes a new line. It works while
//! offline: what is sent waits in the outbox. A text longer than the limit
//! is never sent nor cleared: an inline error says why and the draft stays.
//! It grows with its text up to [`MAX_HEIGHT`], then scrolls.

use bevy_egui::egui::{self, Key, Modifiers, RichText, TextEdit};
use hush_core::payload::message_fits;
use uuid::Uuid;

use crate::model::UiIntent;
use crate::theme;

/// Points the text field may grow to before it scrolls.
pub const MAX_HEIGHT: f32 = 160.0;

/// What a message may hold: the server's limit on its sealed size, which
/// depends on the sender's name as well as the text.
#[derive(Clone, Copy)]
pub struct Limit<'a> {
    pub sender_name: &'a str,
    /// Bytes of decoded ciphertext (`hush_core::payload::sealed_message_len`).
    pub max_ciphertext: usize,
}

pub fn composer(ui: &mut egui::Ui, draft: &mut String, to: Uuid, limit: Limit) -> Option<UiIntent> {
    let id = ui.make_persistent_id(("composer", to));
    let focused = ui.memory(|m| m.has_focus(id));
    // Take a bare Enter before the text field sees it; Shift+Enter stays a
    // newline (egui's consume_key ignores Shift, so match the events).
    let enter = focused
        && ui.input_mut(|i| {
            let before = i.events.len();
            i.events.retain(|e| {
                !matches!(e, egui::Event::Key { key: Key::Enter, pressed: true, modifiers, .. }
                    if *modifiers == Modifiers::NONE)
            });
            before != i.events.len()
        });
    let mut clicked = false;
    let len = draft.trim().len();
    let too_long = !message_fits(limit.sender_name, draft.trim(), limit.max_ciphertext);
    // Narrow (a phone): the label above the field, which gets the width.
    let stacked = ui.available_width() < 450.0;
    let mut label = stacked.then(|| ui.label("Message"));
    ui.horizontal(|ui| {
        let l = label.take().unwrap_or_else(|| ui.label("Message"));
        // What the Send button takes: its text, padding and the gap.
        let send_width = 34.0 + 2.0 * ui.spacing().button_padding.x + ui.spacing().item_spacing.x;
        let width = (ui.available_width() - send_width - 8.0).max(60.0);
        egui::ScrollArea::vertical()
            .id_salt(("composer-scroll", to))
            .max_height(MAX_HEIGHT)
            .max_width(width)
            .stick_to_bottom(true)
            .show(ui, |ui| {
                ui.add(
                    TextEdit::multiline(draft)
                        .id(id)
                        .desired_rows(2)
                        .hint_text("Enter sends, Shift+Enter for a new line")
                        .desired_width(width),
                )
                .labelled_by(l.id);
            });
        clicked = ui.button("Send").clicked();
    });
    if too_long {
        ui.label(
            RichText::new(format!(
                "This message is {} KB; the most a message can hold is {} KB. Shorten it or send it in parts: nothing was sent, and your text is still here.",
                len.div_ceil(1024),
                limit.max_ciphertext / 1024
            ))
            .color(theme::ERROR),
        );
    }
    if (enter || clicked) && !draft.trim().is_empty() && !too_long {
        let text = std::mem::take(draft);
        ui.memory_mut(|m| m.request_focus(id));
        return Some(UiIntent::Send {
            to,
            text: text.trim_end().to_owned(),
        });
    }
    None
}
