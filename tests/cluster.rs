//! Three relay nodes (`hush relay` processes) on one real PostgreSQL, six
//! headless clients spread over them, each knowing all three URLs. They send
//! 3 000 messages in crossing threads (every pair of clients has one) while
//! one node is SIGKILLed and a second one restarted, at seeded random moments
//! (`HUSH_CLUSTER_SEED` replays a run). Afterwards every message is in both
//! its sender's and its recipient's store exactly once, and each sender's
//! messages are in the order it sent them.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::seeded;
use hush_chat::SendIntent;
use hush_chat::headless::Client;
use hush_core::ThreadId;
use hush_testkit::WORDS;
use hush_testkit::pg::TempDatabase;
use uuid::Uuid;
use zeroize::Zeroizing;

const CLIENTS: usize = 6;
const NODES: usize = 3;
const PER_CLIENT: usize = 500;
/// Between one client's sends: the six together send about 600 a second.
const PACE: Duration = Duration::from_millis(10);
const DEADLINE: Duration = Duration::from_secs(240);

/// One relay node: a `hush relay` process on a port of its own.
struct Node {
    port: u16,
    db: String,
    child: Option<Child>,
    /// Its stderr (the last start's).
    log: std::path::PathBuf,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let mut last = String::new();
        // After a stop the port may take a moment to be free.
        for _ in 0..50 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_hush"))
                .args(["relay", "--no-rate-limit", "--listen"])
                .arg(format!("127.0.0.1:{}", self.port))
                .args(["--database-url", &self.db])
                .env("HUSH_WORDS", WORDS)
                .env_remove("HUSH_LOG")
                .stdout(Stdio::piped())
                // A file, not a pipe nobody reads: a chatty node must not block.
                .stderr(std::fs::File::create(&self.log).unwrap())
                .spawn()
                .expect("hush relay starts");
            let mut line = String::new();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let _ = out.read_line(&mut line);
            if line.starts_with("listening on") {
                // Its stdout stays drained, so it never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            last = std::fs::read_to_string(&self.log).unwrap_or_default();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node on port {} did not start: {last}", self.port);
    }

