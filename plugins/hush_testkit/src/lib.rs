//! Test and benchmark support, shared by the crates' system tests and the
//! benchmark harness: a real relay on `127.0.0.1:0` that can be stopped and
//! restarted on the same port, a TCP proxy that injects faults, and helpers
//! that drive headless apps in virtual time.

pub mod app;
pub mod disk;
pub mod pg;
pub mod proxy;
pub mod relay;
pub mod rest;
pub mod tls;

pub use app::{advance, run_until, step_app, unclamp_virtual_time};
pub use disk::TinyDisk;
pub use proxy::{FaultProxy, ProxyMode};
pub use relay::RelayFixture;
pub use tls::{TlsProxy, self_signed};

/// The vault words of every fixture relay.
pub const WORDS: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";
