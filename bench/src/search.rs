//! `search`: finding in a 100 000-message conversation (issue 17). The
//! profile is opened offline in this process; the first search reads and
//! decrypts the thread into the in-memory index (a step at a time, as the
//! window does between frames), then each further query is one update.
//!
//! The same-run baseline is a search without an index: the whole thread
//! read and decrypted for every query.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hush_chat::headless::Client;
use hush_chat::{ChatMessage, Find, FindInThread, ProfileStore, Vault};
use hush_store::{RedbStore, Store};
use serde_json::json;

use crate::scenarios::{Report, memory_setup, percentile, words};

pub fn search(n: usize) -> Report {
    let dir = tempfile::tempdir().unwrap();
    memory_setup(dir.path(), n);
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("m.redb")).unwrap());
    let rec = store.threads().unwrap()[0].clone();
    let mut c = Client::new("http://127.0.0.1:9", store.clone(), None).unwrap();
    c.unlock(&words()).expect("offline unlock");
    let t = rec.id;
    let find = |c: &Client| c.app.world().resource::<Find>().clone();
    let ask = |c: &mut Client, q: &str| {
        c.app.world_mut().write_message(FindInThread {
            thread: t,
            query: q.into(),
        })
    };
    // The first search: the index is built, a step per update.
    let s = Instant::now();
    ask(&mut c, "number 99999");
    let mut steps = 0;
    let mut longest = Duration::ZERO;
    while !find(&c).complete {
        assert!(s.elapsed() < Duration::from_secs(300), "never indexed");
        let u = Instant::now();
        c.app.update();
        longest = longest.max(u.elapsed());
        steps += 1;
    }
    let first = s.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(find(&c).searched, n);
    // Further queries: one update each, median of 7.
    let mut per_query = Vec::new();
    for q in ["number 5", "zzz", "number 12345", "TYPICAL"] {
        let mut times: Vec<f64> = (0..7)
            .map(|i| {
                // Alternate queries so each one is new to the index.
                ask(&mut c, if i % 2 == 0 { q } else { "x" });
                let u = Instant::now();
                c.app.update();
                u.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ask(&mut c, q);
        c.app.update();
        let hits = find(&c).hits.len();
        times.sort_by(f64::total_cmp);
        per_query.push((q, percentile(&times, 0.5), hits));
    }
    // The baseline: read and decrypt the whole thread, then match (median of 3).
    let vault = c.app.world().resource::<Vault>();
    let key = vault.thread_key(&rec.peer).unwrap();
    let me = vault.my_id().unwrap();
    let ps = ProfileStore(store.clone());
    let mut naive: Vec<f64> = (0..3)
        .map(|_| {
            let s = Instant::now();
            let all = ps.messages(t, None, usize::MAX).unwrap();
            let hits = all
                .iter()
                .map(|m| ChatMessage::decrypt(&key, m, me))
                .filter(|m| m.content.to_lowercase().contains("number 5"))
                .count();
            assert!(hits > 0);
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    naive.sort_by(f64::total_cmp);
    let naive = percentile(&naive, 0.5);
    let worst_query = per_query.iter().map(|q| q.1).fold(0.0, f64::max);
    let longest_ms = longest.as_secs_f64() * 1000.0;
    Report {
        summary: format!(
            "find in a {n}-message thread: first search {first:.0} ms ({steps} steps, the longest \
             {longest_ms:.1} ms), then each query ≤ {worst_query:.1} ms ({}); without an index \
             every query {naive:.0} ms ({:.0}× slower)",
            per_query
                .iter()
                .map(|(q, ms, hits)| format!("{q:?} {ms:.1} ms, {hits} hits"))
                .collect::<Vec<_>>()
                .join("; "),
            naive / worst_query.max(0.001)
        ),
        json: json!({
            "messages": n,
            "first_search_ms": first,
            "index_steps": steps,
            "longest_step_ms": longest_ms,
            "queries": per_query.iter().map(|(q, ms, hits)| json!({"query": q, "ms": ms, "hits": hits})).collect::<Vec<_>>(),
            "no_index_ms": naive,
        }),
    }
}
