//! The hush app: the command line, the window, and the headless commands
//! (native); the same client in a browser (wasm32).

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(not(target_arch = "wasm32"))]
pub mod delivery;
#[cfg(not(target_arch = "wasm32"))]
pub mod fonts;
#[cfg(not(target_arch = "wasm32"))]
pub mod headless;
#[cfg(not(target_arch = "wasm32"))]
pub mod local_relay;
pub mod notify;
#[cfg(not(target_arch = "wasm32"))]
pub mod repair;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod web_fonts;
#[cfg(target_arch = "wasm32")]
pub mod web_tabs;
#[cfg(target_arch = "wasm32")]
pub mod web_text;
#[cfg(not(target_arch = "wasm32"))]
pub mod window;
