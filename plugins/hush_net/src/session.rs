//! The access token: obtained with the words, refreshed before it expires,
//! replaced when the server rejects it.
//!
//! On an auth rejection the token is never reused: refresh it (`POST
//! /api/auth/refresh`); if that fails, authenticate again with the words held
//! in memory while unlocked; if the server says the words are wrong, stop
//! (the connection ends in its auth-failed state). 429 and a temporary block
//! mean "wait and try again", never "wrong words".

use std::time::Duration;

use bevy::prelude::*;
use hush_core::http::{ApiFailure, AuthResponse};
use zeroize::Zeroizing;

use crate::NetSystems;
use crate::api::{ApiAppExt, ApiClient, ApiReply, ApiRequest, NetError};
use crate::config::NetConfig;

pub(crate) fn plugin(app: &mut App) {
    app.add_api_replies::<Op>()
        .add_message::<TokenNeeded>()
        .add_message::<SessionEvent>()
        .add_message::<SessionIntent>()
        .add_systems(
            Update,
            (apply_session_intents, handle_replies, start_session_ops)
                .chain()
                .in_set(NetSystems::Session),
        );
}

/// The connection needs a token; `stale` means the server refused the last one.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenNeeded {
    pub stale: bool,
}

/// Intents for the session.
#[derive(Message, Clone)]
pub enum SessionIntent {
    /// Keep these words (in memory only) and authenticate with them now.
    Login { words: Zeroizing<String> },
    /// Forget the token and the words.
    Logout,
}

impl std::fmt::Debug for SessionIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionIntent::Login { .. } => f.write_str("Login { words: <redacted> }"),
            SessionIntent::Logout => f.write_str("Logout"),
        }
    }
}

/// Why there is no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Rejected(ApiFailure),
    #[error("{0}")]
    Network(NetError),
    #[error("the server's answer was not understood: {0}")]
    BadResponse(String),
    #[error("not unlocked: no words to authenticate with")]
    NoCredentials,
}

/// What happened to the session.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// `/api/auth` succeeded; the vault key derives from this salt.
    Authenticated {
        kdf_salt: String,
    },
    TokenRefreshed,
    /// No token this time. `fatal`: do not retry without the user.
    Failed {
        error: SessionError,
        fatal: bool,
    },
    LoggedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Auth,
    Refresh,
}

/// The token and the credentials behind it, a resource.
#[derive(Resource, Default)]
pub struct Session {
    token: Option<Zeroizing<String>>,
    words: Option<Zeroizing<String>>,
    kdf_salt: Option<String>,
    /// Virtual time to refresh at.
    refresh_at: Option<Duration>,
    in_flight: Option<Op>,
    /// The connection is waiting for a token.
    needed: bool,
    /// Wait until then before the next request (429, temporary block).
    wait_until: Option<Duration>,
    /// The next request should be this (after a wait).
    queued: Option<Op>,
    /// The last failure, for the UI.
    pub last_error: Option<SessionError>,
}

