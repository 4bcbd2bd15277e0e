//! Text that does not arrive as key presses, in the browser: an IME's
//! composition, an emoji picker, dictation, `insertText`. A browser hands
//! such text only to an editable element that has the focus, never to a
//! canvas; so while egui edits text, an invisible `<textarea>` (the "text
//! agent", as bevy_egui has for phones) holds the focus:
//!
//! - its key presses are handed on to the canvas unchanged, where winit
//!   reads them as before (and printable keys insert nothing into it);
//! - what the browser inserts into it becomes egui text, and a composition
//!   becomes egui's IME events;
//! - the canvas is told it still has the focus, so the app does not think
//!   the window lost it;
//! - paste keeps going through bevy_egui's page-wide `paste` listener.
//!
//! The two sources reach the app by different roads (winit's messages and
//! this agent's queue) and meet in one update, where the keys come first.
//! So that a key pressed after an insertion still comes after it, a key that
//! arrives while inserted text is waiting for the app waits behind it in the
//! same queue, and goes to the canvas only once what came before it is in.

use std::cell::RefCell;
use std::collections::VecDeque;

use bevy::prelude::*;
use bevy_egui::input::EguiInputEvent;
use bevy_egui::{EguiInputSet, EguiOutput, EguiPostUpdateSet, PrimaryEguiContext, egui};
use hush_net::wake::Wake;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{
    CompositionEvent, FocusEvent, FocusEventInit, HtmlElement, HtmlTextAreaElement, InputEvent,
    KeyboardEvent, KeyboardEventInit,
};

const AGENT_ID: &str = "hush-text-agent";

/// What the agent received, in the order it did.
enum Input {
    /// Text or an IME event, for the primary egui context.
    Text(egui::Event),
    /// A key press or release, for the canvas (winit).
    Key(KeyboardEvent),
}

struct Agent {
    textarea: HtmlTextAreaElement,
    canvas: HtmlElement,
}

thread_local! {
    // Browser objects are not Send: they stay on the page's thread.
    static AGENT: RefCell<Option<Agent>> = const { RefCell::new(None) };
    // Apart from AGENT: events fire while the agent is being focused (a
    // blur commits a composition), and each borrow of this one is short.
    static QUEUE: RefCell<VecDeque<Input>> = const { RefCell::new(VecDeque::new()) };
}

/// Installs the text agent next to the page's canvas (`canvas_id`).
pub fn plugin(canvas_id: &'static str) -> impl Fn(&mut App) {
    move |app: &mut App| {
        let wake = app.world().resource::<Wake>().clone();
        if let Err(e) = install(canvas_id, wake) {
            tracing::warn!("no text agent ({e}): only typed keys reach text fields");
        }
        // After the keys of the same update: the keys that came later than
        // a queued text are held back (see above).
        app.add_systems(
            PreUpdate,
            forward_text
                .after(EguiInputSet::ReadBevyMessages)
                .before(EguiInputSet::WriteEguiEvents),
        )
        .add_systems(
            PostUpdate,
            follow_text_focus.after(EguiPostUpdateSet::ProcessOutput),
        );
    }
}

/// The queue's text up to its first key goes to egui now; that key and the
/// ones right after it go to the canvas, for the next update, and what is
/// queued behind them waits for that update.
fn forward_text(
    context: Query<Entity, With<PrimaryEguiContext>>,
    mut out: MessageWriter<EguiInputEvent>,
) {
    let Ok(context) = context.single() else {
        // Keep them until the context exists.
        return;
    };
    let mut keys = Vec::new();
    QUEUE.with_borrow_mut(|queue| {
        while let Some(input) = queue.pop_front() {
            match input {
                Input::Text(event) if keys.is_empty() => {
                    out.write(EguiInputEvent { context, event });
                }
                // Text after a key waits for the update that has the key.
                text @ Input::Text(_) => {
                    queue.push_front(text);
                    break;
                }
                Input::Key(k) => keys.push(k),
            }
        }
    });
    if keys.is_empty() {
        return;
    }
    // Outside the borrow: winit handles them once this update is over.
    let canvas = AGENT.with_borrow(|a| a.as_ref().map(|a| a.canvas.clone()));
    if let Some(canvas) = canvas {
        for k in keys {
            let _ = canvas.dispatch_event(&k);
        }
    }
}

