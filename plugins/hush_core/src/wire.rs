//! WebSocket frames, both directions (PROTOCOL.md §2), shared by client and relay.
//!
//! Parsing is tolerant where real servers are sloppy (unknown fields are
//! ignored, an unknown `type` is [`ServerFrame::Unknown`]) and strict where it
//! matters (thread ids must be canonical; a frame missing a required field is an
//! error, never a half-filled value).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::b64;
use crate::crypto::IV_LEN;
use crate::ids::{ThreadId, parse_user_uuid};

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe { thread_id: ThreadId },
    Unsubscribe { thread_id: ThreadId },
    Message(OutgoingMessage),
    Ping,
}

/// The body of a `message` frame from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingMessage {
    pub thread_id: ThreadId,
    pub ciphertext: String,
    pub iv: String,
    /// [ext] the client's id of this logical message, kept across retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

impl ClientFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames serialise")
    }
}

/// A stored message as the server broadcasts it (and as REST lists it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// The server's id of the message (opaque to the client).
    pub id: String,
    pub thread_id: ThreadId,
    pub ciphertext: String,
    pub iv: String,
    /// The server's timestamp string, kept verbatim for catch-up cursors.
    pub created_at: String,
    /// [ext] echoed when the sender set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

/// [ext] The explicit acknowledgement of a send, to the sending connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSent {
    pub id: String,
    pub thread_id: ThreadId,
    pub client_message_id: String,
    pub created_at: String,
}

/// A refused frame. `code`, `client_message_id` and `thread_id` are [ext].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorFrame {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Subscribed {
        thread_id: ThreadId,
    },
    Unsubscribed {
        thread_id: ThreadId,
    },
    Message(WireMessage),
    MessageSent(MessageSent),
    Error(ErrorFrame),
    Pong,
    Heartbeat,
    /// [ext] A thread was created (its row as `GET /api/threads/{id}` gives
    /// it), sent to every connection.
    ThreadCreated(crate::http::ThreadRow),
    /// A `type` this client does not know; skipped, never an error.
    #[serde(skip)]
    Unknown {
        kind: String,
    },
}

/// Why a server frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameParseError {
    #[error("frame is not a JSON object: {0}")]
    NotJson(String),
    #[error("`{kind}` frame is missing or has a bad `{field}`")]
    BadField {
        kind: &'static str,
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct RawServerFrame {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    thread_id: Option<String>,
    ciphertext: Option<String>,
    iv: Option<String>,
    created_at: Option<String>,
    client_message_id: Option<String>,
    message: Option<String>,
    code: Option<String>,
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames serialise")
    }

    /// Parses one text frame from a server.
    pub fn parse(text: &str) -> Result<ServerFrame, FrameParseError> {
        let raw: RawServerFrame =
            serde_json::from_str(text).map_err(|e| FrameParseError::NotJson(e.to_string()))?;
        let tid = |kind: &'static str, v: Option<String>| {
            v.as_deref()
                .and_then(|s| ThreadId::parse(s).ok())
                .ok_or(FrameParseError::BadField {
                    kind,
                    field: "thread_id",
                })
        };
        let req = |kind: &'static str, field: &'static str, v: Option<String>| {
            v.ok_or(FrameParseError::BadField { kind, field })
        };
        Ok(match raw.kind.as_str() {
            "subscribed" => ServerFrame::Subscribed {
                thread_id: tid("subscribed", raw.thread_id)?,
            },
            "unsubscribed" => ServerFrame::Unsubscribed {
                thread_id: tid("unsubscribed", raw.thread_id)?,
            },
            "message" => ServerFrame::Message(WireMessage {
                id: req("message", "id", raw.id)?,
                thread_id: tid("message", raw.thread_id)?,
                ciphertext: req("message", "ciphertext", raw.ciphertext)?,
                iv: req("message", "iv", raw.iv)?,
                created_at: req("message", "created_at", raw.created_at)?,
                client_message_id: raw.client_message_id,
            }),
            "message_sent" => ServerFrame::MessageSent(MessageSent {
                id: req("message_sent", "id", raw.id)?,
                thread_id: tid("message_sent", raw.thread_id)?,
                client_message_id: req("message_sent", "client_message_id", raw.client_message_id)?,
                created_at: req("message_sent", "created_at", raw.created_at)?,
            }),
            "error" => ServerFrame::Error(ErrorFrame {
                message: raw.message.unwrap_or_default(),
                code: raw.code,
                client_message_id: raw.client_message_id,
                thread_id: raw.thread_id,
            }),
            "thread_created" => ServerFrame::ThreadCreated(crate::http::ThreadRow {
                id: ThreadId::parse(raw.id.as_deref().unwrap_or_default()).map_err(|_| {
                    FrameParseError::BadField {
                        kind: "thread_created",
                        field: "id",
                    }
                })?,
                ciphertext: req("thread_created", "ciphertext", raw.ciphertext)?,
                iv: req("thread_created", "iv", raw.iv)?,
                created_at: req("thread_created", "created_at", raw.created_at)?,
            }),
            "pong" => ServerFrame::Pong,
            "heartbeat" => ServerFrame::Heartbeat,
            _ => ServerFrame::Unknown { kind: raw.kind },
        })
    }
}