    fn signal(&mut self, sig: i32) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

fn free_ports() -> Vec<u16> {
    let held: Vec<_> = (0..NODES)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// What a client found in its store at the end.
struct Report {
    /// Per thread (by peer index): messages in store order, as (sender
    /// index, sequence number) read back from the decrypted text.
    threads: BTreeMap<usize, Vec<(usize, usize)>>,
    duplicate_ids: usize,
    undecryptable: usize,
    /// The node it was connected to at the end, and how many sockets it opened.
    server: String,
    opened: u64,
}

/// One client's life: unlock, learn the others, send its share, stay until
/// every thread holds all its messages (or the deadline), then read back.
fn client(
    me: usize,
    servers: String,
    data: &Path,
    ids: (
        crossbeam_channel::Sender<(usize, Uuid)>,
        crossbeam_channel::Receiver<Vec<Uuid>>,
    ),
    go: &std::sync::Barrier,
    sent: &AtomicUsize,
) -> Report {
    let store = hush::headless::open_profile(data, &format!("c{me}")).unwrap();
    let mut c = Client::new(&servers, store.clone(), None).unwrap();
    c.unlock_as(&Zeroizing::new(WORDS.to_owned()), &format!("c{me}"))
        .unwrap();
    ids.0.send((me, c.user_id())).unwrap();
    let all = ids.1.recv().unwrap();
    let peers: Vec<(usize, Uuid)> = all
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .collect();
    for (i, p) in &peers {
        c.add_contact(&p.to_string(), &format!("c{i}")).unwrap();
    }
    for (_, p) in &peers {
        assert!(c.wait_thread(*p), "c{me}: no thread with {p}");
    }
    let threads: Vec<(usize, ThreadId)> = peers
        .iter()
        .map(|(i, p)| (*i, ThreadId::for_pair(&c.user_id(), p)))
        .collect();
    go.wait();
    let start = Instant::now();
    let mut next = 0;
    let mut next_look = start;
    let expected = (2 * PER_CLIENT / peers.len()) as u64;
    loop {
        let now = Instant::now();
        while next < PER_CLIENT && now >= start + PACE * next as u32 {
            // Round robin over the peers: message `next` goes to peer next % 5.
            let (_, to) = peers[next % peers.len()];
            c.app.world_mut().write_message(SendIntent {
                to,
                text: format!("{me} {next}"),
            });
            next += 1;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        c.step_for(Duration::from_millis(5));
        if next == PER_CLIENT && now >= next_look {
            next_look = now + Duration::from_millis(200);
            let full = threads
                .iter()
                .all(|(_, t)| store.message_count(*t).unwrap() >= expected);
            if full || now >= start + DEADLINE {
                break;
            }
        }
    }
    // A little longer: a duplicate arriving late would show.
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        c.step_for(Duration::from_millis(20));
    }
    let w = c.app.world();
    let mut report = Report {
        threads: BTreeMap::new(),
        duplicate_ids: 0,
        undecryptable: 0,
        server: w.resource::<hush_net::NetConfig>().server.to_string(),
        opened: w.resource::<hush_net::Connection>().stats.opened,
    };
    for ((i, peer), (_, t)) in peers.iter().zip(&threads) {
        let key = c.vault().thread_key(peer).unwrap();
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        for m in store.messages(*t, None, 100_000).unwrap() {
            if !seen.insert(m.id.clone()) {
                report.duplicate_ids += 1;
            }
            let m = hush_chat::ChatMessage::decrypt(&key, &m, c.user_id());
            let parsed = m
                .content
                .split_once(' ')
                .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
            match parsed {
                Some(p) => order.push(p),
                None => report.undecryptable += 1,
            }
        }
        report.threads.insert(*i, order);
    }
    report
}

#[test]
#[ignore = "needs PostgreSQL: set HUSH_TEST_DATABASE_URL and run with --ignored (scripts/test does)"]
fn three_nodes_one_killed_one_restarted_every_message_once_in_order() {
    let admin = std::env::var("HUSH_TEST_DATABASE_URL")
        .expect("HUSH_TEST_DATABASE_URL must name a PostgreSQL database for this test");
    let db = TempDatabase::create(&admin, "hush_cluster");
    let logs = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = free_ports()
        .into_iter()
        .map(|port| Node {
            port,
            db: db.url.clone(),
            child: None,
            log: logs.path().join(format!("node-{port}.log")),
        })
        .collect();
    // One after the other: the first makes the schema and the vault.
    for n in &mut nodes {
        n.start();
    }
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    let mut rng = seeded("HUSH_CLUSTER_SEED", 0x005e_edc1_u64);
    let victim = (rng() % NODES as u64) as usize;
    let restarted = (victim + 1 + (rng() % 2) as usize) % NODES;
    let total = CLIENTS * PER_CLIENT;
    // The kill between a tenth and a half of the sends, the restart later.
    let kill_at = total / 10 + (rng() % (total as u64 * 4 / 10)) as usize;
    let restart_at = kill_at + total / 10 + (rng() % (total as u64 / 4)) as usize;
    eprintln!(
        "cluster: SIGKILL node {victim} after {kill_at} sends, restart node {restarted} after \
         {restart_at}"
    );

    let data = tempfile::tempdir().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(std::sync::Barrier::new(CLIENTS + 1));
    let (id_tx, id_rx) = crossbeam_channel::unbounded();
    let mut lists = Vec::new();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|me| {
            // Spread over the nodes: each client's list starts at another one.
            let servers: Vec<&str> = (0..NODES)
                .map(|k| urls[(me + k) % NODES].as_str())
                .collect();
            let servers = servers.join(",");
            let (list_tx, list_rx) = crossbeam_channel::bounded(1);
            lists.push(list_tx);
            let (id_tx, data, go, sent) = (
                id_tx.clone(),
                data.path().to_owned(),
                go.clone(),
                sent.clone(),
            );
            std::thread::spawn(move || client(me, servers, &data, (id_tx, list_rx), &go, &sent))
        })
        .collect();
    let mut ids = vec![Uuid::nil(); CLIENTS];
    for _ in 0..CLIENTS {
        let (i, id) = id_rx.recv_timeout(Duration::from_secs(120)).unwrap();
        ids[i] = id;
    }
    for l in &lists {
        l.send(ids.clone()).unwrap();
    }
    go.wait();
    let wait_for = |n: usize| {
        let end = Instant::now() + DEADLINE;
        while sent.load(Ordering::Relaxed) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait_for(kill_at);
    nodes[victim].signal(libc::SIGKILL);
    let killed = Instant::now();
    wait_for(restart_at);
    nodes[restarted].signal(libc::SIGTERM);
    nodes[restarted].start();
    eprintln!(
        "cluster: node {restarted} back {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );

    let reports: Vec<Report> = handles
        .into_iter()
        .map(|h| h.join().expect("a client thread"))
        .collect();
    let mut problems = Vec::new();
    let moved = reports.iter().filter(|r| r.opened > 1).count();
    eprintln!("cluster: {moved} clients reconnected");
    for (me, r) in reports.iter().enumerate() {
        // The dead node's clients (and the restarted one's) went elsewhere.
        if r.server == urls[victim] {
            problems.push(format!("c{me} is still on the killed node"));
        }
        if me % NODES == victim && r.opened < 2 {
            problems.push(format!(
                "c{me} started on the killed node but never reconnected"
            ));
        }
        if r.duplicate_ids > 0 || r.undecryptable > 0 {
            problems.push(format!(
                "c{me}: {} duplicate ids, {} unreadable",
                r.duplicate_ids, r.undecryptable
            ));
        }
        for (&peer, order) in &r.threads {
            for sender in [me, peer] {
                let got: Vec<usize> = order
                    .iter()
                    .filter(|(s, _)| *s == sender)
                    .map(|(_, n)| *n)
                    .collect();
                // What `sender` sent into this thread, in sending order.
                let other = if sender == me { peer } else { me };
                let rank = |i: usize| if i < sender { i } else { i - 1 };
                let want: Vec<usize> = (0..PER_CLIENT)
                    .filter(|n| n % (CLIENTS - 1) == rank(other))
                    .collect();
                if got != want {
                    let dup = got.len() - got.iter().collect::<HashSet<_>>().len();
                    let missing = want.iter().filter(|n| !got.contains(n)).count();
                    let sorted = got.windows(2).all(|w| w[0] < w[1]);
                    problems.push(format!(
                        "c{me}'s thread with c{peer}, from c{sender}: {} of {} ({missing} \
                         missing, {dup} twice, in order: {sorted})",
                        got.len(),
                        want.len()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "seed {:?}:\n{}",
        std::env::var("HUSH_CLUSTER_SEED").ok(),
        problems.join("\n")
    );
    drop(nodes);
    drop(db);
}
