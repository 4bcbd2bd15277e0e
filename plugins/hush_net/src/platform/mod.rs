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

use std::sync::{Arc, Mutex};

use hush_core::http::Health;
use zeroize::Zeroizing;

use crate::config::NetConfig;
use crate::request::{ApiRequest, ApiResponse, ApiResult, Method, NetError};

/// What an open socket needs, on either platform.
pub struct OpenParams {
    pub config: NetConfig,
    pub token: Zeroizing<String>,
    pub generation: u64,
    /// `/health` of this server, once known (shared across attempts).
    pub health: Arc<Mutex<Option<Health>>>,
    /// The platform's HTTP client (for `/health`).
    pub http: HttpClient,
}

/// One REST request through reqwest (native: hyper; web: the browser's fetch).
/// `send_err` and `body_err` say what a failure means on this platform.
async fn execute_with(
    client: &reqwest::Client,
    url: &str,
    req: ApiRequest,
    send_err: fn(reqwest::Error) -> NetError,
    body_err: fn(reqwest::Error) -> NetError,
) -> ApiResult {
    let mut b = match req.method {
        Method::Get => client.get(url),
        Method::Post => client.post(url),
        Method::Delete => client.delete(url),
    };
    if let Some(t) = &req.token {
        b = b.bearer_auth(t.as_str());
    }
    if let Some(body) = req.body {
        b = b
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let resp = b.send().await.map_err(send_err)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = resp.text().await.map_err(body_err)?;
    Ok(ApiResponse {
        status,
        body,
        retry_after,
    })
}
