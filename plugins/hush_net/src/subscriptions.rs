//! Thread subscriptions: one entity per thread, with its state and how many
//! views want it. Everything wanted is (re)subscribed on every connection.
//!
//! A thread stays subscribed while anyone wants it (two views on one thread,
//! one closes: still subscribed). A refused subscribe is `Failed` and is tried
//! again once per new connection, never in a loop. A `subscribe` left
//! unanswered on a live connection is sent again after [`SUBSCRIBE_TIMEOUT`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bevy::prelude::*;
use hush_core::ThreadId;
use hush_core::policy::errors::Concern;
use hush_core::wire::{ClientFrame, ServerFrame};

use crate::NetSystems;
use crate::connection::{Connection, FrameReceived, SendFrame};
use crate::wake::NextUpdate;

/// How long a `subscribe` may go unanswered on a live connection before it
/// is sent again (subscribing twice is harmless). A half-open moment of the
/// network can swallow the frame while the socket lives on: without this,
/// the thread waited for an answer, and its catch-up and sends with it,
/// until the next reconnect (the faults test saw it: `black hole` on B).
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn plugin(app: &mut App) {
    app.init_resource::<Subscriptions>()
        .add_message::<SubscriptionIntent>()
        .add_message::<SubscriptionChanged>()
        .add_systems(
            Update,
            (
                resubscribe_on_connect,
                apply_subscription_intents,
                handle_subscription_frames,
                resend_unanswered,
            )
                .chain()
                .in_set(NetSystems::Subscriptions),
        );
}

/// Want or release a thread's live messages.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionIntent {
    Want(ThreadId),
    Release(ThreadId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// Not subscribed on the current connection (not wanted, or not connected).
    Idle,
    /// `subscribe` sent, no answer yet.
    Pending,
    Subscribed,
    /// The server refused; tried again on the next connection.
    Failed(String),
}

/// A thread's subscription; lives on the thread's entity.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub thread_id: ThreadId,
    pub state: SubState,
    /// How many views (or systems) want this thread.
    pub wanted: u32,
}

/// A subscription's state changed.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChanged {
    pub thread_id: ThreadId,
    pub entity: Entity,
    pub state: SubState,
}

/// The index of thread entities, a resource.
#[derive(Resource, Default, Debug)]
pub struct Subscriptions {
    by_thread: HashMap<ThreadId, Entity>,
    /// The connection generation everything was last subscribed on.
    subscribed_on: Option<u64>,
    /// Intents for entities spawned by others this frame, applied next run.
    deferred: Vec<SubscriptionIntent>,
}

impl Subscriptions {
    pub fn entity(&self, t: ThreadId) -> Option<Entity> {
        self.by_thread.get(&t).copied()
    }

    pub fn len(&self) -> usize {
        self.by_thread.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_thread.is_empty()
    }

    /// The thread's entity, spawned (with an idle, unwanted subscription) if
    /// new, so other plugins can put their components on the same entity.
    pub fn entity_or_spawn(&mut self, commands: &mut Commands, t: ThreadId) -> Entity {
        *self.by_thread.entry(t).or_insert_with(|| {
            commands
                .spawn(Subscription {
                    thread_id: t,
                    state: SubState::Idle,
                    wanted: 0,
                })
                .id()
        })
    }
}

fn set_state(
    sub: &mut Subscription,
    entity: Entity,
    state: SubState,
    changed: &mut MessageWriter<SubscriptionChanged>,
) {
    if sub.state != state {
        sub.state = state.clone();
        changed.write(SubscriptionChanged {
            thread_id: sub.thread_id,
            entity,
            state,
        });
    }
}

/// On every new connection, subscribe everything that is wanted; when the
/// connection is gone, nothing is subscribed.
fn resubscribe_on_connect(
    conn: Res<Connection>,
    mut index: ResMut<Subscriptions>,
    mut subs: Query<(Entity, &mut Subscription)>,
    mut send: MessageWriter<SendFrame>,
    mut changed: MessageWriter<SubscriptionChanged>,
) {
    let generation = conn.generation();
    if conn.is_connected() {
        if index.subscribed_on == Some(generation) {
            return;
        }
        index.subscribed_on = Some(generation);
        for (e, mut s) in &mut subs {
            if s.wanted > 0 {
                send.write(SendFrame(ClientFrame::Subscribe {
                    thread_id: s.thread_id,
                }));
                set_state(&mut s, e, SubState::Pending, &mut changed);
            } else {
                set_state(&mut s, e, SubState::Idle, &mut changed);
            }
        }
    } else if index.subscribed_on.take().is_some() {
        for (e, mut s) in &mut subs {
            if matches!(s.state, SubState::Pending | SubState::Subscribed) {
                set_state(&mut s, e, SubState::Idle, &mut changed);
            }
        }
    }
}

