//! The headless commands: each opens the profile's redb store, drives a
//! headless client until the command is done, and prints JSON lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_chat::contacts::Contact;
use hush_chat::headless::{Client, Failure};
use hush_chat::{Contacts, MessageReceived, Outbox, OutboxEvent, ProfileStore, SendIntent, Vault};
use hush_store::{RedbStore, Store, StoreError};
use zeroize::Zeroizing;

/// Process exit codes of the headless commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    Error = 1,
    Usage = 2,
    /// The timeout ended first (a send stays queued for the next run).
    Timeout = 3,
    /// The words were refused.
    Auth = 4,
}

pub type CmdResult = Result<(), (Exit, String)>;

fn fail(f: Failure) -> (Exit, String) {
    match f {
        Failure::Auth(s) => (Exit::Auth, s),
        Failure::Timeout(s) => (Exit::Timeout, s),
        Failure::Other(s) => (Exit::Error, s),
    }
}

fn open(opts: &Options) -> Result<Client, (Exit, String)> {
    let store = open_profile(&opts.data_dir, &opts.profile).map_err(|e| (Exit::Error, e))?;
    Client::new(&opts.server, store, opts.ca_cert.clone()).map_err(|e| (Exit::Usage, e))
}

pub struct Options {
    pub server: String,
    pub data_dir: PathBuf,
    pub profile: String,
    pub ca_cert: Option<Vec<u8>>,
    pub words: Zeroizing<String>,
}

/// `DATA/profiles/NAME/store.redb`; names are `[A-Za-z0-9_-]{1,64}`.
pub fn profile_store_path(data_dir: &Path, profile: &str) -> Result<PathBuf, String> {
    let ok = !profile.is_empty()
        && profile.len() <= 64
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!(
            "invalid profile name {profile:?}: use letters, digits, - and _"
        ));
    }
    Ok(data_dir.join("profiles").join(profile).join("store.redb"))
}

/// Opens a profile's store with a clear error when another process has it.
pub fn open_profile(data_dir: &Path, profile: &str) -> Result<Arc<dyn Store>, String> {
    let path = profile_store_path(data_dir, profile)?;
    match RedbStore::open(&path) {
        Ok(s) => Ok(Arc::new(s)),
        Err(StoreError::Locked) => Err(format!(
            "profile {profile:?} is open in another hush process (close it, or use --profile)"
        )),
        Err(e) => Err(format!(
            "cannot open profile {profile:?} at {}: {e}",
            path.display()
        )),
    }
}

fn identity_json(v: &Vault) -> String {
    let i = v.identity.as_ref().expect("unlocked");
    serde_json::json!({ "user_id": i.user_id, "display_name": i.display_name }).to_string()
}

pub fn identity(opts: &Options, name: Option<&str>) -> CmdResult {
    let mut c = open(opts)?;
    match name {
        Some(name) => c.unlock_as(&opts.words, name).map_err(fail)?,
        None => {
            if !c.unlock(&opts.words).map_err(fail)? {
                return Err((
                    Exit::Error,
                    "this profile has no identity yet: pass --name NAME".into(),
                ));
            }
        }
    }
    println!("{}", identity_json(c.vault()));
    Ok(())
}

fn contact_json(c: &Contact) -> String {
    serde_json::json!({
        "user_id": c.user_id,
        "display_name": c.display_name,
        "added_at": c.added_at,
        "thread_id": c.thread_id,
    })
    .to_string()
}

pub fn contacts_add(opts: &Options, uuid: &str, name: &str) -> CmdResult {
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    let contact = c.add_contact(uuid, name).map_err(fail)?;
    println!("{}", contact_json(&contact));
    Ok(())
}

pub fn contacts_list(opts: &Options) -> CmdResult {
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    for contact in &c.app.world().resource::<Contacts>().list {
        println!("{}", contact_json(contact));
    }
    Ok(())
}

