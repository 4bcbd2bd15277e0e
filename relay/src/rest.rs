//! The REST API of PROTOCOL.md §1, with a stock server's status codes and
//! FastAPI-shaped error bodies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hush_core::http::{
    AuthResponse, CountResponse, Health, MAX_PAGE, MAX_THREAD_QUERY, RelayInfo, SaltResponse,
    StatusResponse, ThreadRow, features,
};
use hush_core::time::{format_rest, parse_iso_micros};
use hush_core::wire::{ErrorCode, Refusal, ServerFrame, WireMessage, check_sealed};
use hush_core::{ThreadId, ids};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Gate;
use crate::db::{Inserted, ThreadRecord};

type St = State<Arc<AppState>>;

/// An HTTP error with a FastAPI-shaped body.
pub struct ApiError {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl ApiError {
    fn detail(status: StatusCode, detail: impl Into<Value>) -> Self {
        ApiError {
            status,
            body: json!({ "detail": detail.into() }),
            retry_after: None,
        }
    }

    fn unprocessable(loc: &[&str], msg: impl Into<String>) -> Self {
        Self::detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{ "type": "value_error", "loc": loc, "msg": msg.into() }]),
        )
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("request failed: {e}");
        Self::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({
                "error": "rate_limited",
                "message": format!("Rate limit exceeded. Retry in {secs} seconds."),
            }),
            retry_after: Some(secs),
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// A JSON body; anything unparsable is a 422 like FastAPI's, never a 500.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::detail(StatusCode::PAYLOAD_TOO_LARGE, e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::unprocessable(&["body"], e.to_string()))
    }
}

/// Proof of a valid bearer token.
pub struct Authed;

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let Some(h) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::detail(StatusCode::FORBIDDEN, "Not authenticated"));
        };
        let token = h
            .to_str()
            .ok()
            .and_then(crate::auth::bearer_token)
            .ok_or_else(|| ApiError::detail(StatusCode::FORBIDDEN, "Not authenticated"))?;
        st.tokens
            .verify(token.trim())
            .map(|_| Authed)
            .map_err(|_| ApiError::detail(StatusCode::UNAUTHORIZED, "Invalid or expired token"))
    }
}

/// Per-address rate limits of every `/api` route.
pub async fn rate_limit(
    State(st): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let limiter = if path == "/auth" || path == "/api/auth" {
        st.auth_limiter.as_ref()
    } else if req.method() == axum::http::Method::GET
        && (path.starts_with("/messages/") || path.starts_with("/api/messages/"))
        && !st.config.stock
    {
        st.history_limiter.as_ref()
    } else {
        st.http_limiter.as_ref()
    };
    if let Some(l) = limiter
        && let Err(wait) = l.check(addr.ip())
    {
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(req).await
}

pub async fn health(State(st): St) -> Json<Health> {
    Json(Health {
        status: "healthy".into(),
        relay: (!st.config.stock).then(|| RelayInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
            instance: st.config.instance.clone(),
            max_ciphertext: Some(st.config.limits.max_ciphertext),
            max_page: Some(st.config.limits.max_page),
        }),
    })
}

#[derive(Deserialize)]
pub struct AuthBody {
    words: String,
}

