//! The local relay of a data directory, for windows without `--server`.
//!
//! It is a `hush relay` process of its own, detached from the window that
//! started it, so closing any window never cuts the others off. It owns its
//! directory (a lock, so one relay per directory) and writes a port file
//! with a random instance id that it also shows on `/health`; a window joins
//! only the relay whose `/health` shows the id of the port file it read, and
//! never whatever else listens on 8000–8009. The relay stops by itself when no
//! client was connected for [`IDLE_EXIT`]. ARCHITECTURE.md says why this
//! design and not a take-over by the remaining windows.
//!
//! While a window on the local relay is not connected, [`plugin`] checks
//! every second whether the relay is back (or starts it again) and then
//! retries at once instead of waiting out the backoff.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bevy::prelude::*;
use crossbeam_channel::Receiver;
use hush_core::http::Health;
use hush_net::{
    ConnState, Connection, ConnectionIntent, NetSystems, NextUpdate, ServerUrl, SetServer, Wake,
    WakingSender,
};
use hush_relay::local::{PortRecord, create_private_dir, read_record};
use zeroize::Zeroizing;

/// The ports a local relay may take, the first free one first.
pub const LOCAL_PORTS: std::ops::Range<u16> = 8000..8010;

/// A local relay with no client for this long stops.
pub const IDLE_EXIT: Duration = Duration::from_secs(10 * 60);

/// How often a disconnected window looks for its relay.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often it may start one again when none answers.
const START_EVERY: Duration = Duration::from_secs(10);

/// A relay that runs for the data directory.
#[derive(Debug)]
pub struct LocalRelay {
    pub url: String,
    /// The words of the vault this start created (shown once).
    pub new_words: Option<Zeroizing<String>>,
}

fn relay_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("relay")
}

/// The instance id that the relay at `url` shows on `/health`.
fn health_instance(url: &str) -> Option<String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .ok()?;
    let h: Health = client
        .get(format!("{url}/health"))
        .send()
        .ok()?
        .json()
        .ok()?;
    h.relay?.instance
}

/// Whether `record`'s relay answers as itself.
fn answers(record: &PortRecord) -> bool {
    health_instance(&record.url).as_deref() == Some(record.instance.as_str())
}

/// The URL of the data directory's relay, if it runs and answers as itself.
pub fn running(data_dir: &Path) -> Option<String> {
    let record = read_record(&relay_dir(data_dir))?;
    answers(&record).then_some(record.url)
}

