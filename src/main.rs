//! hush: the windowed client, its headless commands, and (`hush relay`) the
//! server; in a browser, the client alone.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(hush::cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {
    hush::web::start();
}
