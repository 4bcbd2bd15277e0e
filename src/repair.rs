//! `hush repair`: a profile store that cannot be read is moved aside and a
//! new one made in its place, keeping whatever can still be read of what
//! only this device has: the identity, the contacts, the queued messages,
//! the drafts and the threads (without their cursors, so every message is fetched again
//! from the server). It needs no words and no server.

use std::path::Path;

use hush_store::{RedbStore, Store, StoreError};

use crate::headless::{CmdResult, Exit, profile_store_path};

/// What could be read of a damaged store.
#[derive(Default)]
struct Salvage {
    profile: Option<hush_store::ProfileMeta>,
    contacts: Vec<(uuid::Uuid, hush_core::crypto::Sealed)>,
    threads: Vec<hush_store::ThreadRecord>,
    outbox: Vec<hush_store::OutboxEntry>,
    drafts: Vec<(hush_core::ThreadId, hush_core::crypto::Sealed)>,
    /// Reads that failed.
    failed: Vec<&'static str>,
}

impl Salvage {
    fn from(s: &RedbStore) -> Salvage {
        let mut v = Salvage::default();
        match s.profile() {
            Ok(p) => v.profile = Some(p),
            Err(_) => v.failed.push("identity"),
        }
        match s.contacts() {
            Ok(c) => v.contacts = c,
            Err(_) => v.failed.push("contacts"),
        }
        match s.threads() {
            Ok(t) => v.threads = t,
            Err(_) => v.failed.push("threads"),
        }
        match s.outbox() {
            Ok(o) => v.outbox = o,
            Err(_) => v.failed.push("queued messages"),
        }
        match s.drafts() {
            Ok(d) => v.drafts = d,
            Err(_) => v.failed.push("drafts"),
        }
        v
    }

    /// Whether every read worked and the messages can be read too.
    fn healthy(&self, s: &RedbStore) -> bool {
        self.failed.is_empty()
            && s.delivered().is_ok()
            && self
                .threads
                .iter()
                .all(|t| s.messages(t.id, None, usize::MAX).is_ok())
    }
}

pub fn repair(data_dir: &Path, profile: &str, force: bool) -> CmdResult {
    let path = profile_store_path(data_dir, profile).map_err(|e| (Exit::Usage, e.to_string()))?;
    if !path.exists() {
        return Err((
            Exit::Error,
            format!(
                "no store for profile {profile:?} at {}: nothing to repair",
                path.display()
            ),
        ));
    }
    let salvage = match RedbStore::open(&path) {
        Ok(s) => {
            let v = Salvage::from(&s);
            if v.healthy(&s) && !force {
                println!(
                    "{}",
                    serde_json::json!({"healthy": true, "store": path.display().to_string()})
                );
                return Ok(());
            }
            v
        }
        Err(StoreError::Locked) => {
            return Err((
                Exit::Error,
                format!("profile {profile:?} is open in another hush process: close it first"),
            ));
        }
        // Not even openable: nothing can be read out of it.
        Err(_) => Salvage {
            failed: vec![
                "identity",
                "contacts",
                "threads",
                "queued messages",
                "drafts",
            ],
            ..Salvage::default()
        },
    };
    let stamp = chrono_like_stamp();
    let aside = path.with_extension(format!("redb.broken-{stamp}"));
    std::fs::rename(&path, &aside).map_err(|e| {
        (
            Exit::Error,
            format!("cannot move {} aside: {e}", path.display()),
        )
    })?;
    let fresh = RedbStore::open(&path).map_err(|e| {
        (
            Exit::Error,
            format!("cannot create a new store at {}: {e}", path.display()),
        )
    })?;
    let write = |what: &str, r: hush_store::Result<()>| {
        r.map_err(|e| {
            (
                Exit::Error,
                format!("cannot write the {what} to the new store: {e}"),
            )
        })
    };
    let had_identity = salvage
        .profile
        .as_ref()
        .is_some_and(|p| p.identity.is_some());
    if let Some(p) = &salvage.profile {
        write("identity", fresh.set_profile(p))?;
    }
    for (peer, sealed) in &salvage.contacts {
        write("contacts", fresh.put_contact(*peer, sealed))?;
    }
    for t in &salvage.threads {
        // No cursor: every message is fetched again from the server.
        let mut t = t.clone();
        t.cursor = None;
        write("threads", fresh.put_thread(&t))?;
    }
    for e in &salvage.outbox {
        write("queued messages", fresh.put_outbox(e))?;
    }
    for (thread, sealed) in &salvage.drafts {
        write("drafts", fresh.put_draft(*thread, Some(sealed)))?;
    }
    write("store", fresh.flush())?;
    println!(
        "{}",
        serde_json::json!({
            "healthy": false,
            "moved_aside_to": aside.display().to_string(),
            "kept": {
                "identity": had_identity,
                "contacts": salvage.contacts.len(),
                "threads": salvage.threads.len(),
                "queued_messages": salvage.outbox.len(),
                "drafts": salvage.drafts.len(),
            },
            "could_not_read": salvage.failed,
        })
    );
    if !had_identity {
        eprintln!(
            "hush: the identity could not be read from the damaged store; run `hush identity --name NAME` to make a new one (contacts will need your new ID)"
        );
    }
    Ok(())
}

/// Seconds since the epoch: a name that sorts and never collides in practice.
fn chrono_like_stamp() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_else(|_| "0".into())
}
