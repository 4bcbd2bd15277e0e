//! The client's pure policies: how long to back off, when the heartbeat is
//! dead, and where catch-up resumes. Systems in the plugins are thin wrappers.

pub mod backoff;
pub mod catchup;
pub mod connection;
pub mod heartbeat;
pub mod outbox;

pub use backoff::BackoffPolicy;
pub use catchup::{CatchupCursor, PageOutcome};
pub use heartbeat::{Heartbeat, HeartbeatAction, HeartbeatPolicy};
