//! Reactive updates: the window sleeps while nothing happens. An update (and
//! so a frame) runs on input, when a result arrives from another thread
//! (hush_net's [`Wake`]: a socket frame, an HTTP reply, a derived key), when
//! the world's next timer is due ([`NextUpdate`]: a retry, a ping, a store
//! flush), when egui asks to repaint (now or after a delay, e.g. a countdown),
//! and once more after any update that left messages for the next one (the
//! last two kinds are `hush_chat::pacing`'s, shared with headless loops).
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

/// The longest sleep with nothing due: the connection's timers are covered
/// by [`NextUpdate`] and busy work by [`BUSY_WAIT`], so this only bounds the
/// cost of a timer somebody forgot.
pub const IDLE_WAIT: Duration = Duration::from_secs(30);

pub use hush_chat::pacing::BUSY_WAIT;

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
    if let Some(alarm) = Alarm::start(proxy.clone()) {
        app.insert_resource(alarm);
    }
    app.world().resource::<Wake>().set(move || {
        let _ = proxy.send_event(WinitUserEvent::WakeUp);
    });
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
    .add_systems(
        Last,
        (note_egui_repaints, schedule_next_update)
            .chain()
            .after(hush_chat::pacing::PacingSystems),
    );
    // A new size is laid out in the update after the one that saw it: draw
    // that one too (a browser canvas that followed its page stayed stale).
    hush_chat::pacing::activity::<bevy::window::WindowResized>(app);
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

/// How long the loop may sleep: until the first of the world's timers, egui's
/// delayed repaint, or [`IDLE_WAIT`].
pub fn sleep_for(next: Option<Duration>, egui_in: Option<Duration>) -> Duration {
    [next, egui_in]
        .into_iter()
        .flatten()
        .fold(IDLE_WAIT, Duration::min)
}

/// Rounds a wait down to one of a few steps. Bevy's runner treats any change
/// of the update mode as a reason to update at once, so the wait it is given
/// must not change with every frame (a deadline 10.52 s away, then 10.49 s…).
pub fn quantize(wait: Duration) -> Duration {
    const STEPS_MS: [u64; 9] = [0, 16, 100, 250, 500, 1000, 2000, 5000, 10_000];
    let ms = wait.as_millis() as u64;
    if wait >= IDLE_WAIT {
        return IDLE_WAIT;
    }
    let step = STEPS_MS
        .iter()
        .rev()
        .find(|&&s| s <= ms)
        .copied()
        .unwrap_or(0);
    Duration::from_millis(step)
}

fn schedule_next_update(
    mut next: ResMut<NextUpdate>,
    repaint: Res<EguiRepaintAt>,
    mut winit: ResMut<WinitSettings>,
    alarm: Option<Res<Alarm>>,
) {
    let egui_in = repaint
        .at
        .lock()
        .ok()
        .and_then(|mut at| at.take())
        .map(|at| at.saturating_duration_since(Instant::now()));
    let wait = sleep_for(next.take(), egui_in);
    // Natively an alarm thread wakes the loop at the exact time and the
    // update mode never changes; elsewhere the mode's wait, in steps.
    let mode_wait = match alarm {
        Some(alarm) => {
            alarm.set(Instant::now() + wait);
            IDLE_WAIT
        }
        None => quantize(wait),
    };
    let settings = WinitSettings {
        focused_mode: UpdateMode::reactive(mode_wait),
        unfocused_mode: UpdateMode::reactive_low_power(mode_wait),
    };
    if winit.focused_mode != settings.focused_mode {
        *winit = settings;
    }
}

/// A thread that wakes the loop at a set time (native only: a browser has
/// no threads, and its event loop gets the stepped wait instead).
#[derive(Resource, Clone)]
struct Alarm(Arc<(Mutex<Option<Instant>>, std::sync::Condvar)>);

impl Alarm {
    #[cfg(not(target_arch = "wasm32"))]
    fn start(proxy: bevy::winit::EventLoopProxy<WinitUserEvent>) -> Option<Alarm> {
        let alarm = Alarm(Arc::default());
        let a = alarm.clone();
        std::thread::Builder::new()
            .name("hush-alarm".into())
            .spawn(move || {
                let (at, cv) = &*a.0;
                let mut guard = at.lock().expect("alarm lock");
                loop {
                    match *guard {
                        None => guard = cv.wait(guard).expect("alarm lock"),
                        Some(when) => {
                            let now = Instant::now();
                            if now >= when {
                                *guard = None;
                                if proxy.send_event(WinitUserEvent::WakeUp).is_err() {
                                    return; // the event loop is gone
                                }
                            } else {
                                guard = cv.wait_timeout(guard, when - now).expect("alarm lock").0;
                            }
                        }
                    }
                }
            })
            .ok()?;
        Some(alarm)
    }

    #[cfg(target_arch = "wasm32")]
    fn start(_proxy: bevy::winit::EventLoopProxy<WinitUserEvent>) -> Option<Alarm> {
        None
    }

    fn set(&self, when: Instant) {
        let (at, cv) = &*self.0;
        if let Ok(mut a) = at.lock() {
            *a = Some(when);
            cv.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_stepped_down_so_the_mode_changes_seldom() {
        let ms = Duration::from_millis;
        assert_eq!(quantize(ms(10_520)), ms(10_000));
        assert_eq!(quantize(ms(10_490)), ms(10_000));
        assert_eq!(quantize(ms(900)), ms(500));
        assert_eq!(quantize(ms(5)), Duration::ZERO);
        assert_eq!(quantize(Duration::from_secs(3600)), IDLE_WAIT);
    }

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
