//! What flows between the socket task and the world.

use hush_core::http::Health;
use hush_core::policy::connection::CloseKind;
use hush_core::wire::{FrameParseError, ServerFrame};

/// An event of one socket attempt, tagged with its generation.
#[derive(Debug)]
pub struct TransportEvent {
    pub generation: u64,
    pub kind: TransportEventKind,
}

#[derive(Debug)]
pub enum TransportEventKind {
    /// The socket is open; the server's `/health` tells its features.
    Opened(Health),
    /// A text frame, already parsed off the main thread.
    Frame(Result<ServerFrame, FrameParseError>),
    Closed(CloseKind),
}

/// What the world asks of the socket task.
#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}
