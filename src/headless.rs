//! The headless commands: each opens the profile's redb store, drives a
//! headless client until the command is done, and prints JSON lines.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_chat::contacts::Contact;
use hush_chat::headless::{Client, Failure};
use hush_chat::{
    Block, Blocked, ContactEvent, Contacts, Discovery, IgnoreRequest, Outbox, OutboxEvent,
    ProfileStore, RemoveContact, RenameContact, Request, SendIntent, Vault,
};
use hush_core::ThreadId;
use hush_store::{MessageKey, RedbStore, Store, StoreError, message_key};

use crate::delivery::{Ledger, WriteFailed, unread_in_stdout, write_line};
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
    /// `listen` never reached the server before its timeout.
    NoServer = 5,
}

pub type CmdResult = Result<(), (Exit, String)>;

/// The longest `listen` sleeps with nothing arriving and no timer due.
const IDLE_WAIT: Duration = Duration::from_secs(30);

fn fail(f: Failure) -> (Exit, String) {
    let exit = match &f {
        _ if f.is_auth() => Exit::Auth,
        Failure::Timeout { .. } => Exit::Timeout,
        _ => Exit::Error,
    };
    (exit, f.to_string())
}

fn open(opts: &Options) -> Result<Client, (Exit, String)> {
    let store =
        open_profile(&opts.data_dir, &opts.profile).map_err(|e| (Exit::Error, e.to_string()))?;
    Client::new(&opts.server, store, opts.ca_cert.clone()).map_err(|e| (Exit::Usage, e.to_string()))
}

/// The profile's client, unlocked with its identity.
fn open_unlocked(opts: &Options) -> Result<Client, (Exit, String)> {
    let mut c = open(opts)?;
    c.unlock_with_identity(&opts.words).map_err(fail)?;
    Ok(c)
}

pub struct Options {
    pub server: String,
    pub data_dir: PathBuf,
    pub profile: String,
    pub ca_cert: Option<Vec<u8>>,
    pub words: Zeroizing<String>,
}

/// Why a profile's store did not open.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid profile name {0:?}: use letters, digits, - and _")]
    BadName(String),
    #[error("profile {0:?} is open in another hush process (close it, or use --profile)")]
    InUse(String),
    #[error("cannot open profile {name:?} at {}: {source}", .path.display())]
    Open {
        name: String,
        path: PathBuf,
        source: StoreError,
    },
}

/// `DATA/profiles/NAME/store.redb`; names are `[A-Za-z0-9_-]{1,64}`.
pub fn profile_store_path(data_dir: &Path, profile: &str) -> Result<PathBuf, ProfileError> {
    let ok = !profile.is_empty()
        && profile.len() <= 64
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ProfileError::BadName(profile.to_owned()));
    }
    Ok(data_dir.join("profiles").join(profile).join("store.redb"))
}

