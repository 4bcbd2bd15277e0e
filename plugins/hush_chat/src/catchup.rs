//! Catch-up: on every (re)connect, once a thread's subscription is answered,
//! fetch what was written while this client was away, page by page, from the
//! thread's cursor (the server's own `created_at` string). Live messages
//! that arrive meanwhile are stored too (deduplicated by id); only pages of
//! the current run move the stored cursor until the thread is caught up.

use std::time::Duration;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::http::{ApiFailure, MAX_PAGE};
use hush_core::policy::catchup::PageOutcome;
use hush_core::policy::thread_sync::{PageReply, ReplyEffect};
use hush_core::wire::WireMessage;
use hush_net::{
    ApiAppExt, ApiClient, ApiReply, ApiRequest, ApiResult, Connection, Session, SubState,
    Subscription,
};

use crate::ChatSystems;
use crate::threads::{ThreadSync, Threads};
use crate::vault::Vault;

pub(crate) fn plugin(app: &mut App) {
    app.add_api_replies::<Page>()
        .add_message::<IncomingBatch>()
        .add_systems(
            Update,
            (start_catchups, handle_catchup_replies)
                .chain()
                .in_set(ChatSystems::Catchup),
        );
}

/// A page of a thread's history, for the receive system.
#[derive(Message, Debug, Clone)]
pub struct IncomingBatch {
    pub thread: ThreadId,
    pub messages: Vec<WireMessage>,
    /// The catch-up run this page belongs to.
    pub run: u64,
}

/// What a history request was for.
struct Page {
    thread: ThreadId,
    /// The connection it was asked on.
    generation: u64,
    run: u64,
}

fn start_catchups(
    conn: Res<Connection>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: ApiClient<Page>,
    time: Res<Time>,
    mut q: Query<(&mut ThreadSync, &Subscription)>,
) {
    if !conn.is_connected() || !vault.is_unlocked() {
        return;
    }
    let Some(token) = session.token() else { return };
    let generation = conn.generation();
    let now = time.elapsed();
    for (mut sync, sub) in &mut q {
        // History is fetched once the subscription is answered, even if it failed.
        let answered = matches!(sub.state, SubState::Subscribed | SubState::Failed(_));
        let Some(page) = sync.machine.start_fetch(generation, answered, now) else {
            continue;
        };
        let path = format!(
            "/api/messages/{}?after={}&limit={MAX_PAGE}",
            sync.id,
            hush_core::http::url_encode(&page.after)
        );
        api.request(
            ApiRequest::get(path).with_token(Some(token)),
            Page {
                thread: sync.id,
                generation,
                run: page.run,
            },
        );
    }
}

fn handle_catchup_replies(
    threads: Res<Threads>,
    mut replies: MessageReader<ApiReply<Page>>,
    conn: Res<Connection>,
    time: Res<Time>,
    mut q: Query<&mut ThreadSync>,
    mut batches: MessageWriter<IncomingBatch>,
) {
    let now = time.elapsed();
    for ApiReply { tag: r, result } in replies.read() {
        let Some(e) = threads.entity(r.thread) else {
            continue;
        };
        let Ok(mut sync) = q.get_mut(e) else { continue };
        let page = read_page(r.thread, result);
        let reply = match &page {
            Read::Rows(rows) => {
                PageReply::Rows(rows.iter().map(|m| m.created_at.as_str()).collect())
            }
            Read::NoThread => PageReply::NoThread,
            Read::Failed(retry_after) => PageReply::Failed {
                retry_after: *retry_after,
            },
        };
        let effect =
            sync.machine
                .on_reply(r.run, r.generation, conn.generation(), reply, MAX_PAGE, now);
        if let ReplyEffect::Rows { run, outcome } = effect {
            if outcome == PageOutcome::Stuck {
                tracing::warn!(thread = %r.thread, "history timestamps do not advance; stopping");
            }
            if let Read::Rows(rows) = page
                && !rows.is_empty()
            {
                batches.write(IncomingBatch {
                    thread: r.thread,
                    messages: rows,
                    run,
                });
            }
        }
    }
}

/// A history reply, read.
enum Read {
    Rows(Vec<WireMessage>),
    NoThread,
    /// Ask again after this long (or the default pause).
    Failed(Option<Duration>),
}

fn read_page(thread: ThreadId, result: &ApiResult) -> Read {
    match result {
        Ok(resp) if resp.is_success() => match serde_json::from_str(&resp.body) {
            Ok(rows) => Read::Rows(rows),
            Err(e) => {
                tracing::warn!(%thread, "unreadable history page: {e}");
                Read::Failed(None)
            }
        },
        // No thread on the server yet: nothing to catch up on.
        Ok(resp) if resp.status == 404 => Read::NoThread,
        Ok(resp) => {
            let f = ApiFailure::classify(resp.status, &resp.body, false, resp.retry_after);
            tracing::warn!(%thread, "history fetch failed: {f}");
            Read::Failed(match f {
                ApiFailure::RateLimited { retry_after_secs } => {
                    retry_after_secs.map(Duration::from_secs)
                }
                _ => None,
            })
        }
        Err(e) => {
            tracing::warn!(%thread, "history fetch failed: {e}");
            Read::Failed(None)
        }
    }
}
