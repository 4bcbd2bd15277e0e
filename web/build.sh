#!/usr/bin/env bash
# Builds the browser client into web/dist: the wasm32 release build with the
# size-optimised profile, wasm-bindgen (the CLI must match the lockfile's
# wasm-bindgen exactly; installed under $HUSH_TOOLS if missing), wasm-opt -Oz
# when one is available, and index.html. Prints the .wasm size raw and gzipped.
#
#   web/build.sh            then: hush-relay --web-dir web/dist (or hush relay)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
tools="${HUSH_TOOLS:-$HOME/.cache/hush/tools}"
export PATH="$tools/bin:$PATH"
version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$version" ]; then
  echo "== installing wasm-bindgen-cli $version into $tools (one-off, a few minutes)"
  # --locked fails here: a pinned dependency is missing from the registry.
  cargo install wasm-bindgen-cli --version "$version" --root "$tools"
fi
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
echo "== cargo build --target wasm32-unknown-unknown --profile wasm-release"
cargo build --locked -p hush --bin hush --target wasm32-unknown-unknown --profile wasm-release
rm -rf web/dist && mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist --out-name hush \
  "$target/wasm32-unknown-unknown/wasm-release/hush.wasm"
if command -v wasm-opt >/dev/null; then
  echo "== wasm-opt -Oz"
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals -o web/dist/hush_bg.wasm.opt web/dist/hush_bg.wasm
  mv web/dist/hush_bg.wasm.opt web/dist/hush_bg.wasm
else
  echo "== wasm-opt not found: skipped (npm install binaryen for a smaller bundle)"
fi
cp web/index.html web/dist/
raw=$(stat -c %s web/dist/hush_bg.wasm)
gz=$(gzip -9 -c web/dist/hush_bg.wasm | wc -c)
echo "web/dist/hush_bg.wasm: $raw bytes raw, $gz bytes gzipped"
