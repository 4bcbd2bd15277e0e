#!/usr/bin/env bash
# Builds the browser client into web/dist: the wasm32 release build with the
# size-optimised profile, wasm-bindgen (the CLI must match the lockfile's
# wasm-bindgen exactly; installed under $HUSH_TOOLS if missing), wasm-opt -Oz
# when one is available, content-hashed names, index.html, and gzip and
# brotli copies of each. Prints the .wasm size raw, gzipped and brotli.
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
# Content-hashed names, which browsers may cache for good; index.html (never
# cached) names them.
wasm_hash=$(sha256sum web/dist/hush_bg.wasm | cut -c1-16)
wasm="hush_bg-$wasm_hash.wasm"
mv web/dist/hush_bg.wasm "web/dist/$wasm"
grep -q "'hush_bg.wasm'" web/dist/hush.js || { echo "web/build.sh: hush.js does not name hush_bg.wasm" >&2; exit 1; }
sed -i "s/'hush_bg\.wasm'/'$wasm'/" web/dist/hush.js
js="hush-$(sha256sum web/dist/hush.js | cut -c1-16).js"
mv web/dist/hush.js "web/dist/$js"
cp web/index.html web/dist/index.html
sed "s#\./hush\.js#./$js#" web/boot.js > web/dist/boot.js
grep -q "./$js" web/dist/boot.js || { echo "web/build.sh: boot.js does not import hush.js" >&2; exit 1; }
# Precompressed copies: hush-relay sends the smallest one the browser takes.
for f in "web/dist/$wasm" "web/dist/$js" web/dist/index.html web/dist/boot.js; do
  gzip -9 -k -f "$f"
  if command -v brotli >/dev/null; then brotli -q 11 -k -f "$f"; fi
done
command -v brotli >/dev/null || echo "== brotli not found: only gzip copies (apt-get install brotli)"
raw=$(stat -c %s "web/dist/$wasm")
gz=$(stat -c %s "web/dist/$wasm.gz")
br=$( [ -f "web/dist/$wasm.br" ] && stat -c %s "web/dist/$wasm.br" || echo "-")
echo "web/dist/$wasm: $raw bytes raw, $gz gzipped, $br brotli"
