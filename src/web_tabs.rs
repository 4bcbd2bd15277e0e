//! One tab per profile runs the client. Two tabs on one profile used to run
//! side by side, each with its own copy of the store and its own outbox
//! numbering, and a message queued in one could be lost to the other.
//!
//! Now a tab first takes the profile's Web Lock (`navigator.locks`): the tab
//! that holds it owns the IndexedDB store, the socket and the outbox. Any
//! other tab on the same profile waits, and says so, with a button to move
//! the client to it:
//!
//! - When the owning tab closes, the browser hands the lock to a waiting tab,
//!   which starts at once (the store it loads has everything the closed tab
//!   wrote).
//! - "Use it here" asks the owner over a `BroadcastChannel`; the owner waits
//!   until its store has reached IndexedDB, then reloads, which releases the
//!   lock and makes it a waiting tab in turn.
//!
//! A browser without Web Locks (or a page that is not a secure context, where
//! they do not exist) runs the client as before, with a warning.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;
use hush_store::WebStore;
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, HtmlElement, MessageEvent};

const NOTICE_ID: &str = "hush-other-tab";
const RELEASE: &str = "release";

fn lock_name(profile: &str) -> String {
    format!("hush-profile-{profile}")
}

fn channel(profile: &str) -> Option<BroadcastChannel> {
    BroadcastChannel::new(&format!("hush-tabs-{profile}")).ok()
}

/// The page's `navigator.locks`, where it exists.
fn locks() -> Option<JsValue> {
    let nav = web_sys::window()?.navigator();
    let locks = Reflect::get(&nav, &JsValue::from_str("locks")).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then_some(locks)
}

/// Waits until this tab holds the profile, showing the waiting notice
/// meanwhile. Holds it for the page's life.
pub async fn own_profile(profile: &str) {
    let Some(locks) = locks() else {
        tracing::warn!(
            "this browser has no Web Locks (or the page is not a secure context): \
             two tabs on one profile are not kept apart"
        );
        return;
    };
    let request = match Reflect::get(&locks, &JsValue::from_str("request"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
    {
        Some(f) => f,
        None => return,
    };
    let (granted_tx, granted_rx) = oneshot::channel::<()>();
    let granted_tx = Rc::new(RefCell::new(Some(granted_tx)));
    let on_grant = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        if let Some(tx) = granted_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        // Never settles: the lock is held until the page goes away.
        Promise::new(&mut |_, _| {}).into()
    });
    let opts = Object::new();
    let _ = Reflect::set(&opts, &"mode".into(), &"exclusive".into());
    let name = JsValue::from_str(&lock_name(profile));
    if let Err(e) = request.call3(&locks, &name, &opts, &on_grant) {
        tracing::warn!("could not ask for the profile's lock ({e:?}): running without it");
        return;
    }
    // Granted at once when no other tab has it; the notice only otherwise.
    let mut granted = granted_rx;
    let soon = gloo_timers::future::TimeoutFuture::new(150);
    futures_util::pin_mut!(soon);
    match futures_util::future::select(&mut granted, soon).await {
        futures_util::future::Either::Left(_) => return,
        futures_util::future::Either::Right(_) => {}
    }
    tracing::info!("profile {profile} is open in another tab: waiting for it");
    show_notice(profile);
    let _ = granted.await;
    hide_notice();
    tracing::info!("profile {profile}: this tab has it now");
}

/// The owner's side: a waiting tab's "Use it here" makes this tab reload
/// (and so let go) once every change of its store is in IndexedDB.
pub fn hand_over_on_request(profile: &str, store: Arc<WebStore>) {
    let Some(ch) = channel(profile) else {
        return;
    };
    let cb = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if e.data().as_string().as_deref() != Some(RELEASE) {
            return;
        }
        tracing::info!("another tab asked for this profile: handing it over");
        reload_when_flushed(store.clone());
    });
    ch.set_onmessage(Some(cb.as_ref().unchecked_ref()));
    // Both live as long as the page.
    cb.forget();
    std::mem::forget(ch);
}

fn reload_when_flushed(store: Arc<WebStore>) {
    wasm_bindgen_futures::spawn_local(async move {
        // Writes go out once per turn of the event loop; this waits for them.
        for _ in 0..200 {
            if store.is_flushed() {
                break;
            }
            gloo_timers::future::TimeoutFuture::new(25).await;
        }
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    });
}

fn show_notice(profile: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(body) = doc.body() else {
        return;
    };
    let Ok(div) = doc.create_element("div") else {
        return;
    };
    div.set_id(NOTICE_ID);
    let _ = div.set_attribute("role", "status");
    let _ = div.set_attribute(
        "style",
        "position:fixed;inset:0;display:flex;flex-direction:column;align-items:center;\
         justify-content:center;gap:16px;padding:24px;text-align:center;\
         background:#1b1b1b;color:#d1d5db;font:15px sans-serif",
    );
    let text = doc.create_element("p").ok();
    if let Some(p) = &text {
        p.set_text_content(Some(&format!(
            "hush is open in another tab of this browser (profile “{profile}”). \
             It continues here when that tab closes."
        )));
        let _ = div.append_child(p);
    }
    if let Ok(button) = doc.create_element("button") {
        button.set_text_content(Some("Use it here"));
        let _ = button.set_attribute(
            "style",
            "font:15px sans-serif;padding:10px 18px;border-radius:6px;border:1px solid #4b5563;\
             background:#1f2937;color:#f3f4f6;cursor:pointer",
        );
        let profile = profile.to_owned();
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(ch) = channel(&profile) {
                let _ = ch.post_message(&JsValue::from_str(RELEASE));
                ch.close();
            }
        });
        let _ = button.add_event_listener_with_callback("click", cb.as_ref().unchecked_ref());
        cb.forget();
        let _ = div.append_child(&button);
    }
    let _ = body.append_child(&div);
    if let Some(status) = doc.get_element_by_id("status")
        && let Ok(s) = status.dyn_into::<HtmlElement>()
    {
        s.set_text_content(Some(""));
    }
}

fn hide_notice() {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(NOTICE_ID))
    {
        el.remove();
    }
}
