//! Several tabs on one profile, all live. Each tab runs the whole client
//! (its own world, socket and copy of the store) over the profile's one
//! IndexedDB, and:
//!
//! - each store tells the others what it wrote (`hush_store`'s web store,
//!   over a `BroadcastChannel`); [`share_store`] takes that into this tab's
//!   copy and world (`hush_chat::shared`): a message one tab stored shows in
//!   the others, a contact added in one appears in all, and every tab shows
//!   the whole outbox;
//! - one tab sends the outbox: the one holding the profile's Web Lock
//!   (`navigator.locks`). The others queue what is typed in them (it is in
//!   IndexedDB at once) and the sending tab puts it on the wire. When that
//!   tab closes, the browser gives the lock to another, which sends from
//!   then on ([`follow_the_lock`]).
//!
//! A browser without Web Locks (or a page that is not a secure context,
//! where they do not exist) has every tab send, with a warning: the relay's
//! idempotent sends keep that from storing a message twice, a stock server's
//! catch-up-before-resend rule mostly does.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bevy::prelude::*;
use futures_channel::oneshot;
use hush_chat::{ChatSystems, OutboxRole, StoreFailed, StoredElsewhere};
use hush_net::Wake;
use hush_store::{RemoteChange, WebStore};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

/// The plugin: `claim` from [`claim_profile`], over the tab's store.
pub fn plugin(claim: Claim, store: Arc<WebStore>, report: bool) -> impl Fn(&mut App) {
    move |app: &mut App| {
        let role = if claim.holds() {
            OutboxRole::Sends
        } else {
            OutboxRole::Watches
        };
        app.insert_resource(role)
            .insert_resource(claim.clone())
            .insert_resource(SharedStore(store.clone()))
            .insert_resource(Report(report))
            .add_systems(Startup, (wake_on_news, say_role))
            .add_systems(
                Update,
                (share_store, follow_the_lock).before(ChatSystems::Vault),
            );
    }
}

/// Whether this tab holds the profile's lock (set when the browser grants
/// it, which may be long after start), and whom to wake then.
#[derive(Resource, Clone)]
pub struct Claim {
    held: Arc<AtomicBool>,
    on_grant: Arc<OnceLock<Wake>>,
}

impl Claim {
    fn holds(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
}

#[derive(Resource)]
struct SharedStore(Arc<WebStore>);

#[derive(Resource)]
struct Report(bool);

fn lock_name(profile: &str) -> String {
    format!("hush-profile-{profile}")
}

/// The page's `navigator.locks`, where it exists.
fn locks() -> Option<JsValue> {
    let nav = web_sys::window()?.navigator();
    let locks = Reflect::get(&nav, &JsValue::from_str("locks")).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then_some(locks)
}

/// Asks for the profile's lock and says, within a moment, whether this tab
/// got it. If not, the request stays: the lock comes when its holder closes.
/// Held for the page's life.
pub async fn claim_profile(profile: &str) -> Claim {
    let claim = Claim {
        held: Arc::new(AtomicBool::new(false)),
        on_grant: Arc::new(OnceLock::new()),
    };
    let request = locks().and_then(|l| {
        let f = Reflect::get(&l, &JsValue::from_str("request"))
            .ok()?
            .dyn_into::<Function>()
            .ok()?;
        Some((l, f))
    });
    let Some((locks, request)) = request else {
        tracing::warn!(
            "this browser has no Web Locks (or the page is not a secure context): \
             every tab on a profile sends its outbox"
        );
        claim.held.store(true, Ordering::Release);
        return claim;
    };
    let (granted_tx, granted_rx) = oneshot::channel::<()>();
    let granted_tx = Rc::new(RefCell::new(Some(granted_tx)));
    let (held, on_grant) = (claim.held.clone(), claim.on_grant.clone());
    let grant = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        held.store(true, Ordering::Release);
        if let Some(tx) = granted_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        if let Some(wake) = on_grant.get() {
            wake.wake();
        }
        // Never settles: the lock is held until the page goes away.
        Promise::new(&mut |_, _| {}).into()
    });
    let opts = Object::new();
    let _ = Reflect::set(&opts, &"mode".into(), &"exclusive".into());
    let name = JsValue::from_str(&lock_name(profile));
    if let Err(e) = request.call3(&locks, &name, &opts, &grant) {
        tracing::warn!("could not ask for the profile's lock ({e:?}): this tab sends");
        claim.held.store(true, Ordering::Release);
        return claim;
    }
    // Granted at once when no other tab has it.
    let soon = gloo_timers::future::TimeoutFuture::new(150);
    futures_util::pin_mut!(soon);
    let _ = futures_util::future::select(granted_rx, soon).await;
    claim
}

/// Another tab's change, or the lock, wakes this tab's loop.
fn wake_on_news(store: Res<SharedStore>, claim: Res<Claim>, wake: Res<Wake>) {
    let w = wake.clone();
    store.0.on_remote(move || w.wake());
    let _ = claim.on_grant.set(wake.clone());
}

fn say_role(role: Res<OutboxRole>, report: Res<Report>) {
    let line = match *role {
        OutboxRole::Sends => "tab sends",
        OutboxRole::Watches => "tab watches: another tab of this profile sends",
    };
    tracing::info!("{line}");
    if report.0 {
        hush_ui::report_line(line);
    }
}

/// What the other tabs stored, in this tab's copy and world.
fn share_store(
    store: Res<SharedStore>,
    mut out: MessageWriter<StoredElsewhere>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for change in store.0.take_remote() {
        if let Err(e) = store.0.absorb(&change) {
            failed.write(StoreFailed::new("take in another tab's change", &e));
            continue;
        }
        let news = match change {
            RemoteChange::Messages(m) => StoredElsewhere::Messages(m),
            RemoteChange::Contact(id, _) => StoredElsewhere::Contact(id),
            RemoteChange::Outbox(e) => StoredElsewhere::Outbox(e),
            RemoteChange::OutboxRemoved(seq) => StoredElsewhere::OutboxRemoved(seq),
            // Kept in the copy for the next unlock; this tab's world keeps
            // its own cursors, drafts and settings meanwhile.
            RemoteChange::Profile(_)
            | RemoteChange::ContactRemoved(_)
            | RemoteChange::ThreadForgotten(_)
            | RemoteChange::Thread(_)
            | RemoteChange::Delivered(..)
            | RemoteChange::Draft(..) => continue,
        };
        out.write(news);
    }
}

/// The lock came (the sending tab closed): this tab sends from now on.
fn follow_the_lock(claim: Res<Claim>, mut role: ResMut<OutboxRole>, report: Res<Report>) {
    if *role == OutboxRole::Watches && claim.holds() {
        *role = OutboxRole::Sends;
        tracing::info!("the tab that sent this profile's outbox closed: this one sends now");
        if report.0 {
            hush_ui::report_line("tab sends");
        }
    }
}
