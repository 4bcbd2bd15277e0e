//! Catch-up: on every (re)connect, once a thread's subscription is answered,
//! fetch what was written while this client was away, page by page, from the
//! thread's cursor (the server's own `created_at` string). Live messages
//! that arrive meanwhile are stored too (deduplicated by id); only pages of
//! the current run move the stored cursor until the thread is caught up,
//! and the run's end moves it over those live messages as well.

use std::time::Duration;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::http::ApiFailure;
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
        .init_resource::<LastCatchup>()
        .add_systems(
            Update,
            // A reply first, so that the next page is asked for before
            // this one is stored and decrypted (in `Receive`, later in the
            // same update): the relay works on it meanwhile.
            (handle_catchup_replies, start_catchups, time_catchups)
                .chain()
                .in_set(ChatSystems::Catchup),
        );
}

/// The catch-up of the last connection: from the socket opening until every
/// thread was caught up (the details panel, `hush status`).
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct LastCatchup {
    /// The connection it belongs to.
    pub generation: u64,
    /// Messages fetched in history pages on it.
    pub messages: usize,
    /// When the connection opened (a real instant: a window's app clock
    /// can lag behind a sleep).
    pub started: Option<web_time::Instant>,
    /// How long until every thread was caught up; `None` while it runs.
    pub took: Option<Duration>,
}

