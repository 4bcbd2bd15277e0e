//! What the panels show (views) and what they ask for (intents). Plain data:
//! the panels are tested with these, without Bevy or a GPU.

use hush_chat::threads::ThreadLog;
use hush_core::ThreadId;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Which screen is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// A vault was just created: show its words once.
    NewVaultWords,
    Unlock,
    /// The words are right; this profile needs a display name.
    Identity,
    Chat,
}

/// The connection as the status indicator shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusView {
    Connected,
    Connecting,
    Reconnecting {
        attempt: u32,
        /// Seconds until the next try.
        retry_in: f32,
        /// Why the last attempt failed, in words ("connection refused").
        why: Option<String>,
    },
    /// Not connected and not trying (yet).
    Idle,
    Disconnected {
        /// Why, in words.
        reason: String,
        /// "Retry now" can help (offline, gave up).
        retryable: bool,
    },
}

impl StatusView {
    /// The words next to the icon.
    pub fn label(&self) -> String {
        match self {
            StatusView::Connected => "Connected".into(),
            StatusView::Connecting => "Connecting…".into(),
            StatusView::Reconnecting {
                attempt,
                retry_in,
                why,
            } => {
                let why = why.as_deref().map(|w| format!("{w}; ")).unwrap_or_default();
                format!(
                    "Reconnecting… ({why}attempt {attempt}, retrying in {:.0} s)",
                    retry_in.ceil()
                )
            }
            StatusView::Idle => "Not connected".into(),
            StatusView::Disconnected { reason, .. } => format!("Disconnected: {reason}"),
        }
    }
}

/// Progress and errors of an unlock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockStatus {
    /// Something is running: "Checking the words…", "Deriving the key…".
    pub busy: Option<String>,
    /// The last failure, in words.
    pub error: Option<String>,
}

/// A contact's thread in the sidebar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadItem {
    pub thread: ThreadId,
    pub peer: Uuid,
    pub name: String,
    pub unread: u32,
    /// Milliseconds since the epoch of the newest message (0: none).
    pub last_activity_ms: i64,
    pub selected: bool,
    /// The newest message, one line ("You: …" for one's own).
    pub preview: Option<String>,
    /// A message request: the peer is not a contact (yet).
    pub request: bool,
}

/// A sidebar preview of a message: one line, at most `max` characters.
pub fn preview(text: &str, mine: bool, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut p: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        p.push('…');
    }
    if mine { format!("You: {p}") } else { p }
}

/// The open thread.
pub struct ThreadView<'a> {
    pub thread: ThreadId,
    pub peer: Uuid,
    pub peer_name: String,
    pub log: &'a ThreadLog,
    /// The draft kept in the profile store (shown when the thread opens).
    pub saved_draft: &'a str,
    /// A message request: Accept, Ignore or Block instead of a composer.
    pub request: bool,
    /// The search in this thread, if one runs.
    pub find: Option<FindView<'a>>,
}

/// A search's progress and matches (`hush_chat::Find`).
#[derive(Debug, Clone, Copy)]
pub struct FindView<'a> {
    /// Oldest first.
    pub hits: &'a [hush_store::MessageKey],
    /// Messages searched so far.
    pub searched: usize,
    /// The whole thread was searched.
    pub complete: bool,
}

/// Everything the chat screen shows.
pub struct ChatView<'a> {
    pub my_name: String,
    pub my_id: Uuid,
    pub threads: Vec<ThreadItem>,
    pub open: Option<ThreadView<'a>>,
    /// No network at all (the offline banner).
    pub offline: bool,
    /// The server's limit on a message, bytes of decoded ciphertext.
    pub max_ciphertext: usize,
    /// The server cannot list threads: messages from people who are not
    /// contacts cannot be shown (said in the sidebar).
    pub requests_unsupported: bool,
}

/// What the user asked for.
#[derive(Clone, PartialEq)]
pub enum UiIntent {
    /// The words were acknowledged (new vault screen).
    WordsNoted,
    Unlock {
        server: String,
        words: Zeroizing<String>,
    },
    CreateIdentity {
        name: String,
    },
    AddContact {
        user_id: String,
        name: String,
    },
    Select(ThreadId),
    Send {
        to: Uuid,
        text: String,
    },
    RetrySend(u64),
    CancelSend(u64),
    /// Show the page before the oldest loaded message of this thread.
    LoadOlder(ThreadId),
    RetryNow,
    /// Ping now (the details window opened).
    MeasureRoundTrip,
    Lock,
    CopyToClipboard(String),
    /// The settings changed.
    SetPrefs(hush_store::Prefs),
    /// The text typed in a thread changed (kept as its draft).
    Draft {
        thread: ThreadId,
        text: String,
    },
    /// Search this thread (an empty query ends the search).
    Find {
        thread: ThreadId,
        query: String,
    },
    /// Load the thread back to this message (a search match to show).
    Reveal {
        thread: ThreadId,
        key: hush_store::MessageKey,
    },
    /// A request's sender becomes a contact under `name`.
    AcceptRequest {
        peer: Uuid,
        name: String,
    },
    IgnoreRequest(ThreadId),
    Block(Uuid),
    RenameContact {
        peer: Uuid,
        name: String,
    },
    RemoveContact {
        peer: Uuid,
        forget_history: bool,
    },
}

impl std::fmt::Debug for UiIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiIntent::Unlock { server, .. } => {
                write!(f, "Unlock {{ server: {server:?}, words: <redacted> }}")
            }
            UiIntent::WordsNoted => f.write_str("WordsNoted"),
            UiIntent::CreateIdentity { name } => write!(f, "CreateIdentity({name:?})"),
            UiIntent::AddContact { user_id, name } => {
                write!(f, "AddContact({user_id:?}, {name:?})")
            }
            UiIntent::Select(t) => write!(f, "Select({t})"),
            UiIntent::Send { to, .. } => write!(f, "Send {{ to: {to} }}"),
            UiIntent::RetrySend(s) => write!(f, "RetrySend({s})"),
            UiIntent::CancelSend(s) => write!(f, "CancelSend({s})"),
            UiIntent::LoadOlder(t) => write!(f, "LoadOlder({t})"),
            UiIntent::RetryNow => f.write_str("RetryNow"),
            UiIntent::MeasureRoundTrip => f.write_str("MeasureRoundTrip"),
            UiIntent::Lock => f.write_str("Lock"),
            UiIntent::CopyToClipboard(_) => f.write_str("CopyToClipboard"),
            UiIntent::Draft { thread, .. } => write!(f, "Draft({thread})"),
            UiIntent::SetPrefs(p) => write!(f, "SetPrefs({p:?})"),
            UiIntent::AcceptRequest { peer, name } => write!(f, "AcceptRequest({peer}, {name:?})"),
            UiIntent::IgnoreRequest(t) => write!(f, "IgnoreRequest({t})"),
            UiIntent::Find { thread, .. } => write!(f, "Find({thread})"),
            UiIntent::Reveal { thread, key } => write!(f, "Reveal({thread}, {})", key.id),
            UiIntent::Block(p) => write!(f, "Block({p})"),
            UiIntent::RenameContact { peer, name } => write!(f, "RenameContact({peer}, {name:?})"),
            UiIntent::RemoveContact {
                peer,
                forget_history,
            } => write!(f, "RemoveContact({peer}, forget_history: {forget_history})"),
        }
    }
}
