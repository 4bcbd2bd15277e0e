//! Waking a sleeping app loop. A reactive window runs an update only on
//! input, when a result arrives from another thread (a socket frame, an HTTP
//! reply, a derived key), or when a timer of the world is due. The first
//! two come through [`Wake`]; the timers through [`NextUpdate`].
//!
//! Headless apps update in a loop of their own and need neither: by default
//! [`Wake`] does nothing and nobody reads [`NextUpdate`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::{SendError, Sender};

type WakeFn = Box<dyn Fn() + Send + Sync>;

/// Wakes the app loop from any thread. The app that sleeps (the window) sets
/// the function once; every clone shares it.
#[derive(Resource, Clone, Default)]
pub struct Wake(Arc<OnceLock<WakeFn>>);

impl Wake {
    /// Sets how to wake the loop; only the first call counts.
    pub fn set(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.0.set(Box::new(f));
    }

    pub fn wake(&self) {
        if let Some(f) = self.0.get() {
            f();
        }
    }

    /// A sender that wakes the loop after each message.
    pub fn sender<T>(&self, tx: Sender<T>) -> WakingSender<T> {
        WakingSender {
            tx,
            wake: self.clone(),
        }
    }
}

/// A crossbeam sender whose every message wakes the app loop, so the system
/// that drains it runs at once instead of at the next timer.
pub struct WakingSender<T> {
    tx: Sender<T>,
    wake: Wake,
}

impl<T> Clone for WakingSender<T> {
    fn clone(&self) -> Self {
        WakingSender {
            tx: self.tx.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T> WakingSender<T> {
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let r = self.tx.send(msg);
        self.wake.wake();
        r
    }
}

/// The latest time the loop must run again for the world's timers (a retry,
/// a ping, a flush), as a wait from the current update. Systems lower it with
/// [`Self::within`]; the app that sleeps reads and resets it with
/// [`Self::take`] at the end of each update.
#[derive(Resource, Debug, Default)]
pub struct NextUpdate(Option<Duration>);

impl NextUpdate {
    /// Run again within `wait` at the latest.
    pub fn within(&mut self, wait: Duration) {
        self.0 = Some(self.0.map_or(wait, |w| w.min(wait)));
    }

    /// Run again when the clock reads `at` (`now` is the clock now).
    pub fn at(&mut self, at: Duration, now: Duration) {
        self.within(at.saturating_sub(now));
    }

    /// Run the next update at once: this one left work for the next (a
    /// message written for a system that already ran).
    pub fn soon(&mut self) {
        self.within(Duration::ZERO);
    }

    /// The wait asked for since the last take, and a fresh start.
    pub fn take(&mut self) -> Option<Duration> {
        self.0.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_shortest_wait_wins_until_taken() {
        let mut n = NextUpdate::default();
        assert_eq!(n.take(), None);
        n.within(Duration::from_secs(5));
        n.at(Duration::from_secs(12), Duration::from_secs(10));
        n.within(Duration::from_secs(3));
        assert_eq!(n.take(), Some(Duration::from_secs(2)));
        assert_eq!(n.take(), None);
        n.at(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(n.take(), Some(Duration::ZERO), "a past deadline is now");
    }

    #[test]
    fn a_waking_sender_wakes_every_clone_of_the_wake_after_sending() {
        let wake = Wake::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let sender = wake.sender(tx);
        sender.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1), "without a function it only sends");
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        wake.clone().set(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        sender.clone().send(2).unwrap();
        sender.send(3).unwrap();
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3]);
        drop(rx);
        assert!(sender.send(4).is_err());
    }
}