pub async fn auth(
    State(st): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(body): Body<AuthBody>,
) -> Result<Json<AuthResponse>, ApiError> {
    let words = zeroize::Zeroizing::new(body.words);
    let n = words.chars().count();
    if !(20..=500).contains(&n) {
        return Err(ApiError::unprocessable(
            &["body", "words"],
            "String should have between 20 and 500 characters",
        ));
    }
    let ip = addr.ip();
    if let Gate::Blocked { retry_after } = st.guard.gate(ip) {
        let secs = retry_after.as_secs().max(1);
        let mut e = ApiError::detail(
            StatusCode::FORBIDDEN,
            json!({
                "error": "ip_blocked",
                "message": "Too many failed attempts. Try again later.",
                "retry_after": secs,
            }),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    if !st.vault.check_words(&words) {
        st.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        let remaining = st.guard.fail(ip);
        tracing::info!(%ip, remaining, "failed vault unlock");
        return Err(ApiError::detail(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_credentials", "remaining_attempts": remaining }),
        ));
    }
    st.guard.succeed(ip);
    Ok(Json(issue(&st)))
}

fn issue(st: &AppState) -> AuthResponse {
    st.stats.tokens_issued.fetch_add(1, Ordering::Relaxed);
    AuthResponse {
        token: st.tokens.issue(),
        kdf_salt: st.vault.kdf_salt.clone(),
        expires_in: st.tokens.ttl.as_secs(),
    }
}

pub async fn salt(State(st): St) -> Json<SaltResponse> {
    Json(SaltResponse {
        kdf_salt: st.vault.kdf_salt.clone(),
    })
}

pub async fn refresh(State(st): St, _a: Authed) -> Json<AuthResponse> {
    Json(issue(&st))
}

fn path_thread_id(raw: &str, name: &str) -> Result<ThreadId, ApiError> {
    ids::parse_user_uuid(raw)
        .or_else(|_| uuid::Uuid::try_parse(raw).map_err(|_| ()))
        .map(ThreadId)
        .map_err(|_| ApiError::unprocessable(&["path", name], "Input should be a valid UUID"))
}

fn refusal_to_http(r: Refusal) -> ApiError {
    let status = match r.code {
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::ThreadNotFound => StatusCode::NOT_FOUND,
        ErrorCode::PersistFailed => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::detail(status, r.message)
}

fn thread_row(t: ThreadRecord) -> Result<ThreadRow, ApiError> {
    Ok(ThreadRow {
        id: ThreadId::parse(&t.id).map_err(ApiError::internal)?,
        ciphertext: t.ciphertext,
        iv: t.iv,
        created_at: format_rest(t.created_at),
    })
}

#[derive(Deserialize)]
pub struct CreateThreadBody {
    id: String,
    ciphertext: String,
    iv: String,
}

pub async fn create_thread(
    State(st): St,
    _a: Authed,
    Body(b): Body<CreateThreadBody>,
) -> Result<(StatusCode, Json<ThreadRow>), ApiError> {
    let id = path_thread_id(&b.id, "id")
        .map_err(|_| ApiError::unprocessable(&["body", "id"], "Input should be a valid UUID"))?;
    check_sealed(&b.ciphertext, &b.iv, st.config.limits.max_ciphertext).map_err(refusal_to_http)?;
    let (stored, new) = st
        .db
        .create_thread(&ThreadRecord {
            id: id.to_string(),
            ciphertext: b.ciphertext,
            iv: b.iv,
            created_at: st.next_time(),
        })
        .await?;
    st.known_threads.lock().expect("threads lock").insert(id);
    // Connections made from now on list the thread (it is committed), so
    // only those made before need the news.
    let stored_at = st.next_time();
    let row = thread_row(stored)?;
    if new && !st.config.stock {
        // [ext] Every connection hears of it: the peer may not have this
        // thread among its contacts' yet (a message request).
        let frame = ServerFrame::ThreadCreated(row.clone());
        if st.db.fans_out_by_notice() {
            // Every node's connections, through the notice (`cluster`); a
            // lost notice is what a reconnect's thread listing recovers.
            let notice = crate::cluster::everyone_notice(&frame, stored_at);
            if let Err(e) = st.db.notify(&notice).await {
                tracing::warn!("thread_created notice not sent: {e}");
            }
        } else {
            let lagged = st
                .hub
                .broadcast_all(crate::messages::text(frame), stored_at);
            st.stats.slow_closed.fetch_add(lagged, Ordering::Relaxed);
        }
    }
    Ok((StatusCode::CREATED, Json(row)))
}

/// [ext] `GET /api/threads?after=&limit=`: threads in creation order, the
/// oldest `limit` (default 50, at most `max_page`) created after `after`
/// (a `created_at` as this API writes it). A stock server has no such
/// route: `--stock` answers 405 as it does.
pub async fn list_threads(
    State(st): St,
    _a: Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<ThreadRow>>, ApiError> {
    if st.config.stock {
        return Err(ApiError::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ));
    }
    let (after, limit) = page_query(&q, st.config.limits.max_page)?;
    let rows = st.db.list_threads(after, limit).await?;
    Ok(Json(
        rows.into_iter().map(thread_row).collect::<Result<_, _>>()?,
    ))
}

/// The `after` and `limit` of a page query, checked as a stock server
/// checks them (422 with FastAPI's words).
fn page_query(q: &HashMap<String, String>, max: usize) -> Result<(Option<i64>, usize), ApiError> {
    let limit = match q.get("limit") {
        None => hush_core::http::DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::unprocessable(
                    &["query", "limit"],
                    format!("Input should be between 1 and {max}"),
                ));
            }
        },
    };
    let after = match q.get("after") {
        None => None,
        Some(a) => Some(parse_iso_micros(a).ok_or_else(|| {
            ApiError::unprocessable(&["query", "after"], "Input should be a valid datetime")
        })?),
    };
    Ok((after, limit))
}

