//! A headless client: one app with the connection and messaging plugins,
//! stepped in real time until something is done. The command line, the
//! system tests and the benchmarks drive the client through this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use hush_net::{NetConfig, ServerList, UrlError};
use hush_store::Store;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::contacts::{Contact, ContactError};
use crate::pacing::Parker;
use crate::threads::ThreadKey;
use crate::{
    AddContact, ChatSystems, ContactEvent, HushClientPlugins, MessageReceived, OutboxEvent,
    StoreFailed, Threads, UnlockError, UnlockIntent, Vault, VaultEvent, VaultState,
};

/// Why a headless step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The vault did not unlock (`WrongWords`: the words were refused), or
    /// the identity could not be created.
    #[error(transparent)]
    Unlock(#[from] UnlockError),
    #[error("this profile has no identity yet: run `hush identity --name NAME` first")]
    NoIdentity,
    #[error(transparent)]
    Contact(#[from] ContactError),
    /// It did not finish in time; `why` is the last error seen, if any.
    #[error("{what} took too long{}", .why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    Timeout {
        what: &'static str,
        why: Option<String>,
    },
}

impl Failure {
    /// The words were refused (not a fault of the machine or the network).
    pub fn is_auth(&self) -> bool {
        matches!(self, Failure::Unlock(UnlockError::WrongWords { .. }))
    }
}

/// What a run saw, collected every update.
#[derive(Resource, Default)]
pub struct Seen {
    pub received: Vec<MessageReceived>,
    pub outbox: Vec<OutboxEvent>,
    pub contacts: Vec<ContactEvent>,
    pub vault: Vec<VaultEvent>,
    /// Writes the store refused (a full disk): what they were is fetched or
    /// sent again, but a command should say so rather than wait.
    pub store_failed: Vec<StoreFailed>,
}

fn collect(
    mut seen: ResMut<Seen>,
    mut r: MessageReader<MessageReceived>,
    mut o: MessageReader<OutboxEvent>,
    mut c: MessageReader<ContactEvent>,
    mut v: MessageReader<VaultEvent>,
    mut f: MessageReader<StoreFailed>,
) {
    seen.received.extend(r.read().cloned());
    seen.outbox.extend(o.read().cloned());
    seen.contacts.extend(c.read().cloned());
    seen.vault.extend(v.read().cloned());
    seen.store_failed.extend(f.read().cloned());
}

/// A headless client app (MinimalPlugins, virtual time follows real time).
pub fn build_app(
    server: &str,
    store: Arc<dyn Store>,
    ca_cert: Option<Vec<u8>>,
) -> Result<App, UrlError> {
    let url = ServerList::parse(server)?;
    let mut config = NetConfig::new(url);
    config.ca_cert_pem = ca_cert;
    Ok(build_app_with(config, store))
}

/// A headless client app with a connection configuration of its own.
pub fn build_app_with(config: NetConfig, store: Arc<dyn Store>) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(HushClientPlugins { config, store })
        .init_resource::<Seen>()
        .add_systems(Update, collect.in_set(ChatSystems::Present));
    single_threaded(&mut app);
    app
}

/// Runs every schedule on the calling thread. A headless client does little
/// per frame; handing each system to the task pool cost more than the systems
/// themselves (thread wake-ups dominated a profile of the latency benchmark).
pub fn single_threaded(app: &mut App) {
    use bevy::ecs::schedule::{Schedules, SingleThreadedExecutor};
    for (_, schedule) in app.world_mut().resource_mut::<Schedules>().iter_mut() {
        schedule.set_executor(SingleThreadedExecutor::new());
    }
}

/// A client app being driven.
pub struct Client {
    pub app: App,
    parker: Parker,
}

/// The longest [`Client::run_until`] sleeps between looks at its condition.
pub const IDLE_STEP: Duration = Duration::from_millis(250);

impl Client {
    pub fn new(
        server: &str,
        store: Arc<dyn Store>,
        ca_cert: Option<Vec<u8>>,
    ) -> Result<Client, UrlError> {
        Ok(Client::of(build_app(server, store, ca_cert)?))
    }

    /// A client with its own connection settings (timers, TLS trust).
    pub fn with_config(config: NetConfig, store: Arc<dyn Store>) -> Client {
        Client::of(build_app_with(config, store))
    }

    fn of(app: App) -> Client {
        let parker = Parker::install(&app);
        Client { app, parker }
    }

    /// One update, then at most a millisecond for the sockets: for a driver
    /// that steps several clients in turn (tests, benchmarks). A loop of one
    /// client sleeps longer with [`Self::step_for`] or [`Self::run_until`].
    pub fn step(&mut self) {
        self.step_for(Duration::from_millis(1));
    }

    /// One update, then a sleep until something arrives (a frame, a reply,
    /// a derived key), the world's next timer is due, or `limit` has passed.
    /// An idle client wakes only for its own timers: no polling.
    pub fn step_for(&mut self, limit: Duration) {
        self.app.update();
        self.parker.park(self.app.world_mut(), limit);
    }

