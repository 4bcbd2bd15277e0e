// End to end in a real browser: the web client (served by hush-relay) in
// headless Chromium unlocks, creates its identity, adds a native client as a
// contact, and they exchange messages. Then the page is reloaded with its
// WebSocket blocked: the history and a message typed meanwhile (queued) are
// still there, and the queued message goes out once the socket is allowed.
//
// env: HUSH_E2E_URL (relay serving web/dist), HUSH_BIN (native hush),
//      HUSH_DATA (the native peer's data dir), HUSH_WORDS, HUSH_E2E_OUT (screenshots)
import { chromium } from "playwright-core";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const URL = process.env.HUSH_E2E_URL;
const BIN = process.env.HUSH_BIN;
const DATA = process.env.HUSH_DATA;
const WORDS = process.env.HUSH_WORDS;
const OUT = process.env.HUSH_E2E_OUT || "web-e2e";
mkdirSync(OUT, { recursive: true });

function fail(msg) {
  console.error("web e2e FAIL:", msg);
  process.exit(1);
}

function hush(...args) {
  const r = spawnSync(BIN, ["--server", URL, "--data-dir", DATA, "--profile", "peer", ...args], {
    encoding: "utf8",
    env: { ...process.env, HUSH_LOG: "warn" },
    timeout: 90_000,
  });
  if (r.status !== 0) fail(`hush ${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
let lines = [];
page.on("console", (m) => {
  const t = m.text();
  lines.push(t);
  if (process.env.HUSH_E2E_VERBOSE) console.log("  console:", t);
});
page.on("pageerror", (e) => console.log("  page error:", String(e).slice(0, 300)));

async function waitLine(re, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit;
    await page.waitForTimeout(100);
  }
  await page.screenshot({ path: `${OUT}/timeout.png` });
  fail(`timed out waiting for ${what ?? re}; console:\n${lines.slice(-30).join("\n")}`);
}

async function shot(name) {
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${OUT}/${name}.png` });
}

// Click on the canvas at a point, then act by keyboard.
// Enter once the typed text has been taken in.
async function enter() {
  await page.waitForTimeout(400);
  await page.keyboard.press("Enter");
  await page.waitForTimeout(300);
}

// Software-rendered frames are slow: give the click a few frames to land
// before typing, or the first keys go to the field that had focus.
async function clickAt(x, y) {
  await page.mouse.click(x, y);
  await page.waitForTimeout(600);
}

async function unlock() {
  await waitLine(/^vault locked/, 180_000, "the app to start");
  await shot("unlock");
  await clickAt(640, 169); // the words field
  await page.keyboard.type(WORDS, { delay: 5 });
  await enter();
}

const t0 = Date.now();
const peerId = JSON.parse(hush("identity", "--name", "Native Peer")).user_id;

// What the first load transfers, as the browser counts it (encoded bytes on
// the wire, after Content-Encoding), and how long until the canvas draws.
const cdp = await context.newCDPSession(page);
await cdp.send("Network.enable");
let transferred = 0;
const encodings = {};
cdp.on("Network.responseReceived", (e) => {
  const enc = e.response.headers["content-encoding"] || e.response.headers["Content-Encoding"];
  encodings[e.response.url.replace(URL, "")] = enc || "identity";
});
cdp.on("Network.loadingFinished", (e) => { transferred += e.encodedDataLength; });
const loadStarted = Date.now();
await page.goto(`${URL}/?profile=web&report=1`);
await page.waitForFunction(() => document.getElementById("hush").width > 0, null, { timeout: 120_000 });
const firstFrameMs = Date.now() - loadStarted;
console.log(`web e2e: first load transferred ${(transferred / 1e6).toFixed(2)} MB; canvas drawn after ${firstFrameMs} ms; encodings ${JSON.stringify(encodings)}`);
await unlock();
await waitLine(/^vault needs-identity/, 180_000, "the words to be accepted");
await shot("identity");
await clickAt(640, 150); // the display name field
await page.keyboard.type("Webby", { delay: 5 });
await enter();
const me = (await waitLine(/^me /, 60_000, "the identity")).split(" ")[1];
await waitLine(/^connected/, 60_000, "the connection");
hush("contacts", "add", me, "Webby");

// Add the native client as a contact.
await shot("empty-chat");
await clickAt(130, 199); // "Their UUID"
await page.keyboard.type(peerId, { delay: 5 });
await clickAt(130, 239); // "Name"
await page.keyboard.type("Native", { delay: 5 });
await enter(); // adds the contact
await waitLine(/^contacts 1/, 30_000, "the contact");
await page.waitForTimeout(1500); // the thread opens and the composer appears

// Browser → native.
await clickAt(660, 770); // the composer
await page.keyboard.type("hello from the browser", { delay: 5 });
await enter();
await waitLine(/^shown 1/, 60_000, "the sent message");
const got = JSON.parse(hush("listen", "--count", "1", "--timeout", "60").trim().split("\n")[0]);
if (got.content !== "hello from the browser" || got.sender_id !== me || got.sender_name !== "Webby")
  fail(`native peer got ${JSON.stringify(got)}`);

// Native → browser.
hush("send", me, "hello browser, from native");
await waitLine(/^shown 2/, 60_000, "the native message in the page");
await shot("chat");

// Reload with the WebSocket blocked: history from IndexedDB, and a queued message.
let blocked = true;
await page.routeWebSocket(/\/ws/, (ws) => {
  if (blocked) ws.close({ code: 4999, reason: "blocked by the test" });
  else ws.connectToServer(); // passes frames through both ways
});
lines = [];
await page.reload();
await unlock();
await waitLine(/^vault unlocked/, 180_000, "the unlock after reload");
await waitLine(/^shown 2/, 30_000, "the history after reload");
await page.waitForTimeout(1000);
await clickAt(660, 733); // the composer, above the reconnecting banner
await page.keyboard.type("typed while the socket was blocked", { delay: 5 });
await enter();
await waitLine(/^pending 1/, 30_000, "the queued message");
await shot("queued");
lines = [];
await page.reload();
await unlock();
await waitLine(/^vault unlocked/, 180_000, "the second unlock after reload");
await waitLine(/^shown 2/, 30_000, "the history after the second reload");
await waitLine(/^pending 1/, 30_000, "the queued message after reload");
await shot("queued-after-reload");

// Let the socket through: the queued message goes out.
blocked = false;
await waitLine(/^pending 0/, 120_000, "the queued message to go out");
const late = JSON.parse(hush("listen", "--count", "1", "--timeout", "60").trim().split("\n")[0]);
if (late.content !== "typed while the socket was blocked") fail(`native peer got ${JSON.stringify(late)}`);
await waitLine(/^shown 3/, 30_000, "the delivered message in the page");
await shot("final");
await browser.close();
console.log(`web e2e ok in ${((Date.now() - t0) / 1000).toFixed(0)} s: unlock, identity, contact, both directions, history and outbox across reloads`);
