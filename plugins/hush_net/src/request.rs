//! What an HTTP request to the server is, and what can come back: the types
//! both the [`Api`](crate::Api) and the platforms' clients speak.

use zeroize::Zeroizing;

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
