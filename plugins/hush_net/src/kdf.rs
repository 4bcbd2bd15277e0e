//! Deriving the vault key (Argon2id, 64 MiB, about a second) off the thread
//! that draws: natively on Bevy's compute pool; in a browser in a Web Worker
//! (`web/kdf-worker.js`, whose URL the page's boot script puts in
//! `globalThis.hushKdfWorker`), since a browser tab has one thread and the
//! page would freeze for as long. If the worker cannot run (no URL, blocked,
//! failed to load), the key is derived on the page's thread after all: slow,
//! but never a failed unlock.

use hush_core::crypto::{CryptoError, VaultKey};
use zeroize::Zeroizing;

/// What receives the key.
pub type Derived = Box<dyn FnOnce(Result<VaultKey, CryptoError>) + Send + 'static>;

/// How the vault key is derived from the words and the salt, a resource:
/// Argon2id ([`VaultKey::derive`]) unless a test puts in a fast stand-in
/// (Argon2id's 64 MiB take about a second; a test of what happens after an
/// unlock has no need of it).
#[derive(bevy::prelude::Resource, Clone, Copy)]
pub struct Kdf(pub fn(&str, &str) -> Result<VaultKey, CryptoError>);

impl Default for Kdf {
    fn default() -> Self {
        Kdf(VaultKey::derive)
    }
}

impl Kdf {
    fn is_argon2id(&self) -> bool {
        std::ptr::fn_addr_eq(
            self.0,
            VaultKey::derive as fn(&str, &str) -> Result<VaultKey, CryptoError>,
        )
    }
}

/// Derives the key of `words` with the vault's base64 salt, and hands it to
/// `done` (on the compute pool natively; on the page's event loop in a
/// browser). A stand-in [`Kdf`] runs at once, on the caller's thread.
pub fn derive_vault_key(kdf: Kdf, words: Zeroizing<String>, kdf_salt_b64: String, done: Derived) {
    if !kdf.is_argon2id() {
        done((kdf.0)(&words, &kdf_salt_b64));
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    bevy::tasks::AsyncComputeTaskPool::get()
        .spawn(async move { done(VaultKey::derive(&words, &kdf_salt_b64)) })
        .detach();
    #[cfg(target_arch = "wasm32")]
    web::derive(words, kdf_salt_b64, done);
}

#[cfg(target_arch = "wasm32")]
mod web {
    use std::cell::RefCell;
    use std::rc::Rc;

    use hush_core::crypto::VaultKey;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};
    use zeroize::Zeroizing;

    use super::Derived;

    /// The worker script, as the page's boot script names it.
    fn worker_url() -> Option<String> {
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("hushKdfWorker"))
            .ok()?
            .as_string()
    }

    /// On the page's thread, after the current event (the fallback).
    fn inline(words: Zeroizing<String>, salt: String, done: Derived) {
        wasm_bindgen_futures::spawn_local(async move {
            done(VaultKey::derive(&words, &salt));
        });
    }

    struct Pending {
        words: Zeroizing<String>,
        salt: String,
        done: Derived,
    }

    type Handlers = (
        Closure<dyn FnMut(MessageEvent)>,
        Closure<dyn FnMut(web_sys::Event)>,
    );

    pub fn derive(words: Zeroizing<String>, salt: String, done: Derived) {
        let Some(url) = worker_url() else {
            return inline(words, salt, done);
        };
        let opts = WorkerOptions::new();
        opts.set_type(WorkerType::Module);
        let worker = match Worker::new_with_options(&url, &opts) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("no key-derivation worker ({e:?}): deriving on the page");
                return inline(words, salt, done);
            }
        };
        let msg = js_sys::Object::new();
        let set = |k: &str, v: &str| {
            let _ = js_sys::Reflect::set(&msg, &JsValue::from_str(k), &JsValue::from_str(v));
        };
        set("id", "1");
        set("words", &words);
        set("salt", &salt);
        let pending = Rc::new(RefCell::new(Some(Pending { words, salt, done })));
        let handlers: Rc<RefCell<Option<Handlers>>> = Rc::new(RefCell::new(None));
        // The first reply or error ends the worker; its handlers are dropped
        // after the event that ran them.
        let finish = {
            let worker = worker.clone();
            let pending = pending.clone();
            let handlers = handlers.clone();
            move |key: Option<[u8; 32]>| {
                worker.set_onmessage(None);
                worker.set_onerror(None);
                worker.terminate();
                let h = handlers.borrow_mut().take();
                wasm_bindgen_futures::spawn_local(async move { drop(h) });
                let Some(p) = pending.borrow_mut().take() else {
                    return;
                };
                match key {
                    Some(k) => (p.done)(Ok(VaultKey::from_bytes(k))),
                    None => inline(p.words, p.salt, p.done),
                }
            }
        };
        let finish = Rc::new(RefCell::new(Some(finish)));
        let on_message = {
            let finish = finish.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let key = js_sys::Reflect::get(&e.data(), &JsValue::from_str("key"))
                    .ok()
                    .and_then(|k| k.dyn_into::<js_sys::Uint8Array>().ok())
                    .filter(|k| k.length() == 32)
                    .map(|k| {
                        let mut out = [0u8; 32];
                        k.copy_to(&mut out);
                        k.fill(0, 0, 32);
                        out
                    });
                if key.is_none() {
                    tracing::warn!("the key-derivation worker failed: deriving on the page");
                }
                if let Some(f) = finish.borrow_mut().take() {
                    f(key);
                }
            })
        };
        let on_error = {
            let finish = finish.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                tracing::warn!("the key-derivation worker did not start: deriving on the page");
                if let Some(f) = finish.borrow_mut().take() {
                    f(None);
                }
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        *handlers.borrow_mut() = Some((on_message, on_error));
        if let Err(e) = worker.post_message(&msg) {
            tracing::warn!(
                "the key-derivation worker refused the job ({e:?}): deriving on the page"
            );
            if let Some(f) = finish.borrow_mut().take() {
                f(None);
            }
        }
    }
}
