//! Driving headless apps: real sockets progress in real time, protocol timers
//! in virtual time, so tests step both.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;

/// One update that advances virtual time by `d`.
pub fn step_app(app: &mut App, d: Duration) {
    app.insert_resource(TimeUpdateStrategy::ManualDuration(d));
    app.update();
}

/// Advances virtual time by `total` in steps of at most `step`, pausing
/// `real_pause` of real time between steps so sockets can answer.
pub fn advance(app: &mut App, total: Duration, step: Duration, real_pause: Duration) {
    let mut done = Duration::ZERO;
    while done < total {
        let d = step.min(total - done);
        step_app(app, d);
        done += d;
        if !real_pause.is_zero() {
            std::thread::sleep(real_pause);
        }
    }
}

/// Updates `app` (1 ms of virtual time per update, about 1 ms of real time
/// between updates) until `pred` holds; panics with `what` after `timeout`.
pub fn run_until(
    app: &mut App,
    timeout: Duration,
    what: &str,
    mut pred: impl FnMut(&mut App) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        step_app(app, Duration::from_millis(1));
        if pred(app) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Makes virtual time follow manual steps of any size (Bevy clamps a step
/// to 250 ms by default).
pub fn unclamp_virtual_time(app: &mut App) {
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_max_delta(Duration::from_secs(24 * 3600));
}
