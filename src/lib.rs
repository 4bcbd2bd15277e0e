//! The hush app: the command line, and the headless driver that scripts,
//! tests and benchmarks share.

pub mod cli;
pub mod headless;
