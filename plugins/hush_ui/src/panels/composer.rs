//! The composer: Enter sends, Shift+Enter makes a new line. It works while
//! offline: what is sent waits in the outbox.

use bevy_egui::egui::{self, Key, Modifiers, TextEdit};
use uuid::Uuid;

use crate::model::UiIntent;

pub fn composer(ui: &mut egui::Ui, draft: &mut String, to: Uuid) -> Option<UiIntent> {
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
    ui.horizontal(|ui| {
        let l = ui.label("Message");
        ui.add(
            TextEdit::multiline(draft)
                .id(id)
                .desired_rows(2)
                .hint_text("Enter sends, Shift+Enter for a new line")
                .desired_width(ui.available_width() - 70.0),
        )
        .labelled_by(l.id);
        clicked = ui.button("Send").clicked();
    });
    if (enter || clicked) && !draft.trim().is_empty() {
        let text = std::mem::take(draft);
        ui.memory_mut(|m| m.request_focus(id));
        return Some(UiIntent::Send {
            to,
            text: text.trim_end().to_owned(),
        });
    }
    None
}