/// Gives the agent the focus while egui edits text (and puts it where the
/// text cursor is, for the IME's candidate window), and the canvas otherwise.
fn follow_text_focus(output: Query<&EguiOutput, With<PrimaryEguiContext>>) {
    let Ok(output) = output.single() else {
        return;
    };
    let ime = output.platform_output.ime;
    AGENT.with_borrow_mut(|agent| {
        let Some(a) = agent.as_mut() else {
            return;
        };
        let wanted = ime.is_some();
        if let Some(ime) = ime {
            let r = ime.cursor_rect;
            let style = a.textarea.style();
            let _ = style.set_property("left", &format!("{}px", r.min.x));
            let _ = style.set_property("top", &format!("{}px", r.min.y));
        }
        // A click on the canvas takes the focus back: give it again.
        match (wanted, is_focused(&a.textarea)) {
            (true, false) if canvas_focused(&a.canvas) => {
                let _ = a.textarea.focus();
            }
            (false, true) => {
                let _ = a.canvas.focus();
            }
            _ => {}
        }
    });
}

fn active() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.active_element()
}

fn is_focused(el: &HtmlTextAreaElement) -> bool {
    active().is_some_and(|a| a == ***el)
}

/// The canvas has the focus (the page itself has it, and not another field
/// of the page's).
fn canvas_focused(canvas: &HtmlElement) -> bool {
    active().is_some_and(|a| a == **canvas)
}

/// A copy of `e` for the canvas, where winit listens.
fn copy_key(e: &KeyboardEvent) -> Option<KeyboardEvent> {
    let init = KeyboardEventInit::new();
    init.set_key(&e.key());
    init.set_code(&e.code());
    init.set_location(e.location());
    init.set_repeat(e.repeat());
    init.set_ctrl_key(e.ctrl_key());
    init.set_shift_key(e.shift_key());
    init.set_alt_key(e.alt_key());
    init.set_meta_key(e.meta_key());
    init.set_bubbles(true);
    init.set_cancelable(true);
    KeyboardEvent::new_with_keyboard_event_init_dict(&e.type_(), &init).ok()
}

fn focus_event(kind: &str) -> Option<FocusEvent> {
    let init = FocusEventInit::new();
    FocusEvent::new_with_focus_event_init_dict(kind, &init).ok()
}

/// Queues `event` and wakes the app for it.
fn queue(wake: &Wake, input: Input) {
    QUEUE.with_borrow_mut(|q| q.push_back(input));
    wake.wake();
}

