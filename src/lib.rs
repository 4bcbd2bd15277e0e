//! The hush app: the command line, the window, and the headless commands.

pub mod cli;
pub mod headless;
pub mod window;