fn time_catchups(
    conn: Res<Connection>,
    mut last: ResMut<LastCatchup>,
    mut batches: MessageReader<IncomingBatch>,
    q: Query<&ThreadSync>,
) {
    let generation = conn.generation();
    if conn.is_connected() && last.generation != generation {
        *last = LastCatchup {
            generation,
            started: Some(web_time::Instant::now()),
            ..LastCatchup::default()
        };
    }
    last.messages += batches.read().map(|b| b.messages.len()).sum::<usize>();
    if last.took.is_none() && conn.is_connected() && q.iter().all(|s| s.is_caught_up(generation)) {
        last.took = last.started.map(|s| s.elapsed());
    }
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
    /// The page size asked for: a full page means there may be more.
    limit: usize,
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
    // [ext] Larger pages where the relay advertises them: fewer round trips
    // and requests against its rate limit.
    let limit = conn.max_page();
    for (mut sync, sub) in &mut q {
        // History is fetched once the subscription is answered, even if it failed.
        let answered = matches!(sub.state, SubState::Subscribed | SubState::Failed(_));
        let Some(page) = sync.machine.start_fetch(generation, answered, now) else {
            continue;
        };
        let path = format!(
            "/api/messages/{}?after={}&limit={limit}",
            sync.id,
            hush_core::http::url_encode(&page.after)
        );
        api.request(
            ApiRequest::get(path).with_token(Some(token)),
            Page {
                thread: sync.id,
                generation,
                run: page.run,
                limit,
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
                .on_reply(r.run, r.generation, conn.generation(), reply, r.limit, now);
        let rows = match (effect, page) {
            (ReplyEffect::Stale, _) => continue,
            (ReplyEffect::Rows { outcome, .. }, Read::Rows(rows)) => {
                if outcome == PageOutcome::Stuck {
                    tracing::warn!(thread = %r.thread, "history timestamps do not advance; stopping");
                }
                rows
            }
            _ => Vec::new(),
        };
        // A run that ended over messages stored live meanwhile moves the
        // cursor over them, with rows of its own or without.
        if !rows.is_empty() || sync.machine.holds_live_past_cursor() {
            batches.write(IncomingBatch {
                thread: r.thread,
                messages: rows,
                run: sync.machine.run(),
            });
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hush_core::http::MAX_PAGE;
    use hush_core::wire::ServerFrame;
    use serde_json::json;
    use uuid::Uuid;

    use crate::testing::*;

    /// The `after` of the waiting history request, if one waits.
    fn asked_after(h: &Harness) -> Option<String> {
        h.net.pending().iter().find_map(|p| {
            p.split("after=")
                .nth(1)
                .map(|a| a.split('&').next().unwrap().to_owned())
        })
    }

    #[test]
    fn nothing_is_fetched_before_the_subscription_is_answered() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.steps(3);
        assert_eq!(asked_after(&h), None, "{:?}", h.net.pending());
        h.subscribed(t);
        assert!(asked_after(&h).is_some());
    }

    #[test]
    fn a_relay_that_advertises_larger_pages_is_asked_for_them() {
        use hush_core::http::{EXT_MAX_PAGE, Health, RelayInfo, features};
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.drop_and_wait();
        h.connect_to(Health {
            status: "ok".into(),
            relay: Some(RelayInfo {
                version: "test".into(),
                features: features::ALL.iter().map(|f| (*f).to_owned()).collect(),
                max_page: Some(100_000),
                ..RelayInfo::default()
            }),
        });
        h.subscribed(t);
        let asked = h.net.pending().join(" ");
        assert!(asked.contains(&format!("&limit={EXT_MAX_PAGE}")), "{asked}");
        // A page of the old size is short now: caught up.
        let page: Vec<_> = (0..MAX_PAGE as u32)
            .map(|i| h.sealed_from(PEER, t, &format!("m{i}"), &at(i), "x"))
            .collect();
        h.answer_history(200, json!(page));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        assert_eq!(h.log(t).messages.len(), MAX_PAGE);
    }

    #[test]
    fn full_pages_are_followed_from_the_last_row_until_a_short_one() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        assert_eq!(asked_after(&h).unwrap(), "1970-01-01T00%3A00%3A00Z");
        let page: Vec<_> = (0..MAX_PAGE as u32)
            .map(|i| h.sealed_from(PEER, t, &format!("m{i}"), &at(i), "x"))
            .collect();
        h.answer_history(200, json!(page));
        assert!(
            !h.sync(t).is_caught_up(h.conn().generation()),
            "a full page means more"
        );
        let last = at(MAX_PAGE as u32 - 1).replace(':', "%3A");
        assert_eq!(asked_after(&h).unwrap(), last);
        let tail = vec![h.sealed_from(PEER, t, "mx", &at(MAX_PAGE as u32), "last")];
        h.answer_history(200, json!(tail));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        assert_eq!(h.log(t).messages.len(), MAX_PAGE + 1);
        // The cursor is stored: the next run starts after the newest row.
        assert_eq!(
            h.sync(t).machine.cursor(),
            Some(at(MAX_PAGE as u32).as_str())
        );
        assert_eq!(
            h.store.threads().unwrap()[0].cursor.as_deref(),
            Some(at(MAX_PAGE as u32).as_str())
        );
    }

    #[test]
    fn a_failed_page_is_asked_again_from_the_same_place_after_a_pause() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        h.answer_history(500, json!({"error": "boom"}));
        h.steps(3);
        assert_eq!(asked_after(&h), None, "not at once");
        h.advance(Duration::from_secs(6));
        assert_eq!(asked_after(&h).unwrap(), "1970-01-01T00%3A00%3A00Z");
    }

    #[test]
    fn a_missing_thread_on_the_server_is_nothing_to_catch_up_on() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        h.answer_history(404, json!({"error": "Thread not found"}));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        assert!(h.log(t).messages.is_empty());
    }

    /// The stored cursor of `t`, as the next run (or `hush listen`) reads it.
    fn stored_cursor(h: &Harness, t: hush_core::ThreadId) -> Option<String> {
        let records = h.store.threads().unwrap();
        records.into_iter().find(|r| r.id == t).unwrap().cursor
    }

    #[test]
    fn a_message_that_came_live_while_the_last_page_was_on_its_way_is_under_the_cursor() {
        // The relay read the page before the message was written, and the
        // message overtook the page's reply on the socket.
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        let m = h.sealed_from(PEER, t, "m2", &at(2), "live meanwhile");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        assert_eq!(h.log(t).messages.len(), 1, "shown at once");
        assert_eq!(stored_cursor(&h, t), None, "not yet known to be contiguous");
        h.answer_history(200, json!([]));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        assert_eq!(stored_cursor(&h, t).as_deref(), Some(at(2).as_str()));
        assert_eq!(h.sync(t).machine.cursor(), Some(at(2).as_str()));
        assert_eq!(h.log(t).messages.len(), 1, "and shown once");
        // The same with a page of older rows.
        let t2 = h.add_contact(Uuid::from_u128(0x77), "Cy");
        h.subscribed(t2);
        let live = h.sealed_from(Uuid::from_u128(0x77), t2, "c3", &at(3), "live");
        h.net.frame(ServerFrame::Message(live));
        h.steps(2);
        let page = vec![h.sealed_from(Uuid::from_u128(0x77), t2, "c1", &at(1), "old")];
        h.answer_history(200, json!(page));
        assert_eq!(stored_cursor(&h, t2).as_deref(), Some(at(3).as_str()));
        let ids: Vec<_> = h.log(t2).messages.iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["c1", "c3"]);
    }

    #[test]
    fn a_message_live_before_the_thread_was_on_the_server_is_under_the_cursor() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "first");
        h.net.frame(ServerFrame::Message(m));
        h.steps(2);
        h.answer_history(404, json!({"error": "Thread not found"}));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        assert_eq!(stored_cursor(&h, t).as_deref(), Some(at(1).as_str()));
    }

    #[test]
    fn a_new_connection_catches_up_again_from_the_stored_cursor() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.subscribed(t);
        let page = vec![h.sealed_from(PEER, t, "m1", &at(5), "hello")];
        h.answer_history(200, json!(page));
        assert!(h.sync(t).is_caught_up(h.conn().generation()));
        h.reconnect();
        assert!(!h.sync(t).is_caught_up(h.conn().generation()));
        h.subscribed(t);
        assert_eq!(asked_after(&h).unwrap(), at(5).replace(':', "%3A"));
    }

    #[test]
    fn a_refused_subscription_still_gets_its_history() {
        let mut h = Harness::unlocked("Ann");
        let t = h.add_contact(PEER, "Bob");
        h.steps(2);
        h.net.frame(error(
            "too many subscriptions",
            Some("subscription_limit"),
            None,
            Some(t),
        ));
        h.steps(2);
        assert!(matches!(
            h.subscription(t).state,
            hush_net::SubState::Failed(_)
        ));
        assert!(asked_after(&h).is_some(), "history is fetched anyway");
    }
}
