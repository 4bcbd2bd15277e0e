//! The `idle` scenario: the real window under Xvfb (Mesa's software
//! rendering), unlocked and connected, with nothing happening for 20 s. It
//! prints the window process's CPU seconds per second and the frames it drew,
//! once as the window runs (reactive) and once with `HUSH_RENDER=continuous`
//! (every frame drawn, as the engine's default does) in the same run, then
//! how long a message that arrives takes to be shown.
//!
//! Needs Xvfb and the release `hush` binary beside this one
//! (`cargo build --release`); without them it says so and measures nothing.
//!
//! The `idle-listen` scenario is the same for the headless `hush listen`:
//! its CPU and thread wake-ups while connected with nothing arriving.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hush_testkit::{RelayFixture, WORDS};
use serde_json::json;

use crate::cpu::{process_cpu, process_wakeups};
use crate::scenarios::Report;

/// Seconds of idleness measured.
const IDLE_SECS: u64 = 20;

fn hush_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("hush");
    p.is_file().then_some(p)
}

/// What the window printed with `--report`, as it came.
#[derive(Default)]
struct Seen {
    lines: Vec<(Instant, String)>,
}

impl Seen {
    fn frames(&self) -> u64 {
        self.lines
            .iter()
            .rev()
            .find_map(|(_, l)| l.strip_prefix("frame ")?.parse().ok())
            .unwrap_or(0)
    }

    /// The last `shown N`.
    fn shown(&self) -> Option<u64> {
        self.lines
            .iter()
            .rev()
            .find_map(|(_, l)| l.strip_prefix("shown ")?.parse().ok())
    }

    fn when(&self, line: &str) -> Option<Instant> {
        self.lines.iter().find(|(_, l)| l == line).map(|(t, _)| *t)
    }
}

struct Window {
    child: Child,
    seen: Arc<Mutex<Seen>>,
}

