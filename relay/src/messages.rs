//! Messages as both handlers (REST and the socket) store and show them:
//! checked, given an id and a server time, stored, counted and broadcast,
//! and written out in the wire format.

use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;
use hush_core::ThreadId;
use hush_core::time::format_rest;
use hush_core::wire::{ErrorCode, Refusal, ServerFrame, WireMessage, check_sealed};

use crate::AppState;
use crate::db::{Inserted, MessageRecord};

/// A frame as the text a socket sends.
pub fn text(frame: ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

/// A stored message in the wire format: with the socket's time format
/// (`ws_format`) or REST's.
pub fn wire_message(m: &MessageRecord, ws_format: bool) -> WireMessage {
    WireMessage {
        id: m.id.clone(),
        thread_id: ThreadId::parse(&m.thread_id).expect("stored thread ids are canonical"),
        ciphertext: m.ciphertext.clone(),
        iv: m.iv.clone(),
        created_at: if ws_format {
            hush_core::time::format_ws(m.created_at)
        } else {
            format_rest(m.created_at)
        },
        client_message_id: m.client_message_id.clone(),
    }
}

/// Stores a message (idempotently when it has a `client_message_id`) and
/// broadcasts new ones to the thread's subscribers if `broadcast`. Used by
/// REST and the socket alike.
pub async fn store_message(
    st: &AppState,
    thread_id: ThreadId,
    ciphertext: String,
    iv: String,
    client_message_id: Option<String>,
    broadcast: bool,
) -> Result<Inserted, Refusal> {
    let rec = prepare_message(st, thread_id, ciphertext, iv, client_message_id).await?;
    let mut outcomes = st
        .db
        .insert_messages(std::slice::from_ref(&rec), broadcast)
        .await
        .map_err(|e| {
            tracing::error!("message insert failed: {e}");
            persist_failed(&rec)
        })?;
    let outcome = outcomes.pop().ok_or_else(|| persist_failed(&rec))?;
    finish_message(st, &outcome, broadcast);
    Ok(outcome)
}

pub fn persist_failed(rec: &MessageRecord) -> Refusal {
    let mut r = Refusal::new(ErrorCode::PersistFailed, "Failed to save message");
    r.client_message_id.clone_from(&rec.client_message_id);
    r.thread_id = Some(rec.thread_id.clone());
    r
}

/// Checks a message and gives it its id and server time.
pub async fn prepare_message(
    st: &AppState,
    thread_id: ThreadId,
    ciphertext: String,
    iv: String,
    client_message_id: Option<String>,
) -> Result<MessageRecord, Refusal> {
    // A stock server knows nothing of client ids.
    let client_message_id = client_message_id.filter(|_| !st.config.stock);
    let tag = |mut r: Refusal| {
        r.client_message_id.clone_from(&client_message_id);
        r.thread_id = Some(thread_id.to_string());
        r
    };
    check_sealed(&ciphertext, &iv, st.config.limits.max_ciphertext).map_err(tag)?;
    match st.thread_exists(thread_id).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(tag(Refusal::new(
                ErrorCode::ThreadNotFound,
                "Thread not found",
            )));
        }
        Err(e) => {
            tracing::error!("thread lookup failed: {e}");
            return Err(tag(Refusal::new(
                ErrorCode::PersistFailed,
                "Failed to save message",
            )));
        }
    }
    Ok(MessageRecord {
        id: uuid::Uuid::new_v4().to_string(),
        thread_id: thread_id.to_string(),
        ciphertext,
        iv,
        created_at: st.next_time(),
        client_message_id,
    })
}

/// Counts a stored message and broadcasts it if it is new (here: on
/// PostgreSQL its notice does that, on every node).
pub fn finish_message(st: &AppState, outcome: &Inserted, broadcast: bool) {
    match outcome {
        Inserted::New(m) => {
            st.stats.messages_stored.fetch_add(1, Ordering::Relaxed);
            if !broadcast || st.db.fans_out_by_notice() {
                return;
            }
            let Ok(thread_id) = ThreadId::parse(&m.thread_id) else {
                return;
            };
            let lagged = st
                .hub
                .broadcast(thread_id, text(ServerFrame::Message(wire_message(m, true))));
            st.stats.slow_closed.fetch_add(lagged, Ordering::Relaxed);
        }
        Inserted::Duplicate(_) => {
            st.stats.duplicate_sends.fetch_add(1, Ordering::Relaxed);
        }
    }
}