/// Joins the data directory's relay, or starts it.
pub fn find_or_start(data_dir: &Path) -> Result<LocalRelay, String> {
    if let Some(url) = running(data_dir) {
        return Ok(LocalRelay {
            url,
            new_words: None,
        });
    }
    start(data_dir)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Starts `hush relay` for the data directory on the first free local port.
fn start(data_dir: &Path) -> Result<LocalRelay, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the hush program: {e}"))?;
    let dir = relay_dir(data_dir);
    create_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut taken = Vec::new();
    let mut last_error = String::new();
    for port in LOCAL_PORTS {
        if !port_is_free(port) {
            taken.push(port);
            continue;
        }
        match spawn_on(&exe, &dir, port)? {
            Spawned::Ready(r) => {
                if !taken.is_empty() {
                    tracing::warn!(
                        "ports {taken:?} are used by other programs; the local relay is on {port}"
                    );
                }
                return Ok(r);
            }
            Spawned::Busy => {
                // Another window started it at the same moment: join that one.
                for _ in 0..50 {
                    if let Some(url) = running(data_dir) {
                        return Ok(LocalRelay {
                            url,
                            new_words: None,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                return Err(format!(
                    "another relay holds {} but does not answer",
                    dir.display()
                ));
            }
            Spawned::Failed(e) => last_error = e,
        }
    }
    Err(if taken.len() == LOCAL_PORTS.len() {
        format!(
            "ports {}-{} are all used by other programs; start a relay by hand (hush relay --listen 127.0.0.1:PORT) and pass --server",
            LOCAL_PORTS.start,
            LOCAL_PORTS.end - 1
        )
    } else {
        format!("could not start the local relay: {last_error}")
    })
}

enum Spawned {
    Ready(LocalRelay),
    /// Another relay holds the directory.
    Busy,
    Failed(String),
}

fn spawn_on(exe: &Path, dir: &Path, port: u16) -> Result<Spawned, String> {
    let log_path = dir.join("relay.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("relay")
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--exit-when-idle")
        .arg(IDLE_EXIT.as_secs().to_string())
        .arg("--ready-line")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    #[cfg(unix)]
    {
        // Its own process group: Ctrl-C in the window's terminal is not for it.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let out = BufReader::new(child.stdout.take().expect("piped"));
    let (mut url, mut words, mut ready) = (None, None, false);
    for line in out.lines() {
        let Ok(line) = line else { break };
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.trim().to_owned());
        } else if let Some(w) = line.strip_prefix("    ") {
            words = Some(Zeroizing::new(w.trim().to_owned()));
        } else if line == "ready" {
            ready = true;
            break;
        }
    }
    if let (true, Some(url)) = (ready, url) {
        // Reap it when it stops while this window still runs.
        std::thread::spawn(move || child.wait());
        return Ok(Spawned::Ready(LocalRelay {
            url,
            new_words: words,
        }));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.code() == Some(hush_relay::cli::BUSY_EXIT) {
        return Ok(Spawned::Busy);
    }
    let tail = std::fs::read_to_string(&log_path)
        .ok()
        .and_then(|t| t.lines().last().map(str::to_owned))
        .unwrap_or_default();
    Ok(Spawned::Failed(format!(
        "the relay exited ({status}): {tail}"
    )))
}

/// Watches the local relay of a window without `--server`.
pub fn plugin(data_dir: PathBuf, url: String) -> impl Fn(&mut App) {
    move |app: &mut App| {
        let (tx, rx) = crossbeam_channel::unbounded();
        let tx = app.world().resource::<Wake>().sender(tx);
        app.insert_resource(Watch {
            data_dir: data_dir.clone(),
            url: url.clone(),
            checking: false,
            next_check: Duration::ZERO,
            next_start: START_EVERY,
            tx,
            rx,
        })
        .add_systems(Update, watch_local_relay.in_set(NetSystems::Connection));
    }
}

#[derive(Resource)]
struct Watch {
    data_dir: PathBuf,
    /// The relay's URL as the connection uses it.
    url: String,
    checking: bool,
    next_check: Duration,
    next_start: Duration,
    tx: WakingSender<Result<String, String>>,
    rx: Receiver<Result<String, String>>,
}

fn watch_local_relay(
    mut w: ResMut<Watch>,
    conn: Res<Connection>,
    time: Res<Time>,
    mut next: ResMut<NextUpdate>,
    mut server: MessageWriter<SetServer>,
    mut intent: MessageWriter<ConnectionIntent>,
    ui: Option<ResMut<hush_ui::UiConfig>>,
) {
    let now = time.elapsed();
    let waiting = matches!(conn.state(), ConnState::Reconnecting { .. });
    if let Ok(found) = w.rx.try_recv() {
        w.checking = false;
        match found {
            Ok(url) => {
                if url != w.url {
                    match ServerUrl::parse(&url) {
                        Ok(u) => {
                            tracing::info!("the local relay is now at {url}");
                            server.write(SetServer(u.into()));
                            if let Some(mut ui) = ui {
                                ui.server = url.clone();
                            }
                            w.url = url;
                        }
                        Err(e) => tracing::warn!("the local relay's port file is wrong: {e}"),
                    }
                }
                if waiting {
                    intent.write(ConnectionIntent::RetryNow);
                }
            }
            Err(e) if !e.is_empty() => tracing::warn!("the local relay: {e}"),
            Err(_) => {}
        }
    }
    if !waiting {
        return;
    }
    if !w.checking && now >= w.next_check {
        w.checking = true;
        w.next_check = now + CHECK_EVERY;
        let may_start = now >= w.next_start;
        if may_start {
            w.next_start = now + START_EVERY;
        }
        let (dir, tx) = (w.data_dir.clone(), w.tx.clone());
        std::thread::spawn(move || {
            let found = if may_start {
                find_or_start(&dir).map(|r| r.url)
            } else {
                // Not there yet: nothing to say.
                running(&dir).ok_or_else(String::new)
            };
            let _ = tx.send(found);
        });
    }
    next.at(w.next_check, now);
}
