//! Keyboard input for egui, each key with the modifiers held at that key.
//!
//! bevy_egui reads every key event of a frame first into one modifier
//! state, then hands all of the frame's keys to egui with the state at the
//! end of the frame. A chord pressed and released within one frame (a slow
//! frame, or a fast typist) loses its modifier: Ctrl+V types "v" and
//! Shift+Enter sends. Here the events are walked in the order the system
//! delivered them, so each key carries the modifiers of its own moment.
//! bevy_egui's own keyboard system is turned off for the window's context.

use bevy::input::keyboard::{Key, KeyboardFocusLost, KeyboardInput};
use bevy::prelude::*;
use bevy_egui::input::{EguiInputEvent, ModifierKeysState};
use bevy_egui::{EguiContextSettings, EguiInputSet, PrimaryEguiContext, egui};

pub fn plugin(app: &mut App) {
    app.add_systems(
        PreUpdate,
        (take_over_keyboard, write_keys)
            .chain()
            .in_set(EguiInputSet::ReadBevyMessages),
    );
}

/// One key event, as the translation needs it.
#[derive(Debug, Clone)]
pub struct KeyEvent {
    pub logical: Key,
    pub physical: Option<egui::Key>,
    pub pressed: bool,
}

/// What egui gets for the key events, in order; `held` is the state before
/// them (bevy_egui's own modifier state type, which knows a Mac's Command
/// key, also in a browser) and is updated. `Paste` stands for the
/// clipboard's text, which the caller reads (the UI does no I/O itself).
pub fn translate(events: &[KeyEvent], held: &mut ModifierKeysState) -> Vec<Translated> {
    let mut out = Vec::new();
    for e in events {
        match e.logical {
            Key::Shift => held.shift = e.pressed,
            Key::Control => held.ctrl = e.pressed,
            Key::Alt => held.alt = e.pressed,
            Key::Super | Key::Meta => held.win = e.pressed,
            _ => {}
        }
        if e.pressed && held.text_input_is_allowed() {
            match &e.logical {
                Key::Character(c) if !c.chars().any(char::is_control) => {
                    out.push(Translated::Event(egui::Event::Text(c.to_string())));
                }
                Key::Space => out.push(Translated::Event(egui::Event::Text(" ".into()))),
                _ => {}
            }
        }
        let Some(key) = bevy_egui::helpers::bevy_to_egui_key(&e.logical).or(e.physical) else {
            continue;
        };
        let modifiers = held.to_egui_modifiers();
        out.push(Translated::Event(egui::Event::Key {
            key,
            pressed: e.pressed,
            repeat: false,
            modifiers,
            physical_key: e.physical,
        }));
        if modifiers.command && e.pressed {
            match key {
                egui::Key::C => out.push(Translated::Event(egui::Event::Copy)),
                egui::Key::X => out.push(Translated::Event(egui::Event::Cut)),
                egui::Key::V => out.push(Translated::Paste),
                _ => {}
            }
        }
    }
    out
}

/// An egui event, or the clipboard's text to be pasted.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    Event(egui::Event),
    Paste,
}

/// Turns bevy_egui's keyboard system off for the window's context.
fn take_over_keyboard(mut settings: Query<&mut EguiContextSettings, Added<EguiContextSettings>>) {
    for mut s in &mut settings {
        s.input_system_settings
            .run_write_keyboard_input_messages_system = false;
    }
}