/// Opens a profile's store with a clear error when another process has it.
pub fn open_profile(data_dir: &Path, profile: &str) -> Result<Arc<dyn Store>, ProfileError> {
    let path = profile_store_path(data_dir, profile)?;
    match RedbStore::open(&path) {
        Ok(s) => Ok(Arc::new(s)),
        Err(StoreError::Locked) => Err(ProfileError::InUse(profile.to_owned())),
        Err(source) => Err(ProfileError::Open {
            name: profile.to_owned(),
            path,
            source,
        }),
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

fn contact_json(c: &Contact) -> serde_json::Value {
    serde_json::json!({
        "user_id": c.user_id,
        "display_name": c.display_name,
        "added_at": c.added_at,
        "thread_id": c.thread_id,
    })
}

pub fn contacts_add(opts: &Options, uuid: &str, name: &str) -> CmdResult {
    let mut c = open_unlocked(opts)?;
    let contact = c.add_contact(uuid, name).map_err(fail)?;
    println!("{}", contact_json(&contact));
    Ok(())
}

pub fn contacts_list(opts: &Options) -> CmdResult {
    let c = open_unlocked(opts)?;
    let blocked = &c.app.world().resource::<Blocked>().0;
    for contact in &c.app.world().resource::<Contacts>().list {
        let mut line = contact_json(contact);
        if blocked.contains(&contact.user_id) {
            line["blocked"] = true.into();
        }
        println!("{line}");
    }
    Ok(())
}

fn user_uuid(uuid: &str) -> Result<uuid::Uuid, (Exit, String)> {
    hush_core::ids::parse_user_uuid(uuid)
        .map_err(|_| (Exit::Usage, format!("not a UUID: {uuid:?}")))
}

pub fn contacts_rename(opts: &Options, uuid: &str, name: &str) -> CmdResult {
    let peer = user_uuid(uuid)?;
    let mut c = open_unlocked(opts)?;
    let intent = RenameContact {
        user_id: peer,
        display_name: name.to_owned(),
    };
    c.change_contacts(
        intent,
        |e| matches!(e, ContactEvent::Renamed { contact } if contact.user_id == peer),
    )
    .map_err(fail)?;
    let contacts = c.app.world().resource::<Contacts>();
    println!("{}", contact_json(contacts.get(&peer).expect("renamed")));
    Ok(())
}

pub fn contacts_remove(opts: &Options, uuid: &str, forget_history: bool) -> CmdResult {
    let peer = user_uuid(uuid)?;
    let mut c = open_unlocked(opts)?;
    let intent = RemoveContact {
        user_id: peer,
        forget_history,
    };
    c.change_contacts(
        intent,
        |e| matches!(e, ContactEvent::Removed { contact, .. } if contact.user_id == peer),
    )
    .map_err(fail)?;
    // The outbox entries it cancelled are gone before the process is.
    c.step();
    println!(
        "{}",
        serde_json::json!({ "user_id": peer, "removed": true, "history_forgotten": forget_history })
    );
    Ok(())
}

/// `hush contacts block|unblock` and `hush requests block`.
pub fn block(opts: &Options, uuid: &str, blocked: bool) -> CmdResult {
    let peer = user_uuid(uuid)?;
    let mut c = open_unlocked(opts)?;
    let intent = Block {
        user_id: peer,
        blocked,
    };
    c.change_contacts(
        intent,
        |e| matches!(e, ContactEvent::Blocked { user_id, .. } if *user_id == peer),
    )
    .map_err(fail)?;
    println!(
        "{}",
        serde_json::json!({ "user_id": peer, "blocked": blocked })
    );
    Ok(())
}

/// Whether the server's list of threads has been read on this connection
/// and every request is caught up (or the server cannot list threads).
fn requests_settled(c: &mut Client) -> bool {
    let w = c.app.world_mut();
    let generation = w.resource::<hush_net::Connection>().generation();
    let connected = w.resource::<hush_net::Connection>().is_connected();
    let d = w.resource::<Discovery>();
    if d.unsupported == Some(true) {
        return true;
    }
    if !connected || d.listed != Some(generation) {
        return false;
    }
    w.query_filtered::<&hush_chat::ThreadSync, bevy::prelude::With<Request>>()
        .iter(w)
        .all(|s| s.is_caught_up(generation))
}

/// The request threads in the world: thread, peer, name, ignored, and the
/// first message shown.
fn requests_of(c: &mut Client) -> Vec<serde_json::Value> {
    let w = c.app.world_mut();
    let mut q = w.query::<(&Request, &hush_chat::Thread, &hush_chat::ThreadLog)>();
    let mut out: Vec<(i64, serde_json::Value)> = q
        .iter(w)
        .map(|(r, t, log)| {
            let first = log.messages.first();
            let line = serde_json::json!({
                "thread_id": t.id,
                "user_id": t.peer,
                "display_name": t.peer_name,
                "ignored": r.ignored,
                "messages": log.messages.len(),
                "first_message": first.map(|m| m.content.clone()),
                "created_at": first.map(|m| hush_core::time::format_utc(m.micros)),
            });
            (first.map_or(i64::MAX, |m| m.micros), line)
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, l)| l).collect()
}

pub fn requests_list(opts: &Options, timeout: Duration) -> CmdResult {
    let mut c = open_unlocked(opts)?;
    let settled = c.run_until(timeout, requests_settled);
    if c.app.world().resource::<Discovery>().unsupported == Some(true) {
        eprintln!(
            "hush: this server cannot show requests from unknown people (it cannot list threads); \
             someone you have not added is seen only once you add them"
        );
    } else if !settled {
        eprintln!(
            "hush: the server's list did not arrive before the timeout; these are the requests \
             found earlier"
        );
    }
    for line in requests_of(&mut c) {
        println!("{line}");
    }
    Ok(())
}

/// The request thread from `uuid`, with the name it shows.
fn request_from(c: &mut Client, uuid: &str) -> Result<(ThreadId, String), (Exit, String)> {
    let peer = user_uuid(uuid)?;
    let w = c.app.world_mut();
    w.query_filtered::<&hush_chat::Thread, bevy::prelude::With<Request>>()
        .iter(w)
        .find(|t| t.peer == peer)
        .map(|t| (t.id, t.peer_name.clone()))
        .ok_or_else(|| {
            (
                Exit::Error,
                format!("no message request from {peer} (`hush requests` lists them)"),
            )
        })
}

pub fn requests_accept(opts: &Options, uuid: &str, name: Option<&str>) -> CmdResult {
    let mut c = open_unlocked(opts)?;
    let (_, shown) = request_from(&mut c, uuid)?;
    let contact = c.add_contact(uuid, name.unwrap_or(&shown)).map_err(fail)?;
    println!("{}", contact_json(&contact));
    Ok(())
}

pub fn requests_ignore(opts: &Options, uuid: &str) -> CmdResult {
    let mut c = open_unlocked(opts)?;
    let (t, _) = request_from(&mut c, uuid)?;
    c.app.world_mut().write_message(IgnoreRequest(t));
    let done = c.run_until(Duration::from_secs(5), |c| {
        let w = c.app.world();
        w.resource::<hush_chat::Threads>()
            .entity(t)
            .and_then(|e| w.get::<Request>(e))
            .is_some_and(|r| r.ignored)
    });
    if !done {
        return Err((Exit::Error, "the request could not be ignored".into()));
    }
    println!("{}", serde_json::json!({ "thread_id": t, "ignored": true }));
    Ok(())
}

pub fn send(opts: &Options, uuid: &str, text: &str, timeout: Duration) -> CmdResult {
    let started = Instant::now();
    let peer = hush_core::ids::parse_user_uuid(uuid)
        .map_err(|_| (Exit::Usage, format!("not a UUID: {uuid:?}")))?;
    let mut c = open_unlocked(opts)?;
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
    let mut c = open_unlocked(opts)?;
    let me = c.vault().my_id().expect("unlocked");
    let store = c.app.world().resource::<ProfileStore>().0.clone();
    let stored = |what: &'static str, e: hush_store::StoreError| match e {
        // A damaged store fails the same way every run: say how out.
        StoreError::Corrupt(_) => (
            Exit::Error,
            format!(
                "the profile's store cannot be read ({what}: {e}); run `hush repair` to move it \
                 aside and keep what can still be read"
            ),
        ),
        other => not_stored(what, &other.to_string()),
    };
    // Where the consumer has got to; a thread it never listened to starts at
    // its newest stored message (history from before is not printed).
    let mut positions: HashMap<ThreadId, Option<MessageKey>> = store
        .delivered()
        .map_err(|e| stored("read the delivery positions", e))?
        .into_iter()
        .map(|(t, k)| (t, Some(k)))
        .collect();
    let mut start_at = Vec::new();
    for t in store.threads().map_err(|e| stored("read the threads", e))? {
        if let std::collections::hash_map::Entry::Vacant(slot) = positions.entry(t.id) {
            let newest = store
                .messages_before(t.id, None, 1)
                .map_err(|e| stored("read the messages", e))?
                .pop()
                .map(|m| message_key(&m));
            if let Some(k) = &newest {
                start_at.push((t.id, k.clone()));
            }
            slot.insert(newest);
        }
    }
    if !start_at.is_empty() {
        store
            .set_delivered(&start_at)
            .map_err(|e| stored("record the delivery positions", e))?;
    }
    let mut out = std::io::stdout().lock();
    let mut ledger = Ledger::default();
    let mut printed = 0usize;
    let mut reached_server = false;
    // First what earlier runs stored but never handed over, then what comes.
    let mut dirty: HashSet<ThreadId> = positions.keys().copied().collect();
    let ended = loop {
        // Asleep until something arrives or a timer is due; lines a reader
        // has not taken yet are looked at again soon.
        let mut wait = if ledger.in_flight() > 0 {
            Duration::from_millis(20)
        } else {
            IDLE_WAIT
        };
        if let Some(t) = timeout {
            wait = wait.min(t.saturating_sub(started.elapsed()));
        }
        c.step_for(wait);
        reached_server |= c
            .app
            .world()
            .resource::<hush_net::Connection>()
            .is_connected();
        dirty.extend(c.seen().received.drain(..).map(|m| m.thread));
        if !dirty.is_empty() && count.is_none_or(|n| printed < n) {
            match print_new(
                &c,
                &*store,
                me,
                &mut dirty,
                &mut positions,
                &mut out,
                &mut ledger,
                count.map(|n| n - printed),
            ) {
                Ok(n) => printed += n,
                Err(PrintFailed::Closed) => break Ended::ReaderGone,
                Err(PrintFailed::Write(e)) => {
                    break Ended::Failed((Exit::Error, format!("cannot write to stdout: {e}")));
                }
                Err(PrintFailed::Store(what, e)) => break Ended::Failed(stored(what, e)),
            }
        }
        commit_delivered(&*store, &mut ledger)
            .map_err(|e| stored("record the delivery positions", e))?;
        if count.is_some_and(|n| printed >= n) {
            break Ended::Done;
        }
        // Only what is stored is printed; what could not be stored stays on
        // the server and is fetched by a later run, so stop and say why.
        if let Some(f) = c.seen().store_failed.first() {
            break Ended::Failed(not_stored(f.what, &f.error));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            break match (count, reached_server) {
                (_, false) => Ended::Failed((
                    Exit::NoServer,
                    format!("never reached the server at {}", opts.server),
                )),
                (Some(n), true) => Ended::Failed((
                    Exit::Timeout,
                    format!("{printed} of {n} messages before the timeout"),
                )),
                (None, true) => Ended::Done,
            };
        }
    };
    // Give a reader a moment to take the last lines, so that they are not
    // printed again next time.
    let drain_until = Instant::now() + Duration::from_secs(2);
    while ledger.in_flight() > 0
        && !matches!(ended, Ended::ReaderGone)
        && Instant::now() < drain_until
    {
        commit_delivered(&*store, &mut ledger)
            .map_err(|e| stored("record the delivery positions", e))?;
        std::thread::sleep(Duration::from_millis(10));
    }
    commit_delivered(&*store, &mut ledger)
        .map_err(|e| stored("record the delivery positions", e))?;
    match ended {
        Ended::Done | Ended::ReaderGone => Ok(()),
        Ended::Failed(f) => Err(f),
    }
}

enum Ended {
    Done,
    /// The reader closed stdout (EPIPE): a normal end, exit 0.
    ReaderGone,
    Failed((Exit, String)),
}

enum PrintFailed {
    Closed,
    Write(std::io::Error),
    Store(&'static str, hush_store::StoreError),
}

/// Moves the delivery positions over what the reader has taken.
fn commit_delivered(store: &dyn Store, ledger: &mut Ledger) -> Result<(), hush_store::StoreError> {
    let done = ledger.delivered(unread_in_stdout());
    if done.is_empty() {
        return Ok(());
    }
    store.set_delivered(&done)
}

/// Prints, in order, the stored messages of the `dirty` threads after their
/// delivery position and up to their catch-up cursor (history known to be
/// complete: a message fetched later can never land before a printed one).
/// At most `limit` lines; returns how many.
#[expect(clippy::too_many_arguments, reason = "the listen loop's state")]
fn print_new(
    c: &Client,
    store: &dyn Store,
    me: uuid::Uuid,
    dirty: &mut HashSet<ThreadId>,
    positions: &mut HashMap<ThreadId, Option<MessageKey>>,
    out: &mut impl std::io::Write,
    ledger: &mut Ledger,
    limit: Option<usize>,
) -> Result<usize, PrintFailed> {
    let vault = c.vault();
    // Only what is durably stored is printed: a store that cannot keep a
    // message (a full disk) prints nothing, and says so.
    store
        .flush()
        .map_err(|e| PrintFailed::Store("flush the store", e))?;
    let records = store
        .threads()
        .map_err(|e| PrintFailed::Store("read the threads", e))?;
    let contacts = c.app.world().resource::<Contacts>();
    let blocked = &c.app.world().resource::<Blocked>().0;
    let mut printed = 0usize;
    let todo: Vec<_> = records.iter().filter(|r| dirty.contains(&r.id)).collect();
    for record in todo {
        // A blocked sender's or an ignored request's messages are stored
        // (the history stays whole) but never handed over.
        let quiet = blocked.contains(&record.peer) || record.ignored;
        let request = contacts.get(&record.peer).is_none();
        let Some(upto) = record
            .cursor
            .as_deref()
            .and_then(hush_core::time::parse_iso_micros)
        else {
            continue; // nothing contiguous stored yet
        };
        let Some(key) = vault.thread_key(&record.peer) else {
            continue;
        };
        let position = positions.entry(record.id).or_default();
        // Stored past the cursor: printed once the cursor reaches it (the
        // end of a catch-up moves it without a message of its own).
        let mut past_cursor = false;
        'pages: loop {
            let page = store
                .messages(record.id, position.as_ref(), 200)
                .map_err(|e| PrintFailed::Store("read the messages", e))?;
            let full = page.len() == 200;
            for m in page {
                let k = message_key(&m);
                if k.micros > upto {
                    past_cursor = true;
                    break 'pages;
                }
                let msg = hush_chat::ChatMessage::decrypt(&key, &m, me);
                let bytes = if msg.mine || quiet {
                    0
                } else {
                    if !reader_ready() {
                        // The reader has not taken the last line: wait for
                        // it on a later step (the thread stays dirty).
                        return Ok(printed);
                    }
                    let line = message_line(record.id, &msg, request);
                    match write_line(out, &line) {
                        Ok(n) => n,
                        Err(WriteFailed::Closed) => return Err(PrintFailed::Closed),
                        Err(WriteFailed::Other(e)) => return Err(PrintFailed::Write(e)),
                    }
                };
                ledger.wrote(bytes, record.id, k.clone());
                *position = Some(k);
                if bytes > 0 {
                    printed += 1;
                    if limit.is_some_and(|l| printed >= l) {
                        return Ok(printed);
                    }
                }
            }
            if !full {
                break;
            }
        }
        if !past_cursor {
            dirty.remove(&record.id);
        }
    }
    Ok(printed)
}

/// Whether the next line may be written now: always for a file or a
/// terminal; for a pipe, once its reader has taken every line so far (waiting
/// a moment for a fast reader). One line at a time in a pipe means a reader
/// that stops early (`head -n 1`) can never have swallowed lines it did not
/// use: what it did not take is printed again by the next run.
fn reader_ready() -> bool {
    let until = Instant::now() + Duration::from_millis(2);
    loop {
        match unread_in_stdout() {
            None | Some(0) => return true,
            Some(_) if Instant::now() >= until => return false,
            Some(_) => std::thread::yield_now(),
        }
    }
}

/// One output line of `listen`; `request`: from someone who is not a
/// contact (a message request).
fn message_line(thread: ThreadId, msg: &hush_chat::ChatMessage, request: bool) -> String {
    let mut line = serde_json::json!({
        "thread_id": thread,
        "id": msg.id,
        "sender_id": msg.sender_id,
        "sender_name": msg.sender_name,
        "content": msg.content,
        "timestamp": msg.timestamp_ms,
        // One form whatever the server wrote (REST `Z`, WebSocket `+00:00`).
        "created_at": hush_core::time::format_utc(msg.micros),
    });
    if request {
        line["request"] = true.into();
    }
    if let hush_chat::MessageStatus::Undecryptable(why) = &msg.status {
        line["undecryptable"] = serde_json::Value::String(why.clone());
    }
    line.to_string()
}

fn not_stored(what: &str, error: &str) -> (Exit, String) {
    if error.contains("corrupt") || error.contains("damaged") {
        // It fails the same way on every run: the way out is a repair.
        return (
            Exit::Error,
            format!(
                "the profile's store cannot be read ({what}: {error}); run `hush repair` to move \
                 it aside and keep what can still be read"
            ),
        );
    }
    (
        Exit::Error,
        format!(
            "could not store incoming messages ({what}: {error}); they stay on the server \
             and are fetched by the next run"
        ),
    )
}

pub fn outbox(opts: &Options) -> CmdResult {
    let mut c = open_unlocked(opts)?;
    // One more update so the restored outbox is in place.
    c.step();
    let w = c.app.world();
    let outbox = w.resource::<Outbox>();
    let contacts = w.resource::<Contacts>();
    for e in outbox.entries() {
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

/// `hush status`: connects, waits for the catch-up and one round trip (or
/// the timeout), and prints what the window's connection details show.
pub fn status(opts: &Options, json: bool, timeout: Duration) -> CmdResult {
    let started = Instant::now();
    let mut c = open_unlocked(opts)?;
    let left = timeout.saturating_sub(started.elapsed());
    let mut pinged = None;
    c.run_until(left, |c| {
        let w = c.app.world();
        let conn = w.resource::<hush_net::Connection>();
        if !conn.is_connected() {
            return false;
        }
        if pinged != Some(conn.generation()) {
            pinged = Some(conn.generation());
            c.app
                .world_mut()
                .write_message(hush_net::ConnectionIntent::MeasureRoundTrip);
            return false;
        }
        let r = hush_chat::status::report(w, hush_chat::now_ms());
        r.rtt_ms.is_some() && r.last_catchup.is_some_and(|c| c.took_s.is_some())
    });
    let r = hush_chat::status::report(c.app.world(), hush_chat::now_ms());
    if json {
        println!(
            "{}",
            serde_json::to_string(&r).expect("a report serialises")
        );
    } else {
        print!("{}", status_text(&r));
    }
    if r.connected {
        Ok(())
    } else {
        Err((
            Exit::NoServer,
            format!("not connected to {} within the timeout", r.server),
        ))
    }
}

/// The report for a person: one line per figure.
fn status_text(r: &hush_chat::status::StatusReport) -> String {
    let ms = |v: f64| format!("{v:.1} ms");
    let features = if r.features.is_empty() {
        "none (a stock server)".to_owned()
    } else {
        r.features.join(", ")
    };
    let mut s = format!(
        "server        {} ({})\nfeatures      {features}\nround trip    {}\nreconnects    {} in 24 h\n",
        r.server,
        if r.connected {
            "connected"
        } else {
            "not connected"
        },
        r.rtt_ms.map_or("not measured".into(), ms),
        r.reconnects_24h,
    );
    if let Some(d) = &r.last_disconnect {
        s.push_str(&format!(
            "last drop     {} ({:.0} s ago)\n",
            d.reason, d.ago_s
        ));
    }
    s.push_str(&format!("queued        {}", r.queued));
    if let Some(a) = r.oldest_queued_s {
        s.push_str(&format!(", the oldest for {a:.0} s"));
    }
    s.push('\n');
    if let Some(c) = &r.last_catchup {
        s.push_str(&format!(
            "catch-up      {} messages{}\n",
            c.messages,
            c.took_s
                .map_or(", still running".into(), |t| format!(" in {t:.2} s"))
        ));
    }
    s
}
