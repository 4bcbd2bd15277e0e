//! HTTP requests to the server, answered through a callback off the main
//! thread (native: reqwest on the tokio runtime; web: fetch, later).
//!
//! Callers keep their own crossbeam channel and send the result into it from
//! the callback, then drain it in a system: the world is never touched off
//! the main thread.

use bevy::prelude::*;
use zeroize::Zeroizing;

use crate::config::NetConfig;
use crate::platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// One request. `path` starts with `/api/…` or `/health`, query included.
#[derive(Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies may hold the words and tokens are secret: neither is printed.
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    pub fn get(path: impl Into<String>) -> Self {
        ApiRequest {
            method: Method::Get,
            path: path.into(),
            body: None,
            token: None,
        }
    }

    pub fn post(path: impl Into<String>, body: String) -> Self {
        ApiRequest {
            method: Method::Post,
            path: path.into(),
            body: Some(body),
            token: None,
        }
    }

    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(|t| Zeroizing::new(t.to_owned()));
        self
    }
}

/// A response with any status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: String,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u64>,
}

impl ApiResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The request never got a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("network unreachable: {0}")]
    Unreachable(String),
    #[error("server unreachable: {0}")]
    Connect(String),
    #[error("request timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Other(String),
}

pub type ApiResult = Result<ApiResponse, NetError>;

/// The HTTP client, a resource.
#[derive(Resource, Clone)]
pub struct Api {
    pub(crate) client: platform::HttpClient,
    pub(crate) config: NetConfig,
}

impl Api {
    /// Sends `req`; `done` runs off the main thread with the outcome.
    pub fn send(&self, req: ApiRequest, done: impl FnOnce(ApiResult) + Send + 'static) {
        self.client.send(&self.config, req, Box::new(done));
    }

    pub fn server(&self) -> &crate::config::ServerUrl {
        &self.config.server
    }
}
