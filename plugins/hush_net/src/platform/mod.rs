//! Platform code behind one API: sockets, HTTP and the runtime they run on.
//! `native` uses tokio (bevy_tokio_tasks), tokio-tungstenite and reqwest with
//! native-tls.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::*;
