//! What the connection-details panel and `hush status --json` show, in one
//! place: the server and its features, the round trip, reconnects and the
//! last disconnect, the queue, and the last catch-up.

use bevy::prelude::*;
use hush_net::{Connection, NetConfig};
use serde::Serialize;

use crate::catchup::LastCatchup;
use crate::outbox::Outbox;

/// The figures, plain data (seconds and milliseconds as numbers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub server: String,
    pub connected: bool,
    /// The [ext] features the server advertises (none: a stock server).
    pub features: Vec<String>,
    /// The last ping's round trip, ms.
    pub rtt_ms: Option<f64>,
    /// Connections opened again over the last 24 hours.
    pub reconnects_24h: usize,
    pub last_disconnect: Option<Disconnect>,
    /// Messages waiting to go out (failed ones included).
    pub queued: usize,
    /// How long the oldest of them has waited, s.
    pub oldest_queued_s: Option<f64>,
    pub last_catchup: Option<Catchup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disconnect {
    pub reason: String,
    /// How long ago, s.
    pub ago_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catchup {
    pub messages: usize,
    /// `None` while it runs.
    pub took_s: Option<f64>,
}

/// The report as of now (`now_ms`: the wall clock, for the queue's ages).
pub fn report(world: &World, now_ms: i64) -> StatusReport {
    report_of(
        Parts {
            server: &world.resource::<NetConfig>().server.to_string(),
            conn: world.resource::<Connection>(),
            outbox: world.resource::<Outbox>(),
            catchup: world.resource::<LastCatchup>(),
            now: world.resource::<Time>().elapsed(),
        },
        now_ms,
    )
}

/// What a report is made of (a system holds these as resources).
pub struct Parts<'a> {
    pub server: &'a str,
    pub conn: &'a Connection,
    pub outbox: &'a Outbox,
    pub catchup: &'a LastCatchup,
    /// The app's clock.
    pub now: std::time::Duration,
}

pub fn report_of(p: Parts, now_ms: i64) -> StatusReport {
    let Parts {
        server,
        conn,
        outbox,
        catchup,
        now,
    } = p;
    let d = &conn.details;
    let oldest = outbox
        .entries()
        .filter_map(|e| outbox.written_ms(e.seq))
        .min();
    StatusReport {
        server: server.to_owned(),
        connected: conn.is_connected(),
        features: conn
            .server
            .as_ref()
            .and_then(|h| h.relay.as_ref())
            .map(|r| r.features.clone())
            .unwrap_or_default(),
        rtt_ms: d.rtt.map(|r| r.as_secs_f64() * 1e3),
        reconnects_24h: d.reconnects_in_day(now),
        last_disconnect: d.last_disconnect.as_ref().map(|(reason, at)| Disconnect {
            reason: reason.clone(),
            ago_s: at.elapsed().as_secs_f64(),
        }),
        queued: outbox.len(),
        oldest_queued_s: oldest.map(|ms| (now_ms - ms).max(0) as f64 / 1e3),
        last_catchup: (catchup.generation > 0).then(|| Catchup {
            messages: catchup.messages,
            took_s: catchup.took.map(|t| t.as_secs_f64()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hush_core::wire::ServerFrame;
    use serde_json::json;

    use crate::testing::*;

    fn report(h: &Harness) -> super::StatusReport {
        super::report(h.world(), crate::now_ms())
    }

    #[test]
    fn the_report_has_the_round_trip_reconnects_queue_and_last_catchup() {
        let mut h = Harness::unlocked("Ann");
        let t = h.ready_thread(PEER, vec![]);
        let r = report(&h);
        assert!(r.connected);
        assert!(r.features.iter().any(|f| f == "thread_list"));
        assert_eq!(r.rtt_ms, None, "no ping yet");
        assert_eq!(r.reconnects_24h, 0);
        assert_eq!(r.last_disconnect, None);
        assert_eq!(r.last_catchup.as_ref().map(|c| c.messages), Some(0));
        // A ping on request, answered 40 ms later.
        h.write(hush_net::ConnectionIntent::MeasureRoundTrip);
        h.steps(1);
        assert_eq!(h.sent_of("ping").len(), 1);
        // Measured in real time (a window's app clock can lag a sleep).
        std::thread::sleep(Duration::from_millis(30));
        h.net.frame(ServerFrame::Pong);
        h.steps(1);
        let rtt = report(&h).rtt_ms.unwrap();
        assert!((30.0..=2000.0).contains(&rtt), "{rtt}");
        // A pong nobody asked for changes nothing.
        h.net.frame(ServerFrame::Pong);
        h.steps(1);
        assert_eq!(report(&h).rtt_ms, Some(rtt));
        // A drop: a reconnect, its reason, and the catch-up it ran.
        h.reconnect();
        h.subscribed(t);
        let m = h.sealed_from(PEER, t, "m1", &at(1), "while away");
        h.answer_history(200, json!([m]));
        let r = report(&h);
        assert_eq!(r.reconnects_24h, 1);
        assert!(r.last_disconnect.is_some());
        let c = r.last_catchup.unwrap();
        assert_eq!(c.messages, 1);
        assert!(c.took_s.is_some());
        // Something queued while the server does not answer.
        h.send(PEER, "waiting");
        let r = report(&h);
        assert_eq!(r.queued, 1);
        assert!(r.oldest_queued_s.is_some_and(|s| s < 5.0));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["queued"], 1);
    }
}
