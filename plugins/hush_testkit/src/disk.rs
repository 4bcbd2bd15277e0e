//! A real disk that can be filled: a tmpfs of a few MB mounted in a private
//! mount namespace (`unshare --map-root-user --mount`, no root needed where
//! user namespaces are allowed), reached from outside through the holder
//! process's `/proc/PID/root`. Nothing is mounted on the host, and the disk
//! disappears with the holder, even if the test panics.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct TinyDisk {
    holder: Child,
    path: PathBuf,
    _mountpoint: tempfile::TempDir,
}

impl TinyDisk {
    /// A fresh, empty filesystem of `bytes`.
    pub fn new(bytes: u64) -> TinyDisk {
        let mountpoint = tempfile::tempdir().expect("temp dir");
        let mut holder = Command::new("unshare")
            .args(["--map-root-user", "--mount", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={bytes} hush-tiny-disk \"$0\" && echo up && exec sleep 3600"
            ))
            .arg(mountpoint.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("a full-disk test needs `unshare` (util-linux)");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().expect("piped")).read_line(&mut line);
        if line.trim() != "up" {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("holder output");
            panic!(
                "could not mount a tmpfs in a private mount namespace (needs user namespaces \
                 or root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let path = PathBuf::from(format!("/proc/{}/root", holder.id()))
            .join(mountpoint.path().strip_prefix("/").expect("absolute"));
        TinyDisk {
            holder,
            path,
            _mountpoint: mountpoint,
        }
    }

    /// The filesystem's root, as seen from this process.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Writes a filler file until the filesystem refuses with ENOSPC; returns
    /// how many bytes it took.
    pub fn fill(&self) -> u64 {
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("filler");
        // Page-sized appends: tmpfs has nothing left once one is refused.
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        written
    }

    /// Removes the filler.
    pub fn make_room(&self) {
        std::fs::remove_file(self.filler()).expect("remove filler");
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