impl Window {
    fn start(hush: &Path, display: &str, server: &str, data: &Path, continuous: bool) -> Window {
        let mut cmd = Command::new(hush);
        cmd.args(["--server", server, "--profile", "ada", "--report"])
            .arg("--data-dir")
            .arg(data)
            .env("DISPLAY", display)
            .env("HUSH_WORDS", WORDS)
            .env("HUSH_REPORT_FRAMES", "1")
            .env("HUSH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(data.join("window.err")).expect("log file"));
        if continuous {
            cmd.env("HUSH_RENDER", "continuous");
        } else {
            cmd.env_remove("HUSH_RENDER");
        }
        let mut child = cmd.spawn().expect("start the window");
        let out = child.stdout.take().expect("piped");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                s.lock().unwrap().lines.push((Instant::now(), line));
            }
        });
        Window { child, seen }
    }

    fn wait_for(&self, line: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.when(line).is_some())
    }

    fn wait_until(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if pred(&self.seen.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn cpu(&self) -> f64 {
        process_cpu(self.child.id())
    }

    /// CPU per second and frames per second over `secs` of nothing.
    fn measure_idle(&self, secs: u64) -> (f64, f64) {
        let (c0, f0, t0) = (
            self.cpu(),
            self.seen.lock().unwrap().frames(),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs(secs));
        let (c1, f1, dt) = (
            self.cpu(),
            self.seen.lock().unwrap().frames(),
            t0.elapsed().as_secs_f64(),
        );
        ((c1 - c0) / dt, (f1 - f0) as f64 / dt)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Xvfb(Child, String);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xvfb() -> Option<Xvfb> {
    for n in 140..160 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            continue;
        }
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..50 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return Some(Xvfb(child, display));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return None;
    }
    None
}

fn cli(hush: &Path, server: &str, data: &Path, profile: &str, args: &[&str]) -> String {
    let out = Command::new(hush)
        .args(["--server", server, "--profile", profile])
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("HUSH_WORDS", WORDS)
        .output()
        .expect("run hush");
    assert!(out.status.success(), "hush {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn user_id(identity_json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(identity_json.trim()).expect("identity JSON");
    v["user_id"].as_str().expect("user_id").to_owned()
}

pub fn idle() -> Report {
    let not_run = |why: &str| Report {
        summary: format!("NOT RUN: {why}"),
        json: json!({ "not_run": why }),
    };
    let Some(hush) = hush_bin() else {
        return not_run("no release hush binary beside hush-bench (cargo build --release)");
    };
    let Some(x) = xvfb() else {
        return not_run("Xvfb could not be started");
    };
    let relay = RelayFixture::start();
    let server = relay.url();
    let data = tempfile::tempdir().unwrap();
    let ada = user_id(&cli(
        &hush,
        &server,
        data.path(),
        "ada",
        &["identity", "--name", "Ada"],
    ));
    let grace = user_id(&cli(
        &hush,
        &server,
        data.path(),
        "grace",
        &["identity", "--name", "Grace"],
    ));
    cli(
        &hush,
        &server,
        data.path(),
        "ada",
        &["contacts", "add", &grace, "Grace"],
    );
    cli(
        &hush,
        &server,
        data.path(),
        "grace",
        &["contacts", "add", &ada, "Ada"],
    );
    cli(
        &hush,
        &server,
        data.path(),
        "grace",
        &["send", &ada, "Hello before the window opened"],
    );

    let mut runs = Vec::new();
    let mut arrival_ms = None;
    for continuous in [false, true] {
        let w = Window::start(&hush, &x.1, &server, data.path(), continuous);
        assert!(
            w.wait_for("connected", Duration::from_secs(60))
                && w.wait_until(Duration::from_secs(30), |s| s.shown().is_some()),
            "the window never connected and showed the thread; it printed {:?} and logged {}",
            w.seen
                .lock()
                .unwrap()
                .lines
                .iter()
                .map(|(_, l)| l.as_str())
                .filter(|l| !l.starts_with("frame"))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(data.path().join("window.err")).unwrap_or_default()
        );
        // Let the first frames, the catch-up and the fonts settle.
        std::thread::sleep(Duration::from_secs(3));
        let (cpu, fps) = w.measure_idle(IDLE_SECS);
        runs.push((continuous, cpu, fps));
        if !continuous {
            // A message that arrives wakes the sleeping window at once.
            let shown = w.seen.lock().unwrap().shown().unwrap_or(0);
            let want = format!("shown {}", shown + 1);
            let sent = Instant::now();
            cli(
                &hush,
                &server,
                data.path(),
                "grace",
                &["send", &ada, "Are you there?"],
            );
            let acked = sent.elapsed();
            if w.wait_for(&want, Duration::from_secs(10)) {
                let at = w.seen.lock().unwrap().when(&want).expect("seen");
                arrival_ms = Some((
                    at.duration_since(sent).as_secs_f64() * 1000.0,
                    acked.as_secs_f64() * 1000.0,
                ));
            }
        }
        drop(w);
        // The next window opens the same profile: let the lock go.
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, rcpu, rfps) = runs[0];
    let (_, ccpu, cfps) = runs[1];
    // /proc counts CPU in clock ticks: below one tick in the whole window
    // is all that can be said.
    // SAFETY: sysconf has no preconditions.
    let tick = 1.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64 / IDLE_SECS as f64;
    let reactive_cpu = if rcpu < tick {
        format!(
            "< {:.2} % of a core (less than one clock tick)",
            tick * 100.0
        )
    } else {
        format!("{:.2} % of a core", rcpu * 100.0)
    };
    Report {
        summary: format!(
            "{IDLE_SECS} s idle, unlocked and connected, under Xvfb + lavapipe: reactive {reactive_cpu}, {rfps:.2} frames/s; \
             continuous (the old default) {:.1} % of a core, {cfps:.1} frames/s; \
             a message arriving while idle: {}",
            ccpu * 100.0,
            arrival_ms.map_or("never shown".to_owned(), |(shown, acked)| format!(
                "shown {shown:.0} ms after `hush send` started (which took {acked:.0} ms to its ack)"
            ))
        ),
        json: json!({
            "idle_secs": IDLE_SECS,
            "reactive_cpu_per_s": rcpu, "reactive_frames_per_s": rfps,
            "continuous_cpu_per_s": ccpu, "continuous_frames_per_s": cfps,
            "arrival_shown_ms": arrival_ms.map(|a| a.0),
            "arrival_send_ack_ms": arrival_ms.map(|a| a.1),
        }),
    }
}

/// The `idle-listen` scenario: `hush listen` connected, with nothing
/// arriving, for [`IDLE_SECS`]: its CPU and how often its threads wake, then
/// how long a message that arrives takes to be printed.
pub fn idle_listen() -> Report {
    let Some(hush) = hush_bin() else {
        return Report {
            summary: "NOT RUN: no hush binary beside hush-bench (cargo build --release)".into(),
            json: json!({ "not_run": "no hush binary" }),
        };
    };
    let relay = RelayFixture::start();
    let server = relay.url();
    let data = tempfile::tempdir().unwrap();
    let run = |profile: &str, args: &[&str]| cli(&hush, &server, data.path(), profile, args);
    let ada = user_id(&run("ada", &["identity", "--name", "Ada"]));
    let grace = user_id(&run("grace", &["identity", "--name", "Grace"]));
    run("ada", &["contacts", "add", &grace, "Grace"]);
    run("grace", &["contacts", "add", &ada, "Ada"]);
    let mut child = Command::new(&hush)
        .args(["--server", &server, "--profile", "ada", "--data-dir"])
        .arg(data.path())
        .arg("listen")
        .env("HUSH_WORDS", WORDS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hush listen");
    let pid = child.id();
    let lines = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let out = BufReader::new(child.stdout.take().expect("piped"));
    let l = lines.clone();
    std::thread::spawn(move || {
        for _ in out.lines().map_while(Result::ok) {
            l.lock().unwrap().push(Instant::now());
        }
    });
    let printed = |n: usize, within: Duration| {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(at) = lines.lock().unwrap().get(n - 1) {
                return Some(*at);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    };
    // Connected and subscribed once the first message is printed.
    run("grace", &["send", &ada, "are you listening?"]);
    let ready = printed(1, Duration::from_secs(60)).is_some();
    std::thread::sleep(Duration::from_secs(2));
    let (c0, w0, t0) = (process_cpu(pid), process_wakeups(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(IDLE_SECS));
    let dt = t0.elapsed().as_secs_f64();
    let cpu = (process_cpu(pid) - c0) / dt;
    let wakeups = (process_wakeups(pid) - w0) as f64 / dt;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    // A message arriving while idle is printed at once, not at a poll.
    let sent = Instant::now();
    run("grace", &["send", &ada, "still there?"]);
    let acked = sent.elapsed();
    let arrival = printed(2, Duration::from_secs(10)).map(|at| at.duration_since(sent));
    let _ = child.kill();
    let _ = child.wait();
    Report {
        summary: format!(
            "`hush listen`, connected, {IDLE_SECS} s with nothing arriving{}: {:.2} % of a core, \
             {wakeups:.1} thread wake-ups a second over {threads} threads; a message arriving \
             while idle: {}",
            if ready {
                ""
            } else {
                " (NEVER CONNECTED: not a valid measurement)"
            },
            cpu * 100.0,
            arrival.map_or("never printed".to_owned(), |a| format!(
                "printed {:.0} ms after `hush send` started (which took {:.0} ms to its ack)",
                a.as_secs_f64() * 1000.0,
                acked.as_secs_f64() * 1000.0
            )),
        ),
        json: json!({
            "idle_secs": IDLE_SECS, "connected": ready,
            "cpu_per_s": cpu, "wakeups_per_s": wakeups, "threads": threads,
            "arrival_ms": arrival.map(|a| a.as_secs_f64() * 1000.0),
            "send_ack_ms": acked.as_secs_f64() * 1000.0,
        }),
    }
}
