//! The client's pure policies: how long to back off, when the heartbeat is
//! dead, where catch-up resumes and how far each thread is synced. Systems in the plugins are thin wrappers.

pub mod backoff;
pub mod catchup;
pub mod connection;
pub mod errors;
pub mod heartbeat;
pub mod outbox;
pub mod thread_sync;

pub use backoff::BackoffPolicy;
pub use catchup::{CatchupCursor, PageOutcome};
pub use heartbeat::{Heartbeat, HeartbeatAction, HeartbeatPolicy};