#[derive(Deserialize)]
pub struct QueryBody {
    thread_ids: Vec<String>,
}

pub async fn query_threads(
    State(st): St,
    _a: Authed,
    Body(b): Body<QueryBody>,
) -> Result<Json<Vec<ThreadRow>>, ApiError> {
    if b.thread_ids.len() > MAX_THREAD_QUERY {
        return Err(ApiError::unprocessable(
            &["body", "thread_ids"],
            format!("List should have at most {MAX_THREAD_QUERY} items"),
        ));
    }
    let mut ids = Vec::with_capacity(b.thread_ids.len());
    for raw in &b.thread_ids {
        ids.push(path_thread_id(raw, "thread_ids")?.to_string());
    }
    let rows = st.db.query_threads(&ids).await?;
    Ok(Json(
        rows.into_iter().map(thread_row).collect::<Result<_, _>>()?,
    ))
}

pub async fn get_thread(
    State(st): St,
    _a: Authed,
    Path(id): Path<String>,
) -> Result<Json<ThreadRow>, ApiError> {
    let id = path_thread_id(&id, "thread_id")?;
    match st.db.get_thread(&id.to_string()).await? {
        Some(t) => Ok(Json(thread_row(t)?)),
        None => Err(ApiError::detail(StatusCode::NOT_FOUND, "Thread not found")),
    }
}

pub async fn delete_thread(
    State(st): St,
    _a: Authed,
    Path(id): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let id = path_thread_id(&id, "thread_id")?;
    st.known_threads.lock().expect("threads lock").remove(&id);
    if st.db.delete_thread(&id.to_string()).await? {
        Ok(Json(StatusResponse {
            status: "deleted".into(),
        }))
    } else {
        Err(ApiError::detail(StatusCode::NOT_FOUND, "Thread not found"))
    }
}

#[derive(Deserialize)]
pub struct PostMessageBody {
    thread_id: String,
    ciphertext: String,
    iv: String,
    #[serde(default)]
    client_message_id: Option<String>,
}

pub async fn post_message(
    State(st): St,
    _a: Authed,
    Body(b): Body<PostMessageBody>,
) -> Result<(StatusCode, Json<WireMessage>), ApiError> {
    let thread_id = path_thread_id(&b.thread_id, "thread_id").map_err(|_| {
        ApiError::unprocessable(&["body", "thread_id"], "Input should be a valid UUID")
    })?;
    if let Some(c) = &b.client_message_id
        && (c.is_empty() || c.len() > 128)
    {
        return Err(ApiError::unprocessable(
            &["body", "client_message_id"],
            "client_message_id must be 1..128 characters",
        ));
    }
    let rec = crate::messages::store_message(
        &st,
        thread_id,
        b.ciphertext,
        b.iv,
        b.client_message_id,
        !st.config.stock,
    )
    .await
    .map_err(refusal_to_http)?;
    let (Inserted::New(m) | Inserted::Duplicate(m)) = rec;
    Ok((
        StatusCode::CREATED,
        Json(crate::messages::wire_message(&m, false)),
    ))
}

pub async fn list_messages(
    State(st): St,
    _a: Authed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<WireMessage>>, ApiError> {
    let thread_id = path_thread_id(&id, "thread_id")?;
    let max = if st.config.stock {
        MAX_PAGE
    } else {
        st.config.limits.max_page
    };
    let (after, limit) = page_query(&q, max)?;
    if !st.thread_exists(thread_id).await? {
        return Err(ApiError::detail(StatusCode::NOT_FOUND, "Thread not found"));
    }
    let rows = st
        .db
        .list_messages(&thread_id.to_string(), after, limit)
        .await?;
    Ok(Json(
        rows.iter()
            .map(|m| crate::messages::wire_message(m, false))
            .collect(),
    ))
}

pub async fn count_messages(
    State(st): St,
    _a: Authed,
    Path(id): Path<String>,
) -> Result<Json<CountResponse>, ApiError> {
    let thread_id = path_thread_id(&id, "thread_id")?;
    let count = st.db.count_messages(&thread_id.to_string()).await?;
    Ok(Json(CountResponse { thread_id, count }))
}

pub async fn delete_message(
    State(st): St,
    _a: Authed,
    Path(id): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    if st.db.delete_message(&id).await? {
        Ok(Json(StatusResponse {
            status: "deleted".into(),
        }))
    } else {
        Err(ApiError::detail(StatusCode::NOT_FOUND, "Message not found"))
    }
}