    pub fn vault(&self) -> &Vault {
        self.app.world().resource::<Vault>()
    }

    pub fn seen(&mut self) -> Mut<'_, Seen> {
        self.app.world_mut().resource_mut::<Seen>()
    }

    /// Steps until `pred` holds or `timeout` passes.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&mut Client) -> bool,
    ) -> bool {
        let end = Instant::now() + timeout;
        loop {
            self.step_for(end.saturating_duration_since(Instant::now()).min(IDLE_STEP));
            if pred(self) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
        }
    }

    /// Unlocks; `Ok(true)` when unlocked, `Ok(false)` when the profile needs
    /// an identity first.
    pub fn unlock(&mut self, words: &Zeroizing<String>) -> Result<bool, Failure> {
        self.app.world_mut().write_message(UnlockIntent {
            words: words.clone(),
        });
        let done = self.run_until(Duration::from_secs(120), |c| {
            matches!(
                c.vault().state,
                VaultState::Unlocked | VaultState::NeedsIdentity | VaultState::Locked
            ) && !c.seen().vault.is_empty()
        });
        if !done {
            let why = self
                .app
                .world()
                .resource::<hush_net::Session>()
                .last_error
                .as_ref()
                .map(|e| e.to_string());
            return Err(Failure::Timeout {
                what: "unlocking",
                why,
            });
        }
        let state = self.vault().state.clone();
        match state {
            VaultState::Unlocked => Ok(true),
            VaultState::NeedsIdentity => Ok(false),
            _ => {
                Err(Failure::Unlock(self.vault().error.clone().unwrap_or_else(
                    || UnlockError::Other("unlock failed".into()),
                )))
            }
        }
    }

    /// Unlocks a profile that must already have an identity.
    pub fn unlock_with_identity(&mut self, words: &Zeroizing<String>) -> Result<(), Failure> {
        if self.unlock(words)? {
            Ok(())
        } else {
            Err(Failure::NoIdentity)
        }
    }

    /// Unlocks, creating the identity `name` if the profile has none.
    pub fn unlock_as(&mut self, words: &Zeroizing<String>, name: &str) -> Result<(), Failure> {
        if self.unlock(words)? {
            return Ok(());
        }
        self.seen().vault.clear();
        self.app.world_mut().write_message(crate::CreateIdentity {
            display_name: name.to_owned(),
        });
        self.run_until(Duration::from_secs(10), |c| !c.seen().vault.is_empty());
        if self.vault().is_unlocked() {
            Ok(())
        } else {
            Err(Failure::Unlock(
                self.seen()
                    .vault
                    .iter()
                    .find_map(|e| match e {
                        VaultEvent::Failed(e) => Some(e.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| UnlockError::Other("creating the identity failed".into())),
            ))
        }
    }

    /// This profile's user id (once unlocked).
    pub fn user_id(&self) -> Uuid {
        self.vault().my_id().expect("unlocked")
    }

    /// Adds a contact and waits for the answer.
    pub fn add_contact(&mut self, uuid: &str, name: &str) -> Result<Contact, Failure> {
        let mut added = None;
        let intent = AddContact {
            user_id: uuid.to_owned(),
            display_name: name.to_owned(),
        };
        self.change_contacts(intent, |e| {
            if let ContactEvent::Added { contact, new: true } = e {
                added = Some(contact.clone());
            }
            added.is_some()
        })?;
        added.ok_or(Failure::Timeout {
            what: "adding the contact",
            why: None,
        })
    }

    /// Asks for a contact change and waits until `done` sees it happen (or
    /// it is refused).
    pub fn change_contacts(
        &mut self,
        intent: impl bevy::ecs::message::Message,
        mut done: impl FnMut(&ContactEvent) -> bool,
    ) -> Result<(), Failure> {
        self.seen().contacts.clear();
        self.app.world_mut().write_message(intent);
        let mut out = None;
        self.run_until(Duration::from_secs(10), |c| {
            out = c.seen().contacts.iter().find_map(|e| match e {
                ContactEvent::Rejected { error, .. } => Some(Err(error.clone())),
                e if done(e) => Some(Ok(())),
                _ => None,
            });
            out.is_some()
        });
        match out {
            Some(r) => r.map_err(Failure::Contact),
            None => Err(Failure::Timeout {
                what: "changing the contacts",
                why: None,
            }),
        }
    }

    /// Waits until the thread with `peer` is loaded (its entity has a key).
    pub fn wait_thread(&mut self, peer: Uuid) -> bool {
        self.run_until(Duration::from_secs(10), |c| {
            let w = c.app.world();
            w.resource::<Threads>()
                .of_peer(&peer)
                .and_then(|t| w.resource::<Threads>().entity(t))
                .is_some_and(|e| w.get::<ThreadKey>(e).is_some())
        })
    }
}
