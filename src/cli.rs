//! The command line. Words come from `HUSH_WORDS` or `--words-file`, never
//! from argv (where other users of the machine can read them).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use crate::headless::{self, Exit, Options};

/// hush: an end-to-end encrypted chat client for the hush vault.
///
/// Without a command it opens the window. Without --server it uses the data
/// directory's local relay (started by the window if none runs).
#[derive(Parser, Debug)]
#[command(name = "hush", version, about)]
pub struct Cli {
    /// The hush server, e.g. http://127.0.0.1:8000. Several nodes of one
    /// vault: repeat the flag or separate them with commas; a failed
    /// connection moves on to the next.
    #[arg(long, global = true, env = "HUSH_SERVER")]
    pub server: Vec<String>,
    /// The local profile (one identity and its data).
    #[arg(long, global = true, default_value = "default")]
    pub profile: String,
    /// Where profiles (and the embedded relay) keep their data.
    #[arg(long, global = true, env = "HUSH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A file holding the 12 words (instead of HUSH_WORDS).
    #[arg(long, global = true)]
    pub words_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for https/wss (a private CA).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Print progress lines (`connected`, `shown N`) on stdout (scripts).
    #[arg(long, hide = true)]
    pub report: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print this profile's identity; `--name` creates it on first use.
    Identity {
        #[arg(long)]
        name: Option<String>,
    },
    /// Add, list, rename, remove, block or unblock contacts.
    Contacts {
        #[command(subcommand)]
        action: ContactsCommand,
    },
    /// Message requests: threads people who are not your contacts started
    /// with you. Without an action, list them as JSON lines (after asking
    /// the server for new ones).
    Requests {
        #[command(subcommand)]
        action: Option<RequestsCommand>,
        /// Seconds to wait for the server's list.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send TEXT to the contact UUID (added as a contact if new). Exit 0 once
    /// the server acknowledged it, 3 if it is still queued at the timeout.
    /// TEXT `-` reads the text from stdin (recommended: the command line of a
    /// process is visible to every user of the machine).
    Send {
        uuid: String,
        text: String,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Print incoming messages as JSON lines (caught-up ones too).
    Listen {
        #[arg(long)]
        count: Option<usize>,
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Print queued and failed outgoing messages as JSON lines.
    Outbox,
    /// Connect, catch up and measure, then print the connection's details:
    /// server and features, round trip, reconnects, last disconnect, the
    /// queue, the last catch-up.
    Status {
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the server.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Check the profile's store; if it cannot be read, move it aside and
    /// make a new one with what can still be read (identity, contacts,
    /// queued messages); messages are fetched again. Needs no words.
    Repair {
        /// Rebuild even a store that reads cleanly.
        #[arg(long)]
        force: bool,
    },
    /// Show the profile's settings as JSON, changing those given first (what
    /// the window's Settings change). Needs no words.
    Settings {
        /// Desktop notifications for new messages.
        #[arg(long, value_enum)]
        notifications: Option<OnOff>,
        /// Whether a notification shows the message text.
        #[arg(long, value_enum)]
        notification_text: Option<ShownHidden>,
        /// Lock the window's vault after MINUTES without input, or `off`.
        #[arg(long, value_parser = parse_auto_lock)]
        auto_lock: Option<AutoLock>,
    },
    /// Run the hush-relay server (same options as `hush-relay`).
    Relay {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `--auto-lock`: minutes, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoLock(Option<u32>);

fn parse_auto_lock(s: &str) -> Result<AutoLock, String> {
    if s == "off" {
        return Ok(AutoLock(None));
    }
    match s.parse::<u32>() {
        Ok(m) if (1..=24 * 60).contains(&m) => Ok(AutoLock(Some(m))),
        _ => Err("minutes from 1 to 1440, or `off`".into()),
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShownHidden {
    Shown,
    Hidden,
}

#[derive(Subcommand, Debug)]
pub enum ContactsCommand {
    Add {
        uuid: String,
        name: String,
    },
    List,
    /// Give a contact another display name.
    Rename {
        uuid: String,
        name: String,
    },
    /// Forget a contact. Their messages stay (and come back if you add them
    /// again) unless --forget-history.
    Remove {
        uuid: String,
        /// Also delete the stored messages, the draft and what is queued.
        #[arg(long)]
        forget_history: bool,
    },
    /// Hide everything from this person, contact or not, and never notify.
    Block {
        uuid: String,
    },
    Unblock {
        uuid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RequestsCommand {
    /// Make the sender a contact (under their name, or --name).
    Accept {
        uuid: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Hide the request (kept: accept still works later).
    Ignore { uuid: String },
    /// Block the sender.
    Block { uuid: String },
}

fn words(cli: &Cli) -> Result<Zeroizing<String>, String> {
    words_if_given(cli)?.ok_or_else(|| {
        "set HUSH_WORDS or pass --words-file PATH (the words are never taken from the command line)".into()
    })
}

/// Every `--server` given, as one comma-separated list (`None`: none).
fn servers(cli: &Cli) -> Option<String> {
    (!cli.server.is_empty()).then(|| cli.server.join(","))
}

fn words_if_given(cli: &Cli) -> Result<Option<Zeroizing<String>>, String> {
    if let Some(path) = &cli.words_file {
        let w = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the words file {}: {e}", path.display()))?;
        return Ok(Some(Zeroizing::new(w)));
    }
    Ok(std::env::var("HUSH_WORDS")
        .ok()
        .filter(|w| !w.trim().is_empty())
        .map(Zeroizing::new))
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    quiet_contained_store_panics();
    // Profiles hold the identity, the relay's data the token key: 0600/0700.
    hush_relay::local::private_files();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HUSH_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let ca_cert = match read_ca(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hush: {e}");
            return Exit::Usage as i32;
        }
    };
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(hush_relay::default_data_dir);
    let Some(command) = cli.command.as_ref() else {
        let words = match words_if_given(&cli) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("hush: {e}");
                return Exit::Usage as i32;
            }
        };
        return crate::window::run(crate::window::WindowOptions {
            server: servers(&cli),
            data_dir,
            profile: cli.profile.clone(),
            ca_cert,
            words,
            report: cli.report,
        });
    };
    if let Command::Repair { force } = command {
        return match crate::repair::repair(&data_dir, &cli.profile, *force) {
            Ok(()) => 0,
            Err((code, msg)) => {
                eprintln!("hush: {msg}");
                code as i32
            }
        };
    }
    if let Command::Settings {
        notifications,
        notification_text,
        auto_lock,
    } = command
    {
        let change = Change {
            notifications: *notifications,
            text: *notification_text,
            auto_lock: *auto_lock,
        };
        return match settings(&data_dir, &cli.profile, change) {
            Ok(json) => {
                println!("{json}");
                0
            }
            Err(msg) => {
                eprintln!("hush: {msg}");
                Exit::Error as i32
            }
        };
    }
    if let Command::Relay { args } = command {
        let argv = std::iter::once("hush-relay".to_owned()).chain(args.iter().cloned());
        hush_relay::cli::run(argv);
        return 0;
    }
    let words = match words(&cli) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("hush: {e}");
            return Exit::Usage as i32;
        }
    };
    let opts = Options {
        // Without --server: the data directory's local relay, if it runs.
        server: servers(&cli).unwrap_or_else(|| {
            crate::local_relay::running(&data_dir).unwrap_or_else(|| "http://127.0.0.1:8000".into())
        }),
        data_dir: data_dir.clone(),
        profile: cli.profile.clone(),
        ca_cert,
        words,
    };
    let result = match command {
        Command::Identity { name } => headless::identity(&opts, name.as_deref()),
        Command::Contacts {
            action: ContactsCommand::Add { uuid, name },
        } => headless::contacts_add(&opts, uuid, name),
        Command::Contacts {
            action: ContactsCommand::List,
        } => headless::contacts_list(&opts),
        Command::Contacts {
            action: ContactsCommand::Rename { uuid, name },
        } => headless::contacts_rename(&opts, uuid, name),
        Command::Contacts {
            action:
                ContactsCommand::Remove {
                    uuid,
                    forget_history,
                },
        } => headless::contacts_remove(&opts, uuid, *forget_history),
        Command::Contacts {
            action: ContactsCommand::Block { uuid },
        }
        | Command::Requests {
            action: Some(RequestsCommand::Block { uuid }),
            ..
        } => headless::block(&opts, uuid, true),
        Command::Contacts {
            action: ContactsCommand::Unblock { uuid },
        } => headless::block(&opts, uuid, false),
        Command::Requests {
            action: None,
            timeout,
        } => headless::requests_list(&opts, secs(*timeout)),
        Command::Requests {
            action: Some(RequestsCommand::Accept { uuid, name }),
            ..
        } => headless::requests_accept(&opts, uuid, name.as_deref()),
        Command::Requests {
            action: Some(RequestsCommand::Ignore { uuid }),
            ..
        } => headless::requests_ignore(&opts, uuid),
        Command::Send {
            uuid,
            text,
            timeout,
        } => match read_text(text) {
            Ok(text) => headless::send(&opts, uuid, &text, secs(*timeout)),
            Err(e) => Err((Exit::Usage, e)),
        },
        Command::Listen { count, timeout } => headless::listen(&opts, *count, timeout.map(secs)),
        Command::Outbox => headless::outbox(&opts),
        Command::Status { json, timeout } => headless::status(&opts, *json, secs(*timeout)),
        Command::Relay { .. } | Command::Repair { .. } | Command::Settings { .. } => {
            unreachable!("handled above")
        }
    };
    match result {
        Ok(()) => 0,
        Err((code, msg)) => {
            eprintln!("hush: {msg}");
            code as i32
        }
    }
}

/// The store contains panics of its library (a damaged file) and turns them
/// into a clear error; the default hook would still print them as if the
/// program had crashed. Every other panic is printed as usual.
fn quiet_contained_store_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_store_library = info.location().is_some_and(|l| l.file().contains("/redb-"));
        if in_store_library {
            tracing::debug!("the store library failed: {info}");
        } else {
            default(info);
        }
    }));
}

fn read_ca(cli: &Cli) -> Result<Option<Vec<u8>>, String> {
    cli.ca_cert
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())))
        .transpose()
}