impl Session {
    /// A session that starts with a token (and no words to fall back on).
    pub fn with_token(token: &str) -> Self {
        Session {
            token: Some(Zeroizing::new(token.to_owned())),
            ..Self::default()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().map(String::as_str)
    }

    pub fn kdf_salt(&self) -> Option<&str> {
        self.kdf_salt.as_deref()
    }

    pub fn has_words(&self) -> bool {
        self.words.is_some()
    }

    /// Keeps the words (in memory) for re-authentication.
    pub fn set_words(&mut self, words: Zeroizing<String>) {
        self.words = Some(words);
    }

    /// A request is under way.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }
}

fn apply_session_intents(
    mut s: ResMut<Session>,
    mut intents: MessageReader<SessionIntent>,
    mut events: MessageWriter<SessionEvent>,
) {
    for i in intents.read() {
        match i {
            SessionIntent::Login { words } => {
                s.words = Some(words.clone());
                s.token = None;
                s.queued = Some(Op::Auth);
            }
            SessionIntent::Logout => {
                s.words = None;
                s.token = None;
                s.refresh_at = None;
                s.queued = None;
                s.needed = false;
                events.write(SessionEvent::LoggedOut);
            }
        }
    }
}

fn handle_replies(
    mut s: ResMut<Session>,
    config: Res<NetConfig>,
    time: Res<Time>,
    mut replies: MessageReader<ApiReply<Op>>,
    mut events: MessageWriter<SessionEvent>,
) {
    let now = time.elapsed();
    for ApiReply { tag: op, result } in replies.read() {
        let op = *op;
        s.in_flight = None;
        let outcome = match result {
            Err(e) => Err((SessionError::Network(e.clone()), false)),
            Ok(resp) if resp.is_success() => match serde_json::from_str::<AuthResponse>(&resp.body)
            {
                Ok(a) => {
                    let ttl = Duration::from_secs(a.expires_in);
                    s.refresh_at =
                        Some(now + ttl.saturating_sub(config.refresh_margin).max(ttl / 2));
                    s.token = Some(Zeroizing::new(a.token));
                    s.last_error = None;
                    Ok(match op {
                        Op::Auth => {
                            s.kdf_salt = Some(a.kdf_salt.clone());
                            SessionEvent::Authenticated {
                                kdf_salt: a.kdf_salt,
                            }
                        }
                        Op::Refresh => SessionEvent::TokenRefreshed,
                    })
                }
                Err(e) => Err((SessionError::BadResponse(e.to_string()), false)),
            },
            Ok(resp) => {
                let failure =
                    ApiFailure::classify(resp.status, &resp.body, op == Op::Auth, resp.retry_after);
                match (&failure, op) {
                    // Wait as told, then try the same again; the connection keeps waiting.
                    (
                        ApiFailure::RateLimited { retry_after_secs }
                        | ApiFailure::Blocked { retry_after_secs },
                        _,
                    ) => {
                        let wait =
                            Duration::from_secs(retry_after_secs.unwrap_or(5).clamp(1, 3600));
                        tracing::warn!("auth: {failure}; retrying in {wait:?}");
                        s.wait_until = Some(now + wait);
                        s.queued = Some(op);
                        s.last_error = Some(SessionError::Rejected(failure));
                        continue;
                    }
                    // The token is dead: authenticate with the words instead.
                    (ApiFailure::BadToken, Op::Refresh) => {
                        s.token = None;
                        if s.words.is_some() {
                            s.queued = Some(Op::Auth);
                            continue;
                        }
                        Err((SessionError::Rejected(failure), true))
                    }
                    (ApiFailure::InvalidCredentials { .. }, _) => {
                        Err((SessionError::Rejected(failure), true))
                    }
                    _ => Err((SessionError::Rejected(failure), false)),
                }
            }
        };
        match outcome {
            Ok(ev) => {
                s.needed = false;
                events.write(ev);
            }
            Err((error, fatal)) => {
                tracing::warn!(fatal, "no token: {error}");
                s.last_error = Some(error.clone());
                // A failed proactive refresh tries again in a minute.
                if op == Op::Refresh && !fatal && s.token.is_some() {
                    s.refresh_at = Some(now + Duration::from_secs(60));
                }
                s.needed = false;
                events.write(SessionEvent::Failed { error, fatal });
            }
        }
    }
}

fn start_session_ops(
    mut s: ResMut<Session>,
    api: ApiClient<Op>,
    time: Res<Time>,
    mut needed: MessageReader<TokenNeeded>,
    mut events: MessageWriter<SessionEvent>,
) {
    let now = time.elapsed();
    for n in needed.read() {
        s.needed = true;
        if s.in_flight.is_some() || s.queued.is_some() {
            continue;
        }
        match (&s.token, n.stale) {
            (Some(_), false) => {
                s.needed = false;
                events.write(SessionEvent::TokenRefreshed);
            }
            (Some(_), true) => s.queued = Some(Op::Refresh),
            (None, _) if s.words.is_some() => s.queued = Some(Op::Auth),
            (None, _) => {
                s.needed = false;
                events.write(SessionEvent::Failed {
                    error: SessionError::NoCredentials,
                    fatal: true,
                });
            }
        }
    }
    if s.in_flight.is_none()
        && s.queued.is_none()
        && s.token.is_some()
        && s.refresh_at.is_some_and(|t| now >= t)
    {
        s.queued = Some(Op::Refresh);
    }
    if s.in_flight.is_some() || s.wait_until.is_some_and(|t| now < t) {
        return;
    }
    let Some(op) = s.queued.take() else { return };
    s.wait_until = None;
    let req = match op {
        Op::Auth => {
            let Some(words) = &s.words else {
                if s.needed {
                    s.needed = false;
                    events.write(SessionEvent::Failed {
                        error: SessionError::NoCredentials,
                        fatal: true,
                    });
                }
                return;
            };
            let body = serde_json::json!({ "words": words.as_str() }).to_string();
            ApiRequest::post("/api/auth", body)
        }
        Op::Refresh => ApiRequest::post("/api/auth/refresh", String::new()).with_token(s.token()),
    };
    s.in_flight = Some(op);
    api.request(req, op);
}