fn write_keys(
    mut keys: MessageReader<KeyboardInput>,
    mut focus_lost: MessageReader<KeyboardFocusLost>,
    // Our own copy: bevy_egui's resource holds the state at the frame's end.
    mut held: Local<ModifierKeysState>,
    context: Query<Entity, With<PrimaryEguiContext>>,
    #[cfg(not(target_arch = "wasm32"))] mut clipboard: Option<ResMut<bevy_egui::EguiClipboard>>,
    mut out: MessageWriter<EguiInputEvent>,
) {
    if !focus_lost.is_empty() {
        // Keys released while the window had no focus never arrive.
        focus_lost.clear();
        *held = ModifierKeysState::default();
    }
    let events: Vec<KeyEvent> = keys
        .read()
        .map(|k| KeyEvent {
            logical: k.logical_key.clone(),
            physical: bevy_egui::helpers::bevy_to_egui_physical_key(&k.key_code),
            pressed: k.state.is_pressed(),
        })
        .collect();
    let Ok(context) = context.single() else {
        return;
    };
    for t in translate(&events, &mut held) {
        let event = match t {
            Translated::Event(e) => e,
            // In a browser, paste arrives as the page's paste event.
            #[cfg(not(target_arch = "wasm32"))]
            Translated::Paste => match clipboard.as_mut().and_then(|c| c.get_text()) {
                Some(text) => egui::Event::Text(text),
                None => continue,
            },
            #[cfg(target_arch = "wasm32")]
            Translated::Paste => continue,
        };
        out.write(EguiInputEvent { context, event });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(logical: Key, physical: Option<egui::Key>, pressed: bool) -> KeyEvent {
        KeyEvent {
            logical,
            physical,
            pressed,
        }
    }

    fn chord(modifier: Key, key: Key, physical: egui::Key) -> Vec<KeyEvent> {
        vec![
            ev(modifier.clone(), None, true),
            ev(key.clone(), Some(physical), true),
            ev(key, Some(physical), false),
            ev(modifier, None, false),
        ]
    }

    #[test]
    fn ctrl_v_within_one_frame_pastes_and_types_nothing() {
        let mut held = ModifierKeysState::default();
        let out = translate(
            &chord(Key::Control, Key::Character("v".into()), egui::Key::V),
            &mut held,
        );
        assert!(out.contains(&Translated::Paste), "{out:?}");
        assert!(
            !out.iter()
                .any(|t| matches!(t, Translated::Event(egui::Event::Text(_)))),
            "no 'v' typed: {out:?}"
        );
        assert!(out.iter().any(|t| matches!(
            t,
            Translated::Event(egui::Event::Key { key: egui::Key::V, pressed: true, modifiers, .. })
                if modifiers.ctrl && modifiers.command
        )));
        assert!(
            !(held.shift || held.ctrl || held.alt || held.win),
            "released by the end"
        );
    }

    #[test]
    fn shift_enter_within_one_frame_keeps_its_shift() {
        let mut held = ModifierKeysState::default();
        let out = translate(&chord(Key::Shift, Key::Enter, egui::Key::Enter), &mut held);
        let enter: Vec<_> = out
            .iter()
            .filter_map(|t| match t {
                Translated::Event(egui::Event::Key {
                    key: egui::Key::Enter,
                    pressed: true,
                    modifiers,
                    ..
                }) => Some(*modifiers),
                _ => None,
            })
            .collect();
        assert_eq!(enter, [egui::Modifiers::SHIFT]);
    }

    #[test]
    fn a_key_after_the_release_in_the_same_frame_is_plain() {
        let mut held = ModifierKeysState::default();
        let mut events = chord(Key::Control, Key::Character("a".into()), egui::Key::A);
        events.push(ev(Key::Character("b".into()), Some(egui::Key::B), true));
        let out = translate(&events, &mut held);
        let texts: Vec<_> = out
            .iter()
            .filter_map(|t| match t {
                Translated::Event(egui::Event::Text(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["b"], "Ctrl+A types nothing, the b after it does");
    }

    #[test]
    fn a_modifier_held_across_frames_still_counts_and_altgr_types() {
        let mut held = ModifierKeysState::default();
        translate(&[ev(Key::Control, None, true)], &mut held);
        let out = translate(
            &[ev(Key::Character("c".into()), Some(egui::Key::C), true)],
            &mut held,
        );
        assert!(out.contains(&Translated::Event(egui::Event::Copy)));
        // AltGr (Ctrl+Alt) types its character.
        translate(&[ev(Key::Alt, None, true)], &mut held);
        let out = translate(
            &[ev(Key::Character("€".into()), Some(egui::Key::E), true)],
            &mut held,
        );
        assert!(out.contains(&Translated::Event(egui::Event::Text("€".into()))));
    }
}
