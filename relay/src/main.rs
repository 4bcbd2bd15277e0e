//! `hush-relay`: run a hush server.

fn main() {
    hush_relay::cli::run(std::env::args_os());
}