/// [ext] Machine-readable error codes of hush-relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidThreadId,
    InvalidPayload,
    ThreadNotFound,
    PayloadTooLarge,
    RateLimited,
    SubscriptionLimit,
    UnknownType,
    PersistFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidThreadId => "invalid_thread_id",
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::ThreadNotFound => "thread_not_found",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SubscriptionLimit => "subscription_limit",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::PersistFailed => "persist_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invalid_request" => ErrorCode::InvalidRequest,
            "invalid_thread_id" => ErrorCode::InvalidThreadId,
            "invalid_payload" => ErrorCode::InvalidPayload,
            "thread_not_found" => ErrorCode::ThreadNotFound,
            "payload_too_large" => ErrorCode::PayloadTooLarge,
            "rate_limited" => ErrorCode::RateLimited,
            "subscription_limit" => ErrorCode::SubscriptionLimit,
            "unknown_type" => ErrorCode::UnknownType,
            "persist_failed" => ErrorCode::PersistFailed,
            _ => return None,
        })
    }

    /// Whether sending the same frame again later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::PersistFailed)
    }
}

/// A client frame the server refuses, with the stock server's message and the
/// [ext] code and correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub client_message_id: Option<String>,
    pub thread_id: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            client_message_id: None,
            thread_id: None,
        }
    }

    pub fn into_frame(self) -> ServerFrame {
        ServerFrame::Error(ErrorFrame {
            message: self.message,
            code: Some(self.code.as_str().to_owned()),
            client_message_id: self.client_message_id,
            thread_id: self.thread_id,
        })
    }
}

fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A thread id as a server accepts it: any form a UUID parser takes, then
/// canonicalised (a stock server would key by the raw string instead).
fn lenient_thread_id(s: &str) -> Option<ThreadId> {
    parse_user_uuid(s)
        .ok()
        .or_else(|| uuid::Uuid::try_parse(s).ok())
        .map(ThreadId)
}

