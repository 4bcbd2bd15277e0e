// Starts the wasm client (web/index.html loads this; web/build.sh names
// the content-hashed hush.js here).
import init from "./hush.js";
// The vault key is derived in this worker, so the page keeps drawing
// (plugins/hush_net/src/kdf.rs); web/build.sh names the hashed file here.
globalThis.hushKdfWorker = new URL("./kdf-worker.js", import.meta.url).href;
// Fonts fetched only when a text needs them (src/web_fonts.rs); web/build.sh
// lists the ones it could copy here.
globalThis.hushFonts = { /* fonts */ };
const status = document.getElementById("status");
init().then(() => {}, (e) => {
  // Bevy's web loop returns control by throwing; only real failures show.
  if (!String(e).includes("Using exceptions for control flow")) {
    status.textContent = "hush failed to start: " + e;
    console.error(e);
  }
});
// The app clears the text once it draws.
const seen = setInterval(() => {
  if (document.getElementById("hush").width > 0) { status.textContent = ""; clearInterval(seen); }
}, 200);
