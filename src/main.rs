//! hush: the windowed client, its headless commands, and (`hush relay`) the server.

fn main() {
    std::process::exit(hush::cli::main());
}