pub fn send(opts: &Options, uuid: &str, text: &str, timeout: Duration) -> CmdResult {
    let started = Instant::now();
    let peer = hush_core::ids::parse_user_uuid(uuid)
        .map_err(|_| (Exit::Usage, format!("not a UUID: {uuid:?}")))?;
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    if c.app.world().resource::<Contacts>().get(&peer).is_none() {
        let short: String = peer.to_string().chars().take(8).collect();
        c.add_contact(&peer.to_string(), &short).map_err(fail)?;
    }
    if !c.wait_thread(peer) {
        return Err((Exit::Error, "the thread did not load".into()));
    }
    c.seen().outbox.clear();
    c.app.world_mut().write_message(SendIntent {
        to: peer,
        text: text.to_owned(),
    });
    let mut seq = None;
    let mut outcome: Option<CmdResult> = None;
    let left = timeout.saturating_sub(started.elapsed());
    c.run_until(left, |c| {
        for e in c.seen().outbox.drain(..) {
            match e {
                OutboxEvent::Queued { seq: s, .. } if seq.is_none() => seq = Some(s),
                OutboxEvent::Rejected { reason } if seq.is_none() => {
                    outcome = Some(Err((Exit::Error, format!("not sent: {reason}"))));
                }
                OutboxEvent::Sent { seq: s, .. } if Some(s) == seq => outcome = Some(Ok(())),
                OutboxEvent::Failed { seq: s, reason, .. } if Some(s) == seq => {
                    outcome = Some(Err((Exit::Error, format!("sending failed: {reason}"))));
                }
                _ => {}
            }
        }
        outcome.is_some()
    });
    outcome.unwrap_or_else(|| {
        Err((
            Exit::Timeout,
            "not acknowledged yet; the message stays in the outbox and goes out on the next run"
                .into(),
        ))
    })
}

pub fn listen(opts: &Options, count: Option<usize>, timeout: Option<Duration>) -> CmdResult {
    let started = Instant::now();
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    let mut printed = 0usize;
    loop {
        c.step();
        let batch: Vec<MessageReceived> = c.seen().received.drain(..).collect();
        // Printed only once durable, so that no later run prints it again.
        if !batch.is_empty()
            && let Err(e) = c.app.world().resource::<ProfileStore>().flush()
        {
            return Err(not_stored("flush the store", &e.to_string()));
        }
        for m in batch.into_iter().filter(|m| !m.message.mine) {
            let msg = &m.message;
            let mut line = serde_json::json!({
                "thread_id": m.thread,
                "id": msg.id,
                "sender_id": msg.sender_id,
                "sender_name": msg.sender_name,
                "content": msg.content,
                "timestamp": msg.timestamp_ms,
                "created_at": msg.created_at,
            });
            if let hush_chat::MessageStatus::Undecryptable(why) = &msg.status {
                line["undecryptable"] = serde_json::Value::String(why.clone());
            }
            println!("{line}");
            printed += 1;
            if count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
        // Only what is stored is printed; what could not be stored stays on
        // the server and is fetched by a later run, so stop and say why.
        if let Some(f) = c.seen().store_failed.first() {
            return Err(not_stored(f.what, &f.error));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return match count {
                Some(n) => Err((
                    Exit::Timeout,
                    format!("{printed} of {n} messages before the timeout"),
                )),
                None => Ok(()),
            };
        }
    }
}

fn not_stored(what: &str, error: &str) -> (Exit, String) {
    (
        Exit::Error,
        format!(
            "could not store incoming messages ({what}: {error}); they stay on the server \
             and are fetched by the next run"
        ),
    )
}

pub fn outbox(opts: &Options) -> CmdResult {
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    // One more update so the restored outbox is in place.
    c.step();
    let w = c.app.world();
    let outbox = w.resource::<Outbox>();
    let contacts = w.resource::<Contacts>();
    for e in outbox.queue.iter() {
        let (state, reason) = match &e.state {
            hush_core::policy::outbox::EntryState::Failed(r) => ("failed", Some(r.clone())),
            _ => ("queued", None),
        };
        let peer = contacts
            .list
            .iter()
            .find(|c| c.thread_id == e.thread)
            .map(|c| c.user_id);
        println!(
            "{}",
            serde_json::json!({
                "seq": e.seq,
                "thread_id": e.thread,
                "peer": peer,
                "client_message_id": e.client_message_id,
                "state": state,
                "reason": reason,
                "attempts": e.attempts,
                "content": outbox.text(e.seq),
            })
        );
    }
    Ok(())
}
