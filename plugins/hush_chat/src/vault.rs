//! Unlocking the vault: authenticate with the words, derive the vault key
//! off the main thread, prove it against the stored identity, create the
//! identity on first use. A profile that was unlocked before keeps the KDF
//! salt, so it unlocks offline (the stored identity proves the words) and
//! fetches a token once the server answers again.
//!
//! The words live in memory only while unlocked (in the session, for
//! re-authentication) and are zeroized on lock; keys are zeroized on drop.

use bevy::prelude::*;
use crossbeam_channel::Receiver;
use hush_core::crypto::{AeadKey, CryptoError, VaultKey};
use hush_core::http::ApiFailure;
use hush_core::payload::{LocalIdentity, NameError, validate_display_name};
use hush_net::{
    ConnectionIntent, NetConfig, SessionError, SessionEvent, SessionIntent, WakingSender,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use hush_net::kdf::Kdf;

use crate::ChatSystems;
use crate::profile::{ProfileStore, StoreFailed};

pub(crate) fn plugin(app: &mut App) {
    let (tx, rx) = crossbeam_channel::unbounded();
    // The derived key wakes a sleeping window (hush_net::wake).
    let tx = app
        .world()
        .get_resource::<hush_net::Wake>()
        .cloned()
        .unwrap_or_default()
        .sender(tx);
    app.insert_resource(Vault::new(tx, rx))
        .init_resource::<Kdf>()
        .add_message::<UnlockIntent>()
        .add_message::<LockIntent>()
        .add_message::<CreateIdentity>()
        .add_message::<VaultEvent>()
        .add_systems(
            Update,
            (
                start_unlock,
                follow_session,
                finish_derivation,
                create_identity,
                lock,
            )
                .chain()
                .in_set(ChatSystems::Vault),
        );
}

/// Unlock with these words.
#[derive(Message, Clone)]
pub struct UnlockIntent {
    pub words: Zeroizing<String>,
}

impl std::fmt::Debug for UnlockIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockIntent { words: <redacted> }")
    }
}

/// Lock: forget keys and words, keep the identity and data on disk.
#[derive(Message, Debug, Clone, Copy)]
pub struct LockIntent;

/// Create this profile's identity (first unlock only).
#[derive(Message, Debug, Clone)]
pub struct CreateIdentity {
    pub display_name: String,
}