fn apply_subscription_intents(
    mut commands: Commands,
    conn: Res<Connection>,
    mut index: ResMut<Subscriptions>,
    mut intents: MessageReader<SubscriptionIntent>,
    mut subs: Query<&mut Subscription>,
    mut send: MessageWriter<SendFrame>,
    mut changed: MessageWriter<SubscriptionChanged>,
) {
    let live = conn.is_connected() && index.subscribed_on == Some(conn.generation());
    // Threads first seen in this run: their components are inserted at the end.
    let mut fresh: HashMap<Entity, Subscription> = HashMap::new();
    let deferred = std::mem::take(&mut index.deferred);
    for intent in deferred.iter().chain(intents.read()) {
        let (SubscriptionIntent::Want(t) | SubscriptionIntent::Release(t)) = *intent;
        let e = match index.entity(t) {
            Some(e) => e,
            None => {
                let e = commands.spawn_empty().id();
                index.by_thread.insert(t, e);
                fresh.insert(
                    e,
                    Subscription {
                        thread_id: t,
                        state: SubState::Idle,
                        wanted: 0,
                    },
                );
                e
            }
        };
        let mut queried;
        let s: &mut Subscription = match fresh.get_mut(&e) {
            Some(s) => s,
            None => match subs.get_mut(e) {
                Ok(q) => {
                    queried = q;
                    &mut queried
                }
                // Spawned by a command that has not been applied yet.
                Err(_) => {
                    index.deferred.push(*intent);
                    continue;
                }
            },
        };
        match *intent {
            SubscriptionIntent::Want(_) => {
                s.wanted += 1;
                if live && s.state == SubState::Idle {
                    send.write(SendFrame(ClientFrame::Subscribe { thread_id: t }));
                    set_state(s, e, SubState::Pending, &mut changed);
                }
            }
            SubscriptionIntent::Release(_) => {
                s.wanted = s.wanted.saturating_sub(1);
                if s.wanted == 0 {
                    if live && matches!(s.state, SubState::Pending | SubState::Subscribed) {
                        send.write(SendFrame(ClientFrame::Unsubscribe { thread_id: t }));
                    }
                    set_state(s, e, SubState::Idle, &mut changed);
                }
            }
        }
    }
    for (e, s) in fresh {
        commands.entity(e).insert(s);
    }
}

/// Sends a `subscribe` again when it has had no answer for
/// [`SUBSCRIBE_TIMEOUT`] on the connection it was sent on.
fn resend_unanswered(
    conn: Res<Connection>,
    index: Res<Subscriptions>,
    time: Res<Time>,
    subs: Query<(Entity, &Subscription)>,
    mut since: Local<HashMap<Entity, (u64, Duration)>>,
    mut send: MessageWriter<SendFrame>,
    mut next: ResMut<NextUpdate>,
) {
    let generation = conn.generation();
    if !conn.is_connected() || index.subscribed_on != Some(generation) {
        since.clear();
        return;
    }
    let now = time.elapsed();
    let mut pending = HashSet::new();
    for (e, s) in &subs {
        if s.state != SubState::Pending || s.wanted == 0 {
            continue;
        }
        pending.insert(e);
        let sent = since.entry(e).or_insert((generation, now));
        if sent.0 != generation {
            *sent = (generation, now);
        }
        if now.saturating_sub(sent.1) >= SUBSCRIBE_TIMEOUT {
            tracing::warn!(thread = %s.thread_id, "no answer to subscribe; sending it again");
            send.write(SendFrame(ClientFrame::Subscribe {
                thread_id: s.thread_id,
            }));
            sent.1 = now;
        }
        next.at(sent.1 + SUBSCRIBE_TIMEOUT, now);
    }
    since.retain(|e, _| pending.contains(e));
}

fn handle_subscription_frames(
    index: Res<Subscriptions>,
    mut frames: MessageReader<FrameReceived>,
    mut subs: Query<&mut Subscription>,
    mut changed: MessageWriter<SubscriptionChanged>,
) {
    for FrameReceived(f) in frames.read() {
        let (t, new_state) = match f {
            ServerFrame::Subscribed { thread_id } => (*thread_id, SubState::Subscribed),
            ServerFrame::Error(e) => match e.concerns() {
                Concern::Subscription(t) => (t, SubState::Failed(e.message.clone())),
                _ => continue,
            },
            _ => continue,
        };
        let Some(e) = index.entity(t) else { continue };
        let Ok(mut s) = subs.get_mut(e) else { continue };
        // A late answer for something released meanwhile changes nothing.
        if s.wanted > 0 && s.state == SubState::Pending {
            set_state(&mut s, e, new_state, &mut changed);
        }
    }
}
