//! The sans-I/O core of hush: everything both ends must agree on, and every
//! policy the client follows, as plain data and functions.
//!
//! Nothing here touches a socket, a clock, a file or Bevy. Time is passed in as
//! a [`std::time::Duration`] since an arbitrary epoch (the caller's clock), and
//! randomness for jitter as a number in `[0, 1)`, so every decision can be unit
//! tested exactly.

pub mod b64;
pub mod crypto;
pub mod http;
pub mod ids;
pub mod payload;
pub mod policy;
pub mod time;
pub mod wire;

pub use ids::{ThreadId, canonical_uuid};