/// Why an unlock did not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    #[error("wrong words{}", .remaining_attempts.map(|n| format!(" ({n} attempts left before a block)")).unwrap_or_default())]
    WrongWords { remaining_attempts: Option<u64> },
    #[error("the server is unreachable and this profile was never unlocked here: {0}")]
    ServerUnreachable(String),
    #[error("this profile's identity does not open with this vault's key")]
    ForeignProfile,
    #[error("invalid display name: {0}")]
    BadName(NameError),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum VaultEvent {
    Unlocked,
    /// The words are right; this profile needs a display name.
    NeedsIdentity,
    Failed(UnlockError),
    Locked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockStep {
    /// Waiting for the server to accept the words.
    Authenticating,
    /// Argon2id is running (about a second, 64 MiB).
    DerivingKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultState {
    Locked,
    Unlocking {
        step: UnlockStep,
        /// The server did not answer; unlocking with the stored salt.
        offline: bool,
    },
    NeedsIdentity,
    Unlocked,
}

/// The keys of an unlocked vault.
pub struct Keys {
    pub vault: VaultKey,
    pub identity: AeadKey,
    pub contacts: AeadKey,
    pub drafts: AeadKey,
    salt: String,
}

type Derived = (String, Result<VaultKey, CryptoError>);

/// The vault, a resource.
#[derive(Resource)]
pub struct Vault {
    pub state: VaultState,
    pub identity: Option<LocalIdentity>,
    pub error: Option<UnlockError>,
    keys: Option<Keys>,
    /// The words, only while unlocking (the session keeps its own copy).
    words: Option<Zeroizing<String>>,
    /// The salt a derivation is running with.
    deriving: Option<String>,
    /// The server accepted the words during this unlock.
    server_confirmed: Option<String>,
    /// Servers that did not answer during this unlock (the connection has
    /// moved on to the next one after each).
    unreachable: usize,
    tx: WakingSender<Derived>,
    rx: Receiver<Derived>,
}

impl Vault {
    fn new(tx: WakingSender<Derived>, rx: Receiver<Derived>) -> Self {
        Vault {
            state: VaultState::Locked,
            identity: None,
            error: None,
            keys: None,
            words: None,
            deriving: None,
            server_confirmed: None,
            unreachable: 0,
            tx,
            rx,
        }
    }

    pub fn is_unlocked(&self) -> bool {
        self.state == VaultState::Unlocked
    }

    /// The keys, once unlocked (or while the identity is being created).
    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    pub fn my_id(&self) -> Option<Uuid> {
        self.identity.as_ref().map(|i| i.user_id)
    }

    /// The key of my thread with `peer`.
    pub fn thread_key(&self, peer: &Uuid) -> Option<AeadKey> {
        let me = self.my_id()?;
        Some(self.keys.as_ref()?.vault.thread_key(&me, peer))
    }

    fn derive(&mut self, kdf: Kdf, salt: &str) {
        let Some(words) = self.words.clone() else {
            return;
        };
        self.deriving = Some(salt.to_owned());
        let (tx, salt) = (self.tx.clone(), salt.to_owned());
        hush_net::kdf::derive_vault_key(
            kdf,
            words,
            salt.clone(),
            Box::new(move |r| {
                let _ = tx.send((salt, r));
            }),
        );
    }

    fn fail(&mut self, e: UnlockError, events: &mut MessageWriter<VaultEvent>) {
        tracing::warn!("unlock failed: {e}");
        self.state = VaultState::Locked;
        self.keys = None;
        self.identity = None;
        self.words = None;
        self.deriving = None;
        self.error = Some(e.clone());
        events.write(VaultEvent::Failed(e));
    }
}

fn start_unlock(
    mut vault: ResMut<Vault>,
    kdf: Res<Kdf>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<UnlockIntent>,
    mut session: MessageWriter<SessionIntent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    for UnlockIntent { words } in intents.read() {
        if !matches!(vault.state, VaultState::Locked) {
            continue;
        }
        vault.error = None;
        vault.server_confirmed = None;
        vault.unreachable = 0;
        vault.words = Some(words.clone());
        vault.state = VaultState::Unlocking {
            step: UnlockStep::Authenticating,
            offline: false,
        };
        session.write(SessionIntent::Login {
            words: words.clone(),
        });
        match store.profile() {
            // Unlocked here before: derive now, so it works offline too.
            Ok(p) => {
                if let Some(salt) = p.kdf_salt {
                    vault.derive(*kdf, &salt);
                }
            }
            Err(e) => {
                failed.write(StoreFailed::new("read profile", &e));
            }
        }
    }
}

fn follow_session(
    mut vault: ResMut<Vault>,
    kdf: Res<Kdf>,
    config: Res<NetConfig>,
    mut events: MessageReader<SessionEvent>,
    mut out: MessageWriter<VaultEvent>,
    mut session: MessageWriter<SessionIntent>,
) {
    for e in events.read() {
        match e {
            SessionEvent::Authenticated { kdf_salt } => {
                vault.server_confirmed = Some(kdf_salt.clone());
                // Derive with the server's salt unless already doing so (or done).
                if matches!(vault.state, VaultState::Unlocking { .. })
                    && vault.deriving.as_deref() != Some(kdf_salt)
                    && vault.keys.as_ref().is_none_or(|k| k.salt != *kdf_salt)
                {
                    vault.derive(*kdf, kdf_salt);
                }
            }
            SessionEvent::Failed { error, fatal } => {
                if !matches!(vault.state, VaultState::Unlocking { .. }) {
                    continue;
                }
                match error {
                    SessionError::Rejected(ApiFailure::InvalidCredentials {
                        remaining_attempts,
                    }) => {
                        let remaining_attempts = *remaining_attempts;
                        vault.fail(UnlockError::WrongWords { remaining_attempts }, &mut out);
                    }
                    SessionError::Network(n)
                        if vault.deriving.is_none() && vault.keys.is_none() =>
                    {
                        // Without a stored salt only a server can answer: ask
                        // each of the list once (the connection has already
                        // moved to the next) before giving up.
                        vault.unreachable += 1;
                        match vault.words.clone() {
                            Some(words) if vault.unreachable < config.servers.urls().len() => {
                                tracing::info!("no answer; asking the next server");
                                session.write(SessionIntent::Login { words });
                            }
                            _ => {
                                let e = UnlockError::ServerUnreachable(n.to_string());
                                vault.fail(e, &mut out);
                            }
                        }
                    }
                    SessionError::Network(_) => {
                        // Carry on with the stored salt; the token comes later.
                        if let VaultState::Unlocking { step, .. } = vault.state {
                            vault.state = VaultState::Unlocking {
                                step,
                                offline: true,
                            };
                        }
                    }
                    other if *fatal => {
                        let e = UnlockError::Other(other.to_string());
                        vault.fail(e, &mut out);
                    }
                    _ => {}
                }
            }
            SessionEvent::TokenRefreshed | SessionEvent::LoggedOut => {}
        }
    }
    // Keys without an identity wait for the server's word before asking for one.
    if matches!(vault.state, VaultState::Unlocking { .. })
        && vault.keys.is_some()
        && vault.identity.is_none()
        && vault
            .server_confirmed
            .as_ref()
            .zip(vault.keys.as_ref())
            .is_some_and(|(s, k)| *s == k.salt)
    {
        vault.state = VaultState::NeedsIdentity;
        out.write(VaultEvent::NeedsIdentity);
    }
}

fn finish_derivation(
    mut vault: ResMut<Vault>,
    store: Res<ProfileStore>,
    mut out: MessageWriter<VaultEvent>,
    mut connect: MessageWriter<ConnectionIntent>,
    mut failed: MessageWriter<StoreFailed>,
) {
    if let VaultState::Unlocking { offline, .. } = vault.state
        && vault.deriving.is_some()
    {
        vault.state = VaultState::Unlocking {
            step: UnlockStep::DerivingKey,
            offline,
        };
    }
    while let Ok((salt, result)) = vault.rx.try_recv() {
        if !matches!(vault.state, VaultState::Unlocking { .. })
            || vault.deriving.as_deref() != Some(&salt)
        {
            continue; // a superseded derivation
        }
        vault.deriving = None;
        let vk = match result {
            Ok(k) => k,
            Err(e) => {
                vault.fail(UnlockError::Other(format!("key derivation: {e}")), &mut out);
                continue;
            }
        };
        let keys = Keys {
            identity: vk.identity_key(),
            contacts: vk.contacts_key(),
            drafts: vk.drafts_key(),
            vault: vk,
            salt: salt.clone(),
        };
        let mut profile = match store.profile() {
            Ok(p) => p,
            Err(e) => {
                failed.write(StoreFailed::new("read profile", &e));
                vault.fail(UnlockError::Storage(e.to_string()), &mut out);
                continue;
            }
        };
        let confirmed = vault.server_confirmed.as_deref() == Some(salt.as_str());
        match &profile.identity {
            Some(sealed) => match keys
                .identity
                .open_json::<LocalIdentity>(&sealed.ciphertext, &sealed.iv)
            {
                Ok(identity) => {
                    if profile.kdf_salt.as_deref() != Some(salt.as_str()) {
                        profile.kdf_salt = Some(salt.clone());
                        if let Err(e) = store.set_profile(&profile) {
                            failed.write(StoreFailed::new("save profile", &e));
                        }
                    }
                    vault.keys = Some(keys);
                    vault.identity = Some(identity);
                    vault.words = None;
                    vault.state = VaultState::Unlocked;
                    tracing::info!("vault unlocked");
                    out.write(VaultEvent::Unlocked);
                    connect.write(ConnectionIntent::Connect);
                }
                Err(_) if confirmed => vault.fail(UnlockError::ForeignProfile, &mut out),
                // Offline, the identity is the only proof of the words.
                Err(_) => vault.fail(
                    UnlockError::WrongWords {
                        remaining_attempts: None,
                    },
                    &mut out,
                ),
            },
            None => {
                vault.keys = Some(keys);
                if confirmed {
                    vault.state = VaultState::NeedsIdentity;
                    out.write(VaultEvent::NeedsIdentity);
                }
                // Otherwise wait for the server to confirm (follow_session).
            }
        }
    }
}

fn create_identity(
    mut vault: ResMut<Vault>,
    store: Res<ProfileStore>,
    mut intents: MessageReader<CreateIdentity>,
    mut out: MessageWriter<VaultEvent>,
    mut connect: MessageWriter<ConnectionIntent>,
) {
    for CreateIdentity { display_name } in intents.read() {
        if vault.state != VaultState::NeedsIdentity {
            continue;
        }
        let name = match validate_display_name(display_name) {
            Ok(n) => n,
            Err(e) => {
                out.write(VaultEvent::Failed(UnlockError::BadName(e)));
                continue;
            }
        };
        let Some(keys) = vault.keys.as_ref() else {
            continue;
        };
        let identity = LocalIdentity {
            user_id: Uuid::new_v4(),
            display_name: name,
        };
        let sealed = keys.identity.seal_json(&identity);
        let salt = keys.salt.clone();
        let saved = store.profile().and_then(|mut p| {
            p.identity = Some(sealed);
            p.kdf_salt = Some(salt);
            store.set_profile(&p)
        });
        if let Err(e) = saved {
            out.write(VaultEvent::Failed(UnlockError::Storage(e.to_string())));
            continue;
        }
        tracing::info!("identity created");
        vault.identity = Some(identity);
        vault.words = None;
        vault.state = VaultState::Unlocked;
        out.write(VaultEvent::Unlocked);
        connect.write(ConnectionIntent::Connect);
    }
}

fn lock(
    mut vault: ResMut<Vault>,
    mut intents: MessageReader<LockIntent>,
    mut out: MessageWriter<VaultEvent>,
    mut session: MessageWriter<SessionIntent>,
    mut connect: MessageWriter<ConnectionIntent>,
) {
    if intents.read().count() == 0 {
        return;
    }
    vault.keys = None;
    vault.identity = None;
    vault.words = None;
    vault.deriving = None;
    vault.server_confirmed = None;
    vault.state = VaultState::Locked;
    session.write(SessionIntent::Logout);
    connect.write(ConnectionIntent::Disconnect);
    tracing::info!("vault locked");
    out.write(VaultEvent::Locked);
}