impl ClientFrame {
    /// Parses a client's text frame the way a hush server does, with the stock
    /// server's error messages. Base64 must be valid; sizes are checked by
    /// [`check_sealed`], which needs the server's limits.
    pub fn parse(text: &str) -> Result<ClientFrame, Refusal> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| Refusal::new(ErrorCode::InvalidRequest, "Invalid JSON"))?;
        let Value::Object(obj) = v else {
            return Err(Refusal::new(
                ErrorCode::InvalidRequest,
                "Frame must be a JSON object",
            ));
        };
        let kind = obj.get("type");
        let cmid = obj
            .get("client_message_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match kind.and_then(Value::as_str) {
            Some(k @ ("subscribe" | "unsubscribe")) => {
                let Some(raw) = str_field(&obj, "thread_id") else {
                    return Err(Refusal::new(ErrorCode::InvalidRequest, "Missing thread_id"));
                };
                let Some(thread_id) = lenient_thread_id(raw) else {
                    let mut r =
                        Refusal::new(ErrorCode::InvalidThreadId, "Invalid thread_id format");
                    r.thread_id = Some(raw.to_owned());
                    return Err(r);
                };
                Ok(if k == "subscribe" {
                    ClientFrame::Subscribe { thread_id }
                } else {
                    ClientFrame::Unsubscribe { thread_id }
                })
            }
            Some("message") => {
                let refuse = |code, msg: &str, tid: Option<&str>| Refusal {
                    code,
                    message: msg.to_owned(),
                    client_message_id: cmid.clone(),
                    thread_id: tid.map(str::to_owned),
                };
                let (Some(raw_tid), Some(ct), Some(iv)) = (
                    str_field(&obj, "thread_id"),
                    str_field(&obj, "ciphertext"),
                    str_field(&obj, "iv"),
                ) else {
                    return Err(refuse(
                        ErrorCode::InvalidRequest,
                        "Missing required fields: thread_id, ciphertext, iv",
                        str_field(&obj, "thread_id"),
                    ));
                };
                let Some(thread_id) = lenient_thread_id(raw_tid) else {
                    return Err(refuse(
                        ErrorCode::InvalidThreadId,
                        "Invalid thread_id format",
                        Some(raw_tid),
                    ));
                };
                if let Some(c) = &cmid
                    && (c.is_empty() || c.len() > 128)
                {
                    return Err(refuse(
                        ErrorCode::InvalidRequest,
                        "client_message_id must be 1..128 characters",
                        Some(raw_tid),
                    ));
                }
                Ok(ClientFrame::Message(OutgoingMessage {
                    thread_id,
                    ciphertext: ct.to_owned(),
                    iv: iv.to_owned(),
                    client_message_id: cmid,
                }))
            }
            Some("ping") => Ok(ClientFrame::Ping),
            other => {
                // Python formats a missing type as "None"; keep the stock text.
                let shown = match (other, kind) {
                    (Some(s), _) => s.to_owned(),
                    (None, None) | (None, Some(Value::Null)) => "None".to_owned(),
                    (None, Some(v)) => v.to_string(),
                };
                Err(Refusal::new(
                    ErrorCode::UnknownType,
                    format!("Unknown message type: {shown}"),
                ))
            }
        }
    }
}

