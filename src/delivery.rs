//! How `hush listen` hands messages to the program that reads its output.
//!
//! A message counts as delivered only once its line was written and flushed
//! to stdout and, when stdout is a pipe, once the reader has taken it out of
//! the pipe (Linux tells a writer how many of its bytes are still unread).
//! Only then does the profile's delivery position for that thread move past
//! it (`Store::set_delivered`, durable). So a `listen` killed at any moment,
//! or whose reader went away (`| head -n 1`), prints again on its next run
//! what may not have reached the reader: at least once, never lost, and
//! duplicates limited to the lines in flight. Every line carries the
//! server's `id` for a consumer that de-duplicates.

use std::collections::VecDeque;
use std::io::Write;

use hush_core::ThreadId;
use hush_store::MessageKey;

/// Lines written but not yet known to be read, in output order.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Bytes written to stdout so far.
    written: u64,
    /// Per line: where it ends in the output, and the position it delivers.
    pending: VecDeque<(u64, ThreadId, MessageKey)>,
}

impl Ledger {
    /// A line of `bytes` (0 for a message that is not printed, such as one's
    /// own) that delivers `key` of `thread` once read.
    pub fn wrote(&mut self, bytes: usize, thread: ThreadId, key: MessageKey) {
        self.written += bytes as u64;
        self.pending.push_back((self.written, thread, key));
    }

    /// The positions now delivered (the newest per thread), given how many
    /// written bytes the reader has not taken yet (`None`: stdout is not a
    /// pipe, so whatever was flushed is delivered).
    pub fn delivered(&mut self, unread: Option<u64>) -> Vec<(ThreadId, MessageKey)> {
        let read_up_to = self.written.saturating_sub(unread.unwrap_or(0));
        let mut out: Vec<(ThreadId, MessageKey)> = Vec::new();
        while let Some((end, ..)) = self.pending.front() {
            if *end > read_up_to {
                break;
            }
            let (_, thread, key) = self.pending.pop_front().expect("front exists");
            match out.iter_mut().find(|(t, _)| *t == thread) {
                Some(slot) => slot.1 = key,
                None => out.push((thread, key)),
            }
        }
        out
    }

    /// Lines not known to be read.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// Bytes written to stdout that its reader has not read yet, when stdout is
/// a pipe; `None` for a file or a terminal.
pub fn unread_in_stdout() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = std::io::stdout().as_raw_fd();
        // SAFETY: fstat and ioctl(FIONREAD) only write into the values we pass.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
                return None;
            }
            let mut n: libc::c_int = 0;
            if libc::ioctl(fd, libc::FIONREAD, &mut n) != 0 {
                return None;
            }
            Some(n.max(0) as u64)
        }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Why a line could not be written.
#[derive(Debug)]
pub enum WriteFailed {
    /// The reader went away (EPIPE): a normal end.
    Closed,
    Other(std::io::Error),
}

/// Writes one line and flushes it.
pub fn write_line(out: &mut impl Write, line: &str) -> Result<usize, WriteFailed> {
    let r = out
        .write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match r {
        Ok(()) => Ok(line.len() + 1),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(WriteFailed::Closed),
        Err(e) => Err(WriteFailed::Other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> ThreadId {
        ThreadId::parse(&format!("{n:02x}000000-0000-4000-8000-0000000000{n:02x}")).unwrap()
    }

    fn k(m: i64) -> MessageKey {
        MessageKey {
            micros: m,
            id: format!("m{m}"),
        }
    }

    #[test]
    fn a_file_or_terminal_delivers_what_was_flushed() {
        let mut l = Ledger::default();
        l.wrote(10, t(1), k(1));
        l.wrote(10, t(1), k(2));
        l.wrote(10, t(2), k(3));
        assert_eq!(l.delivered(None), vec![(t(1), k(2)), (t(2), k(3))]);
        assert_eq!(l.in_flight(), 0);
        assert_eq!(l.delivered(None), vec![]);
    }

    #[test]
    fn a_pipe_delivers_only_what_its_reader_took() {
        let mut l = Ledger::default();
        l.wrote(10, t(1), k(1));
        l.wrote(10, t(1), k(2));
        l.wrote(10, t(1), k(3));
        // The reader took 15 bytes: the first line, half the second.
        assert_eq!(l.delivered(Some(15)), vec![(t(1), k(1))]);
        assert_eq!(l.in_flight(), 2);
        // Nothing more read.
        assert_eq!(l.delivered(Some(15)), vec![]);
        assert_eq!(l.delivered(Some(0)), vec![(t(1), k(3))]);
    }

    #[test]
    fn a_message_that_prints_nothing_goes_with_the_line_before_it() {
        let mut l = Ledger::default();
        l.wrote(10, t(1), k(1));
        l.wrote(0, t(1), k(2)); // one's own message: no line
        l.wrote(10, t(1), k(3));
        assert_eq!(l.delivered(Some(10)), vec![(t(1), k(2))]);
    }

    #[test]
    fn a_closed_reader_is_a_normal_end() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(
            write_line(&mut Closed, "x"),
            Err(WriteFailed::Closed)
        ));
        let mut v = Vec::new();
        assert_eq!(write_line(&mut v, "abc").unwrap(), 4);
        assert_eq!(v, b"abc\n");
    }
}
