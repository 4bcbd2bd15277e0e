//! HTTP bodies of the hush REST API (PROTOCOL.md §1), shared by client and relay.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::ThreadId;

/// Most thread ids one `POST /api/threads/query` may carry.
pub const MAX_THREAD_QUERY: usize = 100;
/// Default and largest `limit` of `GET /api/messages/{thread_id}`.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// [ext] The largest `limit` a client asks of a relay that advertises larger
/// pages (`max_page` on `/health`), whatever it advertises.
pub const EXT_MAX_PAGE: usize = 1000;

#[derive(Serialize, Deserialize)]
pub struct AuthRequest {
    pub words: String,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthRequest { words: <redacted> }")
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AuthResponse {
    pub token: String,
    pub kdf_salt: String,
    /// Seconds the token stays valid.
    pub expires_in: u64,
}

impl std::fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResponse")
            .field("token", &"<redacted>")
            .field("kdf_salt", &self.kdf_salt)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaltResponse {
    pub kdf_salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateThreadRequest {
    pub id: ThreadId,
    pub ciphertext: String,
    pub iv: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRow {
    pub id: ThreadId,
    pub ciphertext: String,
    pub iv: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadQuery {
    pub thread_ids: Vec<ThreadId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessageRequest {
    pub thread_id: ThreadId,
    pub ciphertext: String,
    pub iv: String,
    /// [ext]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

/// A message row over REST has the same fields as the WebSocket broadcast.
pub use crate::wire::WireMessage as MessageRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountResponse {
    pub thread_id: ThreadId,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub status: String,
}

/// `GET /health`; `relay` is present only on hush-relay.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RelayInfo {
    pub version: String,
    pub features: Vec<String>,
    /// [ext] A random id of this relay process, when it was started for a
    /// data directory (`--port-file`): the window joins a local relay only
    /// when this matches the port file it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// [ext] The largest decoded ciphertext the relay accepts, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ciphertext: Option<usize>,
    /// [ext] The largest `limit` of a history page the relay serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_page: Option<usize>,
}

/// The largest decoded ciphertext a client sends when the server does not
/// say (a stock server has no limit): 1 MiB.
pub const DEFAULT_MAX_CIPHERTEXT: usize = 1 << 20;

/// What a hush relay accepted before it advertised a limit.
pub const OLD_RELAY_MAX_CIPHERTEXT: usize = 64 * 1024;

impl Health {
    /// The largest decoded ciphertext this server takes: as advertised, the
    /// old hush relay default for a relay that does not say, and
    /// [`DEFAULT_MAX_CIPHERTEXT`] for a stock server.
    pub fn max_ciphertext(&self) -> usize {
        match &self.relay {
            Some(r) => r.max_ciphertext.unwrap_or(OLD_RELAY_MAX_CIPHERTEXT),
            None => DEFAULT_MAX_CIPHERTEXT,
        }
    }
}

/// [ext] feature names advertised in [`RelayInfo::features`].
pub mod features {
    /// The WebSocket accepts `Authorization: Bearer` on the upgrade.
    pub const BEARER_HEADER: &str = "ws_bearer_header";
    /// Sends carry `client_message_id` and are answered by `message_sent`.
    pub const MESSAGE_SENT: &str = "message_sent";
    /// A resend with a known `client_message_id` is not stored twice.
    pub const IDEMPOTENT_SEND: &str = "idempotent_send";
    /// REST-posted messages are broadcast over WebSocket.
    pub const REST_BROADCAST: &str = "rest_broadcast";
    /// Error frames carry `code`, `client_message_id` and `thread_id`.
    pub const ERROR_CODES: &str = "error_codes";
    /// A bad WebSocket token is accepted then closed with 4001.
    pub const CLOSE_4001: &str = "close_4001";
    /// `GET /api/threads?after=&limit=` lists threads by creation, and a
    /// `thread_created` frame goes to every connection: how a client hears
    /// of a thread someone who is not yet its contact started with it.
    pub const THREAD_LIST: &str = "thread_list";

    pub const ALL: &[&str] = &[
        BEARER_HEADER,
        MESSAGE_SENT,
        IDEMPOTENT_SEND,
        REST_BROADCAST,
        ERROR_CODES,
        CLOSE_4001,
        THREAD_LIST,
    ];
}

impl Health {
    /// The history page size to ask for: as advertised (at most
    /// [`EXT_MAX_PAGE`]), else [`MAX_PAGE`], which every server serves.
    pub fn max_page(&self) -> usize {
        self.relay
            .as_ref()
            .and_then(|r| r.max_page)
            .map_or(MAX_PAGE, |n| n.clamp(1, EXT_MAX_PAGE))
    }

    pub fn has(&self, feature: &str) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| r.features.iter().any(|f| f == feature))
    }
}

/// A FastAPI-shaped error body: `{"detail": …}` or the middleware's
/// top-level `{"error", "message"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What an HTTP failure means to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// 401 from `/api/auth`: the words are wrong.
    InvalidCredentials {
        remaining_attempts: Option<u64>,
    },
    /// 401 or 403 elsewhere: the token is missing, bad or expired.
    BadToken,
    /// 403 from `/api/auth`: this address is blocked for a while.
    Blocked {
        retry_after_secs: Option<u64>,
    },
    /// 429: wait and try again; never a credential failure.
    RateLimited {
        retry_after_secs: Option<u64>,
    },
    NotFound(String),
    /// Any other status, with the server's text.
    Other {
        status: u16,
        detail: String,
    },
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiFailure::InvalidCredentials {
                remaining_attempts: Some(n),
            } => write!(f, "wrong words ({n} attempts left before a block)"),
            ApiFailure::InvalidCredentials { .. } => write!(f, "wrong words"),
            ApiFailure::BadToken => write!(f, "the session token was refused"),
            ApiFailure::Blocked {
                retry_after_secs: Some(s),
            } => write!(f, "too many failed attempts: blocked for {s} s"),
            ApiFailure::Blocked { .. } => write!(f, "too many failed attempts: blocked"),
            ApiFailure::RateLimited {
                retry_after_secs: Some(s),
            } => write!(f, "rate limited: retry in {s} s"),
            ApiFailure::RateLimited { .. } => write!(f, "rate limited"),
            ApiFailure::NotFound(d) => write!(f, "not found: {d}"),
            ApiFailure::Other { status, detail } => write!(f, "HTTP {status}: {detail}"),
        }
    }
}

