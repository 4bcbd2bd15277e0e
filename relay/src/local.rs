//! A relay owned by its data directory: at most one relay process per
//! directory (an OS lock on `relay.lock`), found by the port file
//! `relay.port` it writes once it listens and removes when it stops.
//!
//! The port file names the URL, the process and a random instance id that
//! the relay also shows on `/health` ([ext] `relay.instance`). A client that
//! reads the file (private to its user: 0600 in a 0700 directory) and finds
//! the same id on `/health` knows it reached this directory's relay, not
//! whatever else listens on that port.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const LOCK_FILE: &str = "relay.lock";
pub const PORT_FILE: &str = "relay.port";

/// What the port file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRecord {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub pid: u32,
    pub instance: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("another relay is already using {0} (its address is in {PORT_FILE} there)")]
    Busy(PathBuf),
    #[error("cannot use the relay directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// A new random instance id (128 bits, hex).
pub fn new_instance_id() -> String {
    crate::auth::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// From now on every file and directory this process creates is private to
/// its user (umask 077): the relay's database holds the token key, a
/// profile holds the identity.
pub fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` private to its user (0700) if needed.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Opens (creating) a file readable and writable by its user only.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// The directory's lock, held for the relay's life; dropping it removes the
/// port file (if it is still this relay's) and releases the lock.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
    published: Option<String>,
}

/// Takes the lock of `dir`, or says that another relay holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock, LocalError> {
    let io = |e| LocalError::Io(dir.to_owned(), e);
    create_private_dir(dir).map_err(io)?;
    let file = private_file(&dir.join(LOCK_FILE)).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock {
            dir: dir.to_owned(),
            _file: file,
            published: None,
        }),
        Err(std::fs::TryLockError::WouldBlock) => Err(LocalError::Busy(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

impl DirLock {
    /// Writes the port file (atomically: a reader sees all of it or none).
    pub fn publish(&mut self, record: &PortRecord) -> Result<(), LocalError> {
        let io = |e| LocalError::Io(self.dir.clone(), e);
        let tmp = self.dir.join(format!("{PORT_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = private_file(&tmp).map_err(io)?;
        let json = serde_json::to_string(record).expect("a record serialises");
        f.write_all(json.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(PORT_FILE)).map_err(io)?;
        self.published = Some(record.instance.clone());
        Ok(())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some(mine) = &self.published
            && read_record(&self.dir).is_some_and(|r| &r.instance == mine)
        {
            let _ = std::fs::remove_file(self.dir.join(PORT_FILE));
        }
    }
}

/// The port file of `dir`, if there is a readable one.
pub fn read_record(dir: &Path) -> Option<PortRecord> {
    let text = std::fs::read_to_string(dir.join(PORT_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(instance: &str) -> PortRecord {
        PortRecord {
            url: "http://127.0.0.1:8000".into(),
            pid: 1,
            instance: instance.into(),
        }
    }

    #[test]
    fn one_relay_per_directory_and_its_port_file_goes_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("relay");
        let mut lock = lock_dir(&dir).unwrap();
        assert!(matches!(lock_dir(&dir), Err(LocalError::Busy(_))));
        assert_eq!(read_record(&dir), None);
        lock.publish(&record("a")).unwrap();
        assert_eq!(read_record(&dir), Some(record("a")));
        drop(lock);
        assert_eq!(read_record(&dir), None, "removed with the lock");
        let lock = lock_dir(&dir).expect("free again");
        drop(lock);
    }

    #[test]
    fn a_port_file_that_another_relay_rewrote_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let mut lock = lock_dir(&dir).unwrap();
        lock.publish(&record("a")).unwrap();
        std::fs::write(
            dir.join(PORT_FILE),
            serde_json::to_string(&record("b")).unwrap(),
        )
        .unwrap();
        drop(lock);
        assert_eq!(read_record(&dir), Some(record("b")));
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_its_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("relay");
        let mut lock = lock_dir(&dir).unwrap();
        lock.publish(&record("a")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(PORT_FILE)), 0o600);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
    }
}
