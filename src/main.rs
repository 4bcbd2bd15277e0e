//! hush: the client (headless commands for now; the window lands next) and,
//! with `hush relay`, the server.

fn main() {
    std::process::exit(hush::cli::main());
}
