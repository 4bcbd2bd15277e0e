//! When the client's loop must run again, for loops that sleep between
//! updates (the window, the browser page, the headless commands). An update
//! is due when a result arrives from another thread (hush_net's [`Wake`]),
//! when the world's next timer is due ([`NextUpdate`]: a retry, a ping, a
//! store flush), and right after any update that left messages for the next
//! one. The window adds its own reasons (input, egui's repaints) in
//! `hush_ui::reactive`; `headless.rs` waits with [`Parker`].
//!
//! [`Wake`]: hush_net::Wake

use std::time::Duration;

use bevy::ecs::message::MessageCursor;
use bevy::prelude::*;
use crossbeam_channel::Receiver;
use hush_net::{NextUpdate, Wake};

use crate::{Outbox, ThreadSync};

/// While messages wait in the outbox or a thread is still catching up, their
/// timers (send timeouts, retries) are looked at this often.
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

/// Where the pacing systems run: in `Last`, after everything that can ask
/// for another update. A loop reads [`NextUpdate`] after this set.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacingSystems;

pub(crate) fn plugin(app: &mut App) {
    // Virtual time is clamped to 250 ms a step by default: after a sleep of
    // seconds every protocol timer would run late by the difference.
    if let Some(mut t) = app.world_mut().get_resource_mut::<Time<Virtual>>() {
        t.set_max_delta(Duration::from_secs(24 * 3600));
    }
    app.add_systems(Last, note_busy_work.in_set(PacingSystems));
    activity::<hush_net::FrameReceived>(app);
    activity::<hush_net::ConnectionChanged>(app);
    activity::<hush_net::ConnectionIntent>(app);
    activity::<hush_net::SetServer>(app);
    activity::<hush_net::NetworkStatus>(app);
    activity::<hush_net::SessionEvent>(app);
    activity::<hush_net::SessionIntent>(app);
    activity::<hush_net::SubscriptionChanged>(app);
    activity::<hush_net::SubscriptionIntent>(app);
    activity::<crate::UnlockIntent>(app);
    activity::<crate::LockIntent>(app);
    activity::<crate::CreateIdentity>(app);
    activity::<crate::VaultEvent>(app);
    activity::<crate::AddContact>(app);
    activity::<crate::ContactEvent>(app);
    activity::<crate::SendIntent>(app);
    activity::<crate::OutboxIntent>(app);
    activity::<crate::OutboxEvent>(app);
    activity::<crate::MessageReceived>(app);
    activity::<crate::StoreFailed>(app);
    activity::<crate::threads::EnsureThread>(app);
    activity::<crate::catchup::IncomingBatch>(app);
}

/// Queued sends and unfinished catch-ups have timers of their own.
fn note_busy_work(
    outbox: Option<Res<Outbox>>,
    threads: Query<&ThreadSync>,
    conn: Res<hush_net::Connection>,
    mut next: ResMut<NextUpdate>,
) {
    let sending = outbox.is_some_and(|o| !o.is_empty());
    let catching_up =
        conn.is_connected() && threads.iter().any(|s| !s.is_caught_up(conn.generation()));
    if sending || catching_up {
        next.within(BUSY_WAIT);
    }
}

/// An update that wrote messages of type `M` runs one more right after, for
/// the systems that read them next time.
pub fn activity<M: Message>(app: &mut App) {
    app.add_systems(
        Last,
        (|messages: Option<Res<Messages<M>>>,
          mut seen: Local<MessageCursor<M>>,
          mut next: ResMut<NextUpdate>| {
            // Every message once, also those written between two updates
            // (a window's events), which the buffer swap at the start of
            // the update has already moved out of "this update's" messages.
            if messages.is_some_and(|m| seen.read(&m).count() > 0) {
                next.soon();
            }
        })
        .in_set(PacingSystems),
    );
}

/// A loop without a window sleeps on this between updates: [`Wake`] (a
/// socket frame, an HTTP reply, a derived key) ends the sleep at once.
///
/// [`Wake`]: hush_net::Wake
pub struct Parker(Receiver<()>);

impl Parker {
    /// Takes over the app's [`Wake`](hush_net::Wake).
    pub fn install(app: &App) -> Parker {
        // One pending wake is enough: the update after it drains everything.
        let (tx, rx) = crossbeam_channel::bounded(1);
        app.world().resource::<Wake>().set(move || {
            let _ = tx.try_send(());
        });
        Parker(rx)
    }

    /// Sleeps until woken, the world's next timer, or `limit`, whichever
    /// comes first; takes the timer (call once after each update).
    pub fn park(&self, world: &mut World, limit: Duration) {
        let wait = world
            .resource_mut::<NextUpdate>()
            .take()
            .map_or(limit, |w| w.min(limit));
        if !wait.is_zero() {
            let _ = self.0.recv_timeout(wait);
        }
    }
}
