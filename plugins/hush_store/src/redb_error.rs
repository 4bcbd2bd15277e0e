//! redb's errors as the store's: a full disk is `DiskFull` whichever way
//! redb reports it, anything else an I/O error.

use crate::StoreError;

pub(crate) fn io_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => StoreError::DiskFull,
        other => {
            let lower = other.to_string().to_lowercase();
            if lower.contains("no space left")
                || lower.contains("storage full")
                || lower.contains("disk full")
            {
                StoreError::DiskFull
            } else {
                StoreError::io(other)
            }
        }
    }
}