/// The text of `send`: as given, or all of stdin for `-`.
fn read_text(text: &str) -> Result<String, String> {
    if text != "-" {
        return Ok(text.to_owned());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .map_err(|e| format!("cannot read the message from stdin: {e}"))?;
    // One trailing newline is the shell's (echo, a here-string), not the text's.
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 1e7))
}

/// What `hush settings` was asked to change.
struct Change {
    notifications: Option<OnOff>,
    text: Option<ShownHidden>,
    auto_lock: Option<AutoLock>,
}

/// `hush settings`: the profile's settings, after the changes given.
fn settings(data_dir: &std::path::Path, profile: &str, c: Change) -> Result<String, String> {
    let store = headless::open_profile(data_dir, profile).map_err(|e| e.to_string())?;
    let mut meta = store.profile().map_err(|e| e.to_string())?;
    if let Some(n) = c.notifications {
        meta.prefs.notifications_off = n == OnOff::Off;
    }
    if let Some(t) = c.text {
        meta.prefs.notification_text_hidden = t == ShownHidden::Hidden;
    }
    if let Some(AutoLock(m)) = c.auto_lock {
        meta.prefs.auto_lock_minutes = m;
    }
    if c.notifications.is_some() || c.text.is_some() || c.auto_lock.is_some() {
        store.set_profile(&meta).map_err(|e| e.to_string())?;
        store.flush().map_err(|e| e.to_string())?;
    }
    let p = meta.prefs;
    Ok(serde_json::json!({
        "notifications": if p.notifications_off { "off" } else { "on" },
        "notification_text": if p.notification_text_hidden { "hidden" } else { "shown" },
        "auto_lock": p.auto_lock_minutes.map_or(serde_json::json!("off"), |m| serde_json::json!(m)),
    })
    .to_string())
}