/// Checks a sealed blob against a server's limits: both fields valid base64,
/// the IV exactly 12 bytes, the decoded ciphertext at most `max_ciphertext`.
pub fn check_sealed(ciphertext: &str, iv: &str, max_ciphertext: usize) -> Result<(), Refusal> {
    // Reject before decoding anything oversized.
    if ciphertext.len() / 4 * 3 > max_ciphertext + 3 {
        return Err(Refusal::new(
            ErrorCode::PayloadTooLarge,
            format!("Ciphertext larger than {max_ciphertext} bytes"),
        ));
    }
    let ct = b64::decode(ciphertext)
        .map_err(|_| Refusal::new(ErrorCode::InvalidPayload, "Invalid base64 encoding"))?;
    let ivb = b64::decode(iv)
        .map_err(|_| Refusal::new(ErrorCode::InvalidPayload, "Invalid base64 encoding"))?;
    if ivb.len() != IV_LEN {
        return Err(Refusal::new(
            ErrorCode::InvalidPayload,
            "IV must be 12 bytes",
        ));
    }
    if ct.len() > max_ciphertext {
        return Err(Refusal::new(
            ErrorCode::PayloadTooLarge,
            format!("Ciphertext larger than {max_ciphertext} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "90b3f6e0-fe98-88c0-51f3-0305c43f6b8a";

    fn tid() -> ThreadId {
        ThreadId::parse(T).unwrap()
    }

    #[test]
    fn client_frames_serialise_like_the_web_client() {
        assert_eq!(
            ClientFrame::Subscribe { thread_id: tid() }.to_json(),
            format!(r#"{{"type":"subscribe","thread_id":"{T}"}}"#)
        );
        assert_eq!(ClientFrame::Ping.to_json(), r#"{"type":"ping"}"#);
        let m = ClientFrame::Message(OutgoingMessage {
            thread_id: tid(),
            ciphertext: "AAAA".into(),
            iv: "AAECAwQFBgcICQoL".into(),
            client_message_id: None,
        });
        assert_eq!(
            m.to_json(),
            format!(
                r#"{{"type":"message","thread_id":"{T}","ciphertext":"AAAA","iv":"AAECAwQFBgcICQoL"}}"#
            )
        );
        let ClientFrame::Message(mut om) = m else {
            unreachable!()
        };
        om.client_message_id = Some("c1".into());
        assert!(
            ClientFrame::Message(om)
                .to_json()
                .ends_with(r#","client_message_id":"c1"}"#)
        );
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = [
            ServerFrame::Subscribed { thread_id: tid() },
            ServerFrame::Unsubscribed { thread_id: tid() },
            ServerFrame::Message(WireMessage {
                id: "m1".into(),
                thread_id: tid(),
                ciphertext: "AAAA".into(),
                iv: "AAECAwQFBgcICQoL".into(),
                created_at: "2026-01-19T10:00:00.123456+00:00".into(),
                client_message_id: Some("c".into()),
            }),
            ServerFrame::MessageSent(MessageSent {
                id: "m1".into(),
                thread_id: tid(),
                client_message_id: "c".into(),
                created_at: "2026-01-19T10:00:00.123456+00:00".into(),
            }),
            ServerFrame::Error(ErrorFrame {
                message: "Thread not found".into(),
                code: Some("thread_not_found".into()),
                client_message_id: Some("c".into()),
                thread_id: Some(T.into()),
            }),
            ServerFrame::Pong,
            ServerFrame::Heartbeat,
            ServerFrame::ThreadCreated(crate::http::ThreadRow {
                id: tid(),
                ciphertext: "AAAA".into(),
                iv: "AAECAwQFBgcICQoL".into(),
                created_at: "2026-01-19T10:00:00.123456+00:00".into(),
            }),
        ];
        for f in frames {
            assert_eq!(ServerFrame::parse(&f.to_json()).unwrap(), f);
        }
    }

    #[test]
    fn stock_message_frame_has_the_stock_shape() {
        let f = ServerFrame::Message(WireMessage {
            id: "m1".into(),
            thread_id: tid(),
            ciphertext: "AAAA".into(),
            iv: "AAECAwQFBgcICQoL".into(),
            created_at: "x".into(),
            client_message_id: None,
        });
        assert_eq!(
            f.to_json(),
            format!(
                r#"{{"type":"message","id":"m1","thread_id":"{T}","ciphertext":"AAAA","iv":"AAECAwQFBgcICQoL","created_at":"x"}}"#
            )
        );
        let e = ServerFrame::Error(ErrorFrame {
            message: "Missing thread_id".into(),
            code: None,
            client_message_id: None,
            thread_id: None,
        });
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","message":"Missing thread_id"}"#
        );
    }

    #[test]
    fn server_parsing_is_tolerant_of_unknowns_and_strict_on_ids() {
        assert_eq!(
            ServerFrame::parse(r#"{"type":"pong","extra":[1,{"a":2}]}"#).unwrap(),
            ServerFrame::Pong
        );
        assert_eq!(
            ServerFrame::parse(r#"{"type":"typing","who":"x"}"#).unwrap(),
            ServerFrame::Unknown {
                kind: "typing".into()
            }
        );
        assert_eq!(
            ServerFrame::parse(&format!(
                r#"{{"type":"subscribed","thread_id":"{}"}}"#,
                T.to_uppercase()
            )),
            Err(FrameParseError::BadField {
                kind: "subscribed",
                field: "thread_id"
            })
        );
        for bad in [
            "",
            "[]",
            "null",
            "{",
            r#"{"no_type":1}"#,
            r#"{"type":5}"#,
            "\u{0}",
        ] {
            assert!(ServerFrame::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            ServerFrame::parse(&format!(
                r#"{{"type":"message","thread_id":"{T}","ciphertext":"A","iv":"B"}}"#
            )),
            Err(FrameParseError::BadField { field: "id", .. })
        ));
        // An error frame with nothing but a type is still an error frame.
        assert!(matches!(
            ServerFrame::parse(r#"{"type":"error"}"#).unwrap(),
            ServerFrame::Error(_)
        ));
    }

    #[test]
    fn client_frames_are_refused_with_stock_messages() {
        let msg = |s: &str| ClientFrame::parse(s).unwrap_err().message;
        assert_eq!(msg(r#"{"type":"subscribe"}"#), "Missing thread_id");
        assert_eq!(
            msg(r#"{"type":"subscribe","thread_id":"nope"}"#),
            "Invalid thread_id format"
        );
        assert_eq!(
            msg(r#"{"type":"message","thread_id":"x"}"#),
            "Missing required fields: thread_id, ciphertext, iv"
        );
        assert_eq!(msg(r#"{"type":"bogus"}"#), "Unknown message type: bogus");
        assert_eq!(msg(r#"{"kind":"ping"}"#), "Unknown message type: None");
        assert_eq!(msg("not json").as_str(), "Invalid JSON");
        assert_eq!(msg("[1,2]").as_str(), "Frame must be a JSON object");
        let r = ClientFrame::parse(r#"{"type":"message","thread_id":"x","ciphertext":"AAAA","iv":"AAAA","client_message_id":"c9"}"#).unwrap_err();
        assert_eq!(r.code, ErrorCode::InvalidThreadId);
        assert_eq!(r.client_message_id.as_deref(), Some("c9"));
        // Upper case ids are accepted and canonicalised.
        assert_eq!(
            ClientFrame::parse(&format!(
                r#"{{"type":"subscribe","thread_id":"{}"}}"#,
                T.to_uppercase()
            ))
            .unwrap(),
            ClientFrame::Subscribe { thread_id: tid() }
        );
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        let nested = "[".repeat(100_000) + &"]".repeat(100_000);
        let huge = format!(
            r#"{{"type":"message","id":"x","thread_id":"{T}","ciphertext":"{}","iv":"AAAA","created_at":"x"}}"#,
            "A".repeat(4_000_000)
        );
        let non_utf8 = String::from_utf8_lossy(&[0xff, 0xfe, b'{', 0x80, b'}']).into_owned();
        let table: Vec<(&str, String)> = vec![
            ("truncated", r#"{"type":"message","id":"x","thread_"#.into()),
            ("truncated string", r#"{"type":"pong"#.into()),
            ("non-utf8 (lossy)", non_utf8),
            ("control bytes", "\u{0}\u{1}\u{2}".into()),
            ("number type", r#"{"type":7}"#.into()),
            (
                "id is a number",
                format!(
                    r#"{{"type":"message","id":5,"thread_id":"{T}","ciphertext":"A","iv":"B","created_at":"x"}}"#
                ),
            ),
            (
                "thread id is an object",
                r#"{"type":"subscribed","thread_id":{}}"#.into(),
            ),
            ("deep nesting", nested),
            ("top-level string", r#""message""#.into()),
        ];
        for (what, input) in &table {
            assert!(ServerFrame::parse(input).is_err(), "{what}");
            // A client frame ignores an `id`; everything else is refused.
            if *what != "id is a number" {
                assert!(ClientFrame::parse(input).is_err(), "{what}");
            }
        }
        // A huge but well-formed message parses (size limits are the relay's job).
        assert!(ServerFrame::parse(&huge).is_ok());
        for input in [
            "{}",
            r#"{"type":null}"#,
            r#"{"type":"message","thread_id":7}"#,
            r#"{"type":"subscribe","thread_id":""}"#,
        ] {
            assert!(ClientFrame::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn sealed_blobs_are_checked_against_limits() {
        assert!(check_sealed("AAAA", "AAECAwQFBgcICQoL", 100).is_ok());
        assert_eq!(
            check_sealed("AA-A", "AAECAwQFBgcICQoL", 100)
                .unwrap_err()
                .message,
            "Invalid base64 encoding"
        );
        assert_eq!(
            check_sealed("AAAA", "AAAA", 100).unwrap_err().code,
            ErrorCode::InvalidPayload
        );
        let big = b64::encode(&[0u8; 101]);
        assert_eq!(
            check_sealed(&big, "AAECAwQFBgcICQoL", 100)
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
        let huge = "A".repeat(1_000_000);
        assert_eq!(
            check_sealed(&huge, "AAECAwQFBgcICQoL", 100)
                .unwrap_err()
                .code,
            ErrorCode::PayloadTooLarge
        );
    }
}