fn install(canvas_id: &str, wake: Wake) -> Result<(), String> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let canvas: HtmlElement = document
        .query_selector(canvas_id)
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into().ok())
        .ok_or("no canvas")?;
    let textarea: HtmlTextAreaElement = document
        .create_element("textarea")
        .map_err(|_| "cannot make a textarea")?
        .dyn_into()
        .map_err(|_| "not a textarea")?;
    textarea.set_id(AGENT_ID);
    for (k, v) in [
        ("autocomplete", "off"),
        ("autocapitalize", "off"),
        ("autocorrect", "off"),
        ("spellcheck", "false"),
        ("aria-hidden", "true"),
        ("tabindex", "-1"),
    ] {
        let _ = textarea.set_attribute(k, v);
    }
    let style = textarea.style();
    for (k, v) in [
        ("position", "fixed"),
        ("left", "0"),
        ("top", "0"),
        ("width", "1px"),
        ("height", "1px"),
        ("opacity", "0"),
        ("border", "none"),
        ("padding", "0"),
        ("resize", "none"),
        ("pointer-events", "none"),
        ("caret-color", "transparent"),
    ] {
        let _ = style.set_property(k, v);
    }
    document
        .body()
        .ok_or("no body")?
        .append_child(&textarea)
        .map_err(|_| "cannot add the textarea")?;

    // Keys: to the canvas. Printable ones insert nothing here (winit makes
    // their text); chords stay with the browser so that paste, copy and
    // cut fire; an IME's keys stay entirely with the IME.
    for kind in ["keydown", "keyup"] {
        let canvas = canvas.clone();
        let wake = wake.clone();
        let cb = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
            if e.is_composing() || e.key() == "Process" || e.key_code() == 229 {
                return;
            }
            if let Some(copy) = copy_key(&e) {
                // Behind text the app has not taken yet, or straight on.
                let waiting = QUEUE.with_borrow(|q| !q.is_empty());
                if waiting {
                    queue(&wake, Input::Key(copy));
                } else {
                    let _ = canvas.dispatch_event(&copy);
                }
            }
            if e.type_() == "keydown" && !(e.ctrl_key() || e.meta_key()) {
                e.prevent_default();
            }
        });
        let _ = textarea.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
        // For the page's whole life.
        cb.forget();
    }
    // Text the browser put in: insertText, an emoji picker, dictation.
    {
        let ta = textarea.clone();
        let wake = wake.clone();
        let cb = Closure::<dyn FnMut(InputEvent)>::new(move |e: InputEvent| {
            if e.is_composing() || e.input_type() == "insertCompositionText" {
                return;
            }
            let text = ta.value();
            ta.set_value("");
            if !text.is_empty() {
                queue(&wake, Input::Text(egui::Event::Text(text)));
            }
        });
        let _ = textarea.add_event_listener_with_callback("input", cb.as_ref().unchecked_ref());
        cb.forget();
    }
    // Paste goes through bevy_egui's page-wide listener; not here as well.
    {
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            e.prevent_default();
        });
        let _ = textarea.add_event_listener_with_callback("paste", cb.as_ref().unchecked_ref());
        cb.forget();
    }
    // Composition: a preview while composing, then the committed text.
    for kind in ["compositionupdate", "compositionend"] {
        let ta = textarea.clone();
        let wake = wake.clone();
        let cb = Closure::<dyn FnMut(CompositionEvent)>::new(move |e: CompositionEvent| {
            let data = e.data().unwrap_or_default();
            let ime = match e.type_().as_str() {
                "compositionupdate" => egui::ImeEvent::Preedit {
                    text: data,
                    active_range_chars: None,
                },
                _ => {
                    ta.set_value("");
                    egui::ImeEvent::Commit(data)
                }
            };
            queue(&wake, Input::Text(egui::Event::Ime(ime)));
        });
        let _ = textarea.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
        cb.forget();
    }
    // The focus moving between the canvas and the agent is no focus change
    // for the app: tell the canvas it still has it. Leaving the page from the
    // agent is a blur of the canvas.
    {
        let canvas2 = canvas.clone();
        let cb = Closure::<dyn FnMut(FocusEvent)>::new(move |_e: FocusEvent| {
            if let Some(f) = focus_event("focus") {
                let _ = canvas2.dispatch_event(&f);
            }
        });
        let _ = textarea.add_event_listener_with_callback("focus", cb.as_ref().unchecked_ref());
        cb.forget();
        let canvas3 = canvas.clone();
        let cb = Closure::<dyn FnMut(FocusEvent)>::new(move |e: FocusEvent| {
            let to_canvas = e.related_target().is_some_and(|t| t == ***canvas3);
            if !to_canvas && let Some(f) = focus_event("blur") {
                let _ = canvas3.dispatch_event(&f);
            }
        });
        let _ = textarea.add_event_listener_with_callback("blur", cb.as_ref().unchecked_ref());
        cb.forget();
    }
    AGENT.with_borrow_mut(|a| *a = Some(Agent { textarea, canvas }));
    Ok(())
}
