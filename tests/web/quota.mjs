// A full disk under the browser, end to end: Chromium's profile (and so
// IndexedDB) lives on a tmpfs of a few MB in a private mount namespace. The
// page chats with a native client; then the disk is filled. A message typed
// and one received while it is full must still go out and come in, the page
// must say its storage is failing, and once there is room again the writes
// it held must reach IndexedDB: a reload with the network blocked (so
// nothing can be fetched again) still shows all of them.
//
import { chromium } from "playwright-core";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { URL, OUT, CHROMIUM_ARGS, fail, hush, peerReads, driver, testName } from "./driver.mjs";

testName("web quota");
const DISK_MB = 48;

// The tiny disk: Chromium runs in a private mount namespace where a tmpfs
// is mounted over `mountpoint` (tests/web/chromium-on-tiny-disk), with its
// profile there. This process reaches the tmpfs through the browser's
// /proc/PID/root (as hush_testkit::TinyDisk does for the native tests).
const mountpoint = mkdtempSync(join(tmpdir(), "hush-quota-"));
const profile = join(mountpoint, "profile");
let disk;
function findDisk() {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let cmd = "";
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8"); } catch { continue; }
    const args = cmd.split("\0");
    if (args.includes(`--user-data-dir=${profile}`) && !args.some((a) => a.startsWith("--type="))) {
      return `/proc/${pid}/root${mountpoint}`;
    }
  }
  fail("the browser on the tiny disk was not found");
}
// Fills the disk until it refuses a write; returns the bytes written.
function fill() {
  const fd = openSync(join(disk, "filler"), "a");
  let n = 0;
  for (const size of [1 << 20, 4096]) {
    const chunk = Buffer.alloc(size);
    for (;;) {
      try {
        n += writeSync(fd, chunk);
      } catch (e) {
        if (e.code === "ENOSPC") break;
        throw e;
      }
    }
  }
  closeSync(fd);
  return n;
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: new globalThis.URL("chromium-on-tiny-disk", import.meta.url).pathname,
  env: { ...process.env, HUSH_DISK: mountpoint, HUSH_DISK_MB: String(DISK_MB) },
  headless: true,
  viewport: { width: 1280, height: 800 },
  // The wrapper execs CHROMIUM with these.
  args: CHROMIUM_ARGS,
});
disk = findDisk();
if (!statfsSync(disk) || statfsSync(disk).blocks * statfsSync(disk).bsize > DISK_MB * 1.1e6)
  fail(`the browser's profile is not on the ${DISK_MB} MB disk`);
const page = context.pages()[0] ?? (await context.newPage());
let lines = [];
page.on("console", (m) => {
  lines.push(m.text());
  if (process.env.HUSH_E2E_VERBOSE) console.log("  console:", m.text());
});
page.on("pageerror", (e) => console.log("  page error:", String(e).slice(0, 300)));
page.on("crash", () => fail("the page crashed"));

const { waitLine, enter, clickField, unlock, missedClicks } = driver(() => ({ page, lines }));

async function say(text) {
  await clickField(660, 770, "the composer");
  await page.keyboard.type(text, { delay: 5 });
  await enter();
}

const peerId = JSON.parse(hush("identity", "--name", "Native Peer")).user_id;
await page.goto(`${URL}/?profile=quota&report=1`);
await unlock();
await waitLine(/^vault needs-identity/, 180_000, "the words to be accepted");
await clickField(640, 150, "the display name field");
await page.keyboard.type("Webby", { delay: 5 });
await enter();
const me = (await waitLine(/^me /, 60_000, "the identity")).split(" ")[1];
await waitLine(/^connected/, 60_000, "the connection");
hush("contacts", "add", me, "Webby");
await clickField(130, 199, "Their UUID");
await page.keyboard.type(peerId, { delay: 5 });
await clickField(130, 239, "Name");
await page.keyboard.type("Native", { delay: 5 });
await enter();
await waitLine(/^contacts 1/, 30_000, "the contact");
await page.waitForTimeout(1500);
await say("before the disk filled");
await waitLine(/^shown 1/, 60_000, "the first message");
if (peerReads(1)[0].content !== "before the disk filled") fail("the native peer did not get the first message");

// The disk fills up under the browser.
const filled = fill();
console.log(`web quota: filled the ${DISK_MB} MB disk with ${(filled / 1e6).toFixed(1)} MB`);
await say("typed on a full disk");
hush("send", me, "received on a full disk");
await waitLine(/^shown 3/, 60_000, "both messages in the page while the disk is full");
const refused = await waitLine(/IndexedDB write failed/, 60_000, "IndexedDB to refuse a write");
console.log(`web quota: the page said: ${refused}`);
await page.waitForTimeout(1000);
await page.screenshot({ path: `${OUT}/quota-full.png` });
const got = peerReads(1)[0];
if (got.content !== "typed on a full disk") fail(`the native peer got ${JSON.stringify(got)} while the disk was full`);

// Room again: the held writes are made.
rmSync(join(disk, "filler"));
await waitLine(/IndexedDB writes resumed/, 60_000, "the held writes to be made");
await page.waitForTimeout(800);
await page.screenshot({ path: `${OUT}/quota-resumed.png` });

// A reload with the network blocked: what shows comes from IndexedDB alone.
await page.route(/\/api\/messages/, (r) => r.abort());
await page.routeWebSocket(/\/ws/, (ws) => ws.close({ code: 4999, reason: "blocked by the test" }));
lines = [];
await page.reload();
await unlock();
await waitLine(/^vault unlocked/, 180_000, "the unlock after reload");
await waitLine(/^shown 3/, 30_000, "all three messages from IndexedDB after the reload");
await page.waitForTimeout(1500);
await page.screenshot({ path: `${OUT}/quota-reloaded.png` });
console.log("web quota: a message sent and one received while the disk was full were kept; after room was made both were in IndexedDB");
console.log(`web quota: clicks on a text field made again because the first did not focus it: ${missedClicks()}`);
await context.close();
rmSync(mountpoint, { recursive: true, force: true });
