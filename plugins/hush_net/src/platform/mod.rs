//! Platform code behind one API: sockets, HTTP, the runtime they run on, and
//! what the platform knows of the network. `native` uses tokio
//! (bevy_tokio_tasks), tokio-tungstenite and reqwest with native-tls; `web`
//! uses the browser's WebSocket, fetch and event loop.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
pub use web::*;
