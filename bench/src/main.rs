//! hush-bench: the benchmark harness (issue 7). Each scenario prints one
//! summary line (and a JSON object with `--json`), side by side with a
//! baseline measured in the same run where one makes sense.
//!
//!   cargo run --release -p hush-bench -- [all|inbound|latency|recovery|memory|history|catchup|frame|startup|idle|idle-listen|relay-conns|search|bundle]... [--json]
//!
//! Everything runs on loopback against a real hush-relay (rate limits off),
//! with real redb stores in temp dirs.

#[cfg(not(target_arch = "wasm32"))]
mod catchup;
#[cfg(not(target_arch = "wasm32"))]
mod cluster;
#[cfg(not(target_arch = "wasm32"))]
mod cpu;
#[cfg(not(target_arch = "wasm32"))]
mod fanout_engines;
#[cfg(not(target_arch = "wasm32"))]
mod history;
#[cfg(not(target_arch = "wasm32"))]
mod idle;
#[cfg(not(target_arch = "wasm32"))]
mod relay_conns;
#[cfg(not(target_arch = "wasm32"))]
mod scenarios;
#[cfg(not(target_arch = "wasm32"))]
mod search;
#[cfg(not(target_arch = "wasm32"))]
mod slow_disk;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    scenarios::main();
}

#[cfg(target_arch = "wasm32")]
fn main() {}