impl ApiFailure {
    /// Classifies a non-success response. `is_auth` is true for `POST /api/auth`
    /// (where 401 means wrong words and 403 a block). `retry_after` is the
    /// `Retry-After` header in seconds, if any.
    pub fn classify(status: u16, body: &str, is_auth: bool, retry_after: Option<u64>) -> Self {
        let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
        let detail_obj = parsed.detail.as_ref().and_then(Value::as_object);
        let detail_text = || match &parsed.detail {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => parsed
                .message
                .clone()
                .unwrap_or_else(|| body.chars().take(200).collect()),
        };
        let retry_in_body = detail_obj
            .and_then(|o| o.get("retry_after"))
            .and_then(Value::as_u64);
        match status {
            429 => ApiFailure::RateLimited {
                retry_after_secs: retry_after.or(retry_in_body),
            },
            401 if is_auth => ApiFailure::InvalidCredentials {
                remaining_attempts: detail_obj
                    .and_then(|o| o.get("remaining_attempts"))
                    .and_then(Value::as_u64),
            },
            403 if is_auth => ApiFailure::Blocked {
                retry_after_secs: retry_after.or(retry_in_body),
            },
            401 | 403 => ApiFailure::BadToken,
            404 => ApiFailure::NotFound(detail_text()),
            _ => ApiFailure::Other {
                status,
                detail: detail_text(),
            },
        }
    }
}

/// Percent-encodes a query value: everything but RFC 3986's unreserved
/// characters (tokens, the catch-up cursor's `+` and `:`).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            url_encode("2026-01-01T00:00:00.123456+00:00"),
            "2026-01-01T00%3A00%3A00.123456%2B00%3A00"
        );
        assert_eq!(url_encode("a.b_c-d~e f/é"), "a.b_c-d~e%20f%2F%C3%A9");
    }

    #[test]
    fn classifies_stock_error_bodies() {
        assert_eq!(
            ApiFailure::classify(
                401,
                r#"{"detail":{"error":"invalid_credentials","remaining_attempts":3}}"#,
                true,
                None
            ),
            ApiFailure::InvalidCredentials {
                remaining_attempts: Some(3)
            }
        );
        assert_eq!(
            ApiFailure::classify(401, r#"{"detail":"Invalid or expired token"}"#, false, None),
            ApiFailure::BadToken
        );
        assert_eq!(
            ApiFailure::classify(403, r#"{"detail":"Not authenticated"}"#, false, None),
            ApiFailure::BadToken
        );
        assert_eq!(
            ApiFailure::classify(
                429,
                r#"{"error":"rate_limited","message":"slow down"}"#,
                true,
                Some(6)
            ),
            ApiFailure::RateLimited {
                retry_after_secs: Some(6)
            }
        );
        assert_eq!(
            ApiFailure::classify(404, r#"{"detail":"Thread not found"}"#, false, None),
            ApiFailure::NotFound("Thread not found".into())
        );
        assert_eq!(
            ApiFailure::classify(502, "<html>bad gateway</html>", false, None),
            ApiFailure::Other {
                status: 502,
                detail: "<html>bad gateway</html>".into()
            }
        );
    }

    #[test]
    fn health_features() {
        let h: Health = serde_json::from_str(r#"{"status":"healthy"}"#).unwrap();
        assert!(!h.has(features::BEARER_HEADER));
        let h: Health = serde_json::from_str(
            r#"{"status":"healthy","relay":{"version":"1","features":["ws_bearer_header"]}}"#,
        )
        .unwrap();
        assert!(h.has(features::BEARER_HEADER));
    }

    #[test]
    fn secrets_do_not_print() {
        let r = AuthResponse {
            token: "eyJsecret".into(),
            kdf_salt: "s".into(),
            expires_in: 1,
        };
        assert!(!format!("{r:?}").contains("eyJsecret"));
        let a = AuthRequest {
            words: "abandon".into(),
        };
        assert!(!format!("{a:?}").contains("abandon"));
    }
}
