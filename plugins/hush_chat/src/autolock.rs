//! Auto-lock: where someone uses the client (the window, the page), the
//! vault locks after the chosen minutes without their input, as Signal's
//! screen lock does. Drafts and queued messages stay in the profile, sealed,
//! and are back at the next unlock. Headless clients have no user to wait
//! for and never lock by themselves.

use std::time::Duration;

use bevy::prelude::*;
use hush_net::NextUpdate;

use crate::ChatSystems;
use crate::profile::Prefs;
use crate::vault::{LockIntent, Vault};

pub(crate) fn plugin(app: &mut App) {
    app.add_message::<UserActive>().add_systems(
        Update,
        lock_when_idle
            .run_if(resource_exists::<Attended>)
            .in_set(ChatSystems::Vault),
    );
}

/// The person did something (a key, a click, the pointer moved).
#[derive(Message, Debug, Clone, Copy)]
pub struct UserActive;

/// This app has a user whose input is reported ([`UserActive`]): the
/// window and the page insert it; auto-lock applies only then.
#[derive(Resource, Debug, Default)]
pub struct Attended;

/// When the vault locks, idle since `last_input`, with `minutes` chosen.
pub fn lock_at(last_input: Duration, minutes: Option<u32>) -> Option<Duration> {
    minutes.map(|m| last_input + Duration::from_secs(u64::from(m.max(1)) * 60))
}

fn lock_when_idle(
    prefs: Res<Prefs>,
    vault: Res<Vault>,
    time: Res<Time>,
    mut active: MessageReader<UserActive>,
    mut last_input: Local<Option<Duration>>,
    mut lock: MessageWriter<LockIntent>,
    mut next: ResMut<NextUpdate>,
) {
    let now = time.elapsed();
    let input = active.read().count() > 0;
    if !vault.is_unlocked() {
        *last_input = None;
        return;
    }
    if input || last_input.is_none() {
        *last_input = Some(now);
    }
    let Some(at) = lock_at(last_input.unwrap_or(now), prefs.auto_lock_minutes) else {
        return;
    };
    if now >= at {
        tracing::info!(
            "locking after {} idle minutes",
            prefs.auto_lock_minutes.unwrap_or(0)
        );
        lock.write(LockIntent);
        *last_input = None;
    } else {
        // An app asleep between inputs wakes for it.
        next.at(at, now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Attended, UserActive, lock_at};
    use crate::testing::*;
    use crate::{Drafts, SetDraft, SetPrefs, VaultState};

    #[test]
    fn the_lock_time_follows_the_last_input() {
        let t = Duration::from_secs(100);
        assert_eq!(lock_at(t, None), None, "off by default");
        assert_eq!(lock_at(t, Some(5)), Some(Duration::from_secs(400)));
        assert_eq!(
            lock_at(t, Some(0)),
            Some(Duration::from_secs(160)),
            "at least a minute"
        );
    }

    #[test]
    fn an_idle_attended_client_locks_and_keeps_its_draft_and_queue() {
        let mut h = Harness::unlocked("Ann");
        h.app.insert_resource(Attended);
        let t = h.ready_thread(PEER, vec![]);
        h.write(SetPrefs(hush_store::Prefs {
            auto_lock_minutes: Some(2),
            ..Default::default()
        }));
        h.write(SetDraft {
            thread: t,
            text: zeroize::Zeroizing::new("half written".into()),
        });
        h.steps(2);
        h.drop_and_wait();
        h.send(PEER, "queued while away");
        // Input keeps it open.
        for _ in 0..3 {
            h.advance(Duration::from_secs(100));
            h.write(UserActive);
            h.steps(1);
        }
        assert_eq!(h.vault().state, VaultState::Unlocked);
        h.advance(Duration::from_secs(121));
        h.steps(2);
        assert_eq!(
            h.vault().state,
            VaultState::Locked,
            "2 minutes without input"
        );
        assert_eq!(h.store.outbox().unwrap().len(), 1, "the queue is kept");
        assert_eq!(h.store.drafts().unwrap().len(), 1, "the draft is kept");
        let h2 = h.reopened();
        assert_eq!(h2.world().resource::<Drafts>().get(t), "half written");
    }

    #[test]
    fn a_headless_client_never_locks_by_itself() {
        let mut h = Harness::unlocked("Ann");
        h.write(SetPrefs(hush_store::Prefs {
            auto_lock_minutes: Some(1),
            ..Default::default()
        }));
        h.steps(2);
        h.advance(Duration::from_secs(3600));
        assert_eq!(h.vault().state, VaultState::Unlocked);
    }
}
