//! Reactive updates: the window sleeps while nothing happens. An update (and
//! so a frame) runs on input, when a result arrives from another thread
//! (hush_net's [`Wake`]: a socket frame, an HTTP reply, a derived key), when
//! the world's next timer is due ([`NextUpdate`]: a retry, a ping, a store
//! flush), when egui asks to repaint (now or after a delay, e.g. a countdown),
//! and once more after any update that left messages for the next one.
//!
//! Bevy's winit runner does the sleeping (`UpdateMode::Reactive`); this
//! plugin only sets how long it may sleep at the end of every update.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::platform::time::Instant;
use bevy::prelude::*;
use bevy::winit::{EventLoopProxyWrapper, UpdateMode, WinitSettings, WinitUserEvent};
use bevy_egui::{EguiContext, EguiInput, egui};
use hush_net::{NextUpdate, Wake};

/// The longest sleep with nothing due: protocol timers are also covered by
/// [`NextUpdate`], so this only bounds the cost of a timer somebody forgot.
pub const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Makes a window app reactive. Needs `WinitPlugin` (DefaultPlugins), and
/// the net and chat plugins before it.
pub fn plugin(app: &mut App) {
    let Some(proxy) = app
        .world()
        .get_resource::<EventLoopProxyWrapper>()
        .map(|p| (**p).clone())
    else {
        // No winit (tests with a bare egui context): nothing sleeps.
        return;
    };
    let egui_proxy = proxy.clone();
    app.world().resource::<Wake>().set(move || {
        let _ = proxy.send_event(WinitUserEvent::WakeUp);
    });
    // Virtual time is clamped to 250 ms a step by default: after a sleep of
    // seconds every protocol timer would run late by the difference.
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_max_delta(Duration::from_secs(24 * 3600));
    app.insert_resource(WinitSettings {
        focused_mode: UpdateMode::reactive(IDLE_WAIT),
        unfocused_mode: UpdateMode::reactive_low_power(IDLE_WAIT),
    })
    .insert_resource(EguiRepaintAt {
        at: Arc::default(),
        proxy: egui_proxy,
    })
    .add_systems(
        PreUpdate,
        drop_unchanged_modifiers.after(bevy_egui::EguiInputSet::WriteEguiEvents),
    )
    .add_systems(Last, (note_egui_repaints, schedule_next_update).chain());
    activity::<hush_net::FrameReceived>(app);
    activity::<hush_net::ConnectionChanged>(app);
    activity::<hush_net::ConnectionIntent>(app);
    activity::<hush_net::SetServer>(app);
    activity::<hush_net::NetworkStatus>(app);
    activity::<hush_net::SessionEvent>(app);
    activity::<hush_net::SessionIntent>(app);
    activity::<hush_net::SubscriptionChanged>(app);
    activity::<hush_net::SubscriptionIntent>(app);
    activity::<hush_chat::UnlockIntent>(app);
    activity::<hush_chat::LockIntent>(app);
    activity::<hush_chat::CreateIdentity>(app);
    activity::<hush_chat::VaultEvent>(app);
    activity::<hush_chat::AddContact>(app);
    activity::<hush_chat::ContactEvent>(app);
    activity::<hush_chat::SendIntent>(app);
    activity::<hush_chat::OutboxIntent>(app);
    activity::<hush_chat::OutboxEvent>(app);
    activity::<hush_chat::MessageReceived>(app);
    activity::<hush_chat::StoreFailed>(app);
    activity::<hush_chat::threads::EnsureThread>(app);
    activity::<hush_chat::catchup::IncomingBatch>(app);
}

/// bevy_egui adds a `ModifiersChanged` event to every frame's input, changed
/// or not, and egui repaints at once for any event: a loop that never
/// sleeps. Only a change is passed on (egui reads the held modifiers from
/// `RawInput::modifiers` anyway).
fn drop_unchanged_modifiers(
    mut inputs: Query<(Entity, &mut EguiInput)>,
    mut last: Local<bevy::platform::collections::HashMap<Entity, egui::Modifiers>>,
) {
    for (e, mut input) in &mut inputs {
        let mut seen = last.get(&e).copied();
        input.0.events.retain(|ev| match ev {
            egui::Event::ModifiersChanged(m) => {
                let changed = seen != Some(*m);
                seen = Some(*m);
                changed
            }
            _ => true,
        });
        if let Some(m) = seen {
            last.insert(e, m);
        }
    }
}

/// When egui asked to be repainted after a delay (bevy_egui itself only
/// wakes the loop for an immediate repaint).
#[derive(Resource)]
struct EguiRepaintAt {
    at: Arc<Mutex<Option<Instant>>>,
    proxy: bevy::winit::EventLoopProxy<WinitUserEvent>,
}

/// Replaces bevy_egui's repaint callback, once per new context, with one that
/// also keeps delayed requests.
fn note_egui_repaints(
    mut added: Query<&mut EguiContext, Added<EguiContext>>,
    repaint: Res<EguiRepaintAt>,
) {
    for mut ctx in &mut added {
        let (at, proxy) = (repaint.at.clone(), repaint.proxy.clone());
        ctx.get_mut().set_request_repaint_callback(move |info| {
            if info.delay.is_zero() {
                let _ = proxy.send_event(WinitUserEvent::WakeUp);
            } else if let Ok(mut at) = at.lock() {
                let when = Instant::now() + info.delay;
                *at = Some(at.map_or(when, |a| a.min(when)));
            }
        });
    }
}

/// An update that wrote messages of type `M` runs one more right after, for
/// the systems that read them next time.
fn activity<M: Message>(app: &mut App) {
    app.add_systems(
        Last,
        (|messages: Option<Res<Messages<M>>>, mut next: ResMut<NextUpdate>| {
            if messages.is_some_and(|m| m.iter_current_update_messages().len() > 0) {
                next.soon();
            }
        })
        .before(schedule_next_update),
    );
}

/// How long the loop may sleep: until the first of the world's timers, egui's
/// delayed repaint, or [`IDLE_WAIT`].
pub fn sleep_for(next: Option<Duration>, egui_in: Option<Duration>) -> Duration {
    [next, egui_in]
        .into_iter()
        .flatten()
        .fold(IDLE_WAIT, Duration::min)
}

fn schedule_next_update(
    mut next: ResMut<NextUpdate>,
    repaint: Res<EguiRepaintAt>,
    mut winit: ResMut<WinitSettings>,
) {
    let egui_in = repaint
        .at
        .lock()
        .ok()
        .and_then(|mut at| at.take())
        .map(|at| at.saturating_duration_since(Instant::now()));
    let asked = next.take();
    let wait = sleep_for(asked, egui_in);
    tracing::trace!(?asked, ?egui_in, ?wait, "sleeping");
    let settings = WinitSettings {
        focused_mode: UpdateMode::reactive(wait),
        unfocused_mode: UpdateMode::reactive_low_power(wait),
    };
    if winit.focused_mode != settings.focused_mode {
        *winit = settings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_sleeps_until_the_first_thing_due_and_never_past_the_idle_wait() {
        let s = Duration::from_secs;
        assert_eq!(sleep_for(None, None), IDLE_WAIT);
        assert_eq!(sleep_for(Some(s(60)), None), IDLE_WAIT);
        assert_eq!(sleep_for(Some(s(2)), Some(s(3))), s(2));
        assert_eq!(sleep_for(Some(s(2)), Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            sleep_for(None, Some(Duration::from_millis(250))),
            Duration::from_millis(250)
        );
    }
}
