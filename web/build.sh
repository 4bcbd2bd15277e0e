#!/usr/bin/env bash
# Builds the browser client into web/dist: the wasm32 release build with the
# size-optimised profile, wasm-bindgen (the CLI must match the lockfile's
# wasm-bindgen exactly; installed under $HUSH_TOOLS if missing), the key
# derivation's worker module (web/kdf), content-hashed names, index.html,
# and gzip and brotli copies of each. Prints the .wasm size raw, gzipped and brotli.
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
# The key derivation's own small module, for its Web Worker (web/kdf).
cargo build --locked -p hush_kdf_web --lib --target wasm32-unknown-unknown --profile wasm-release
rm -rf web/dist && mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist --out-name hush \
  "$target/wasm32-unknown-unknown/wasm-release/hush.wasm"
wasm-bindgen --target web --no-typescript --out-dir web/dist --out-name hush_kdf \
  "$target/wasm32-unknown-unknown/wasm-release/hush_kdf_web.wasm"
# No wasm-opt: Debian's binaryen 108 breaks wasm-bindgen's externref table
# (the page fails at start), npm's binaryen 132 (JavaScript) had not
# finished after 20 minutes, and -Oz saved 13 % of the raw module but
# nothing once brotli-compressed (3.32 MB either way), which is what a
# browser downloads (BENCHMARKS.md).
# Content-hashed names, which browsers may cache for good; index.html (never
# cached) names them. hashed FILE: renames FILE with its content's hash.
hashed() {
  local f=$1 stem ext
  stem="${f%.*}"; ext="${f##*.}"
  local name
  name="$(basename "$stem")-$(sha256sum "web/dist/$f" | cut -c1-16).$ext"
  mv "web/dist/$f" "web/dist/$name"
  echo "$name"
}
# refer FILE OLD NEW: FILE must name OLD; it names NEW instead.
refer() {
  grep -qF "$2" "$1" || { echo "web/build.sh: $1 does not name $2" >&2; exit 1; }
  sed -i "s#$2#$3#" "$1"
}
wasm=$(hashed hush_bg.wasm)
refer web/dist/hush.js "'hush_bg.wasm'" "'$wasm'"
js=$(hashed hush.js)
kdf_wasm=$(hashed hush_kdf_bg.wasm)
refer web/dist/hush_kdf.js "'hush_kdf_bg.wasm'" "'$kdf_wasm'"
kdf_js=$(hashed hush_kdf.js)
cp web/kdf-worker.js web/dist/kdf-worker.js
refer web/dist/kdf-worker.js "./hush_kdf.js" "./$kdf_js"
worker=$(hashed kdf-worker.js)
# Fallback fonts, fetched by the page only when a text needs one: the build
# machine's CJK and symbol fonts where it has them (Debian: fonts-wqy-microhei,
# fonts-symbola).
fonts=""
fallbacks=()
for pair in cjk:/usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
    symbols:/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf; do
  kind=${pair%%:*}; src=${pair#*:}
  if [ -f "$src" ]; then
    cp "$src" "web/dist/fallback-$kind.${src##*.}"
    f=$(hashed "fallback-$kind.${src##*.}")
    fallbacks+=("web/dist/$f")
    fonts+="$kind: new URL(\"./$f\", import.meta.url).href, "
  else
    echo "== no $kind fallback font ($src): such text shows as boxes in the browser"
  fi
done
cp web/index.html web/dist/index.html
cp web/boot.js web/dist/boot.js
refer web/dist/boot.js "./hush.js" "./$js"
refer web/dist/boot.js "./kdf-worker.js" "./$worker"
grep -qF "/* fonts */" web/dist/boot.js || { echo "web/build.sh: boot.js has no font list" >&2; exit 1; }
sed -i "s#/\* fonts \*/#$fonts#" web/dist/boot.js
# Precompressed copies: hush-relay sends the smallest one the browser takes.
for f in "web/dist/$wasm" "web/dist/$js" "web/dist/$kdf_wasm" "web/dist/$kdf_js" "web/dist/$worker" \
    web/dist/index.html web/dist/boot.js "${fallbacks[@]}"; do
  gzip -9 -k -f "$f"
  if command -v brotli >/dev/null; then brotli -q 11 -k -f "$f"; fi
done
command -v brotli >/dev/null || echo "== brotli not found: only gzip copies (apt-get install brotli)"
raw=$(stat -c %s "web/dist/$wasm")
gz=$(stat -c %s "web/dist/$wasm.gz")
br=$( [ -f "web/dist/$wasm.br" ] && stat -c %s "web/dist/$wasm.br" || echo "-")
echo "web/dist/$wasm: $raw bytes raw, $gz gzipped, $br brotli"
echo "web/dist/$kdf_wasm (the key-derivation worker's): $(stat -c %s "web/dist/$kdf_wasm") bytes raw"
