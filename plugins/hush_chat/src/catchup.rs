//! Catch-up: on every (re)connect, once a thread's subscription is answered,
//! fetch what was written while this client was away, page by page, from the
//! thread's cursor (the server's own `created_at` string). Live messages
//! that arrive meanwhile are stored too (deduplicated by id); only pages of
//! the current run move the stored cursor until the thread is caught up.

use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use hush_core::ThreadId;
use hush_core::http::{ApiFailure, MAX_PAGE};
use hush_core::policy::catchup::{CatchupCursor, PageOutcome, on_page};
use hush_core::wire::WireMessage;
use hush_net::{
    Api, ApiRequest, ApiResult, Connection, HushSystems, Session, SubState, Subscription,
};

use crate::threads::{FetchState, ThreadSync, ThreadSystems, Threads};
use crate::vault::Vault;

pub(crate) fn plugin(app: &mut App) {
    let (tx, rx) = crossbeam_channel::unbounded();
    app.insert_resource(CatchupReplies { tx, rx })
        .add_message::<IncomingBatch>()
        .add_systems(
            Update,
            (start_catchups, handle_catchup_replies)
                .chain()
                .in_set(HushSystems::Chat)
                .in_set(CatchupSystems)
                .after(ThreadSystems),
        );
}

#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CatchupSystems;

/// A page of a thread's history, for the receive system.
#[derive(Message, Debug, Clone)]
pub struct IncomingBatch {
    pub thread: ThreadId,
    pub messages: Vec<WireMessage>,
    /// The catch-up run this page belongs to.
    pub run: u64,
}

struct Reply {
    thread: ThreadId,
    generation: u64,
    run: u64,
    result: ApiResult,
}

#[derive(Resource)]
struct CatchupReplies {
    tx: Sender<Reply>,
    rx: Receiver<Reply>,
}

/// Pause after a failed page before asking again.
pub(crate) const RETRY: Duration = Duration::from_secs(5);

fn start_catchups(
    conn: Res<Connection>,
    vault: Res<Vault>,
    session: Res<Session>,
    api: Res<Api>,
    replies: Res<CatchupReplies>,
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
        if sync.caught_up_on == Some(generation)
            || !matches!(sub.state, SubState::Subscribed | SubState::Failed(_))
        {
            continue;
        }
        match sync.fetch {
            FetchState::InFlight => continue,
            FetchState::Waiting { until } if now < until => continue,
            _ => {}
        }
        if sync.run_gen != Some(generation) {
            // A new run starts where the stored history ends.
            sync.run += 1;
            sync.run_gen = Some(generation);
            sync.fetch_cursor = CatchupCursor::from_raw(sync.record.cursor.as_deref());
        }
        sync.fetch = FetchState::InFlight;
        let path = format!(
            "/api/messages/{}?after={}&limit={MAX_PAGE}",
            sync.record.id,
            hush_core::http::url_encode(sync.fetch_cursor.after())
        );
        let (tx, thread, run) = (replies.tx.clone(), sync.record.id, sync.run);
        api.send(
            ApiRequest::get(path).with_token(Some(token)),
            move |result| {
                let _ = tx.send(Reply {
                    thread,
                    generation,
                    run,
                    result,
                });
            },
        );
    }
}

fn handle_catchup_replies(
    threads: Res<Threads>,
    replies: Res<CatchupReplies>,
    conn: Res<Connection>,
    time: Res<Time>,
    mut q: Query<&mut ThreadSync>,
    mut batches: MessageWriter<IncomingBatch>,
) {
    let now = time.elapsed();
    while let Ok(r) = replies.rx.try_recv() {
        let Some(e) = threads.entity(r.thread) else {
            continue;
        };
        let Ok(mut sync) = q.get_mut(e) else { continue };
        if r.run != sync.run {
            continue; // an abandoned run
        }
        sync.fetch = FetchState::Idle;
        let current = r.generation == conn.generation();
        let wait = |secs: Option<u64>| FetchState::Waiting {
            until: now + secs.map_or(RETRY, Duration::from_secs),
        };
        match r.result {
            Ok(resp) if resp.is_success() => {
                let rows: Vec<WireMessage> = match serde_json::from_str(&resp.body) {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(thread = %r.thread, "unreadable history page: {e}");
                        sync.fetch = wait(None);
                        continue;
                    }
                };
                let outcome = on_page(
                    &mut sync.fetch_cursor,
                    rows.iter().map(|m| m.created_at.as_str()),
                    MAX_PAGE,
                );
                if !rows.is_empty() {
                    batches.write(IncomingBatch {
                        thread: r.thread,
                        messages: rows,
                        run: r.run,
                    });
                }
                match outcome {
                    PageOutcome::More => {}
                    PageOutcome::Done | PageOutcome::Stuck => {
                        if outcome == PageOutcome::Stuck {
                            tracing::warn!(thread = %r.thread, "history timestamps do not advance; stopping");
                        }
                        if current {
                            sync.caught_up_on = Some(r.generation);
                        }
                    }
                }
            }
            // No thread on the server yet: nothing to catch up on.
            Ok(resp) if resp.status == 404 => {
                if current {
                    sync.caught_up_on = Some(r.generation);
                }
            }
            Ok(resp) => {
                let f = ApiFailure::classify(resp.status, &resp.body, false, resp.retry_after);
                tracing::warn!(thread = %r.thread, "history fetch failed: {f}");
                sync.fetch = match f {
                    ApiFailure::RateLimited { retry_after_secs } => wait(retry_after_secs),
                    _ => wait(None),
                };
            }
            Err(e) => {
                tracing::warn!(thread = %r.thread, "history fetch failed: {e}");
                sync.fetch = wait(None);
            }
        }
    }
}
