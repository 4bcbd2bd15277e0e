//! The panels: pure functions of views and form state that return intents.

pub mod app;
pub mod chat;
pub mod composer;
pub mod forms;
pub mod messages;
pub mod status;
