//! hush: until the client lands, `hush` runs the relay (same options as `hush-relay`).

fn main() {
    hush_relay::cli::run(std::env::args_os());
}
