// What the browser tests share: their settings from the environment, the
// native peer (`hush` on the command line), and driving the page the way a
// person does: wait for a line the app reports, click a field, type, Enter.
//
// env: HUSH_E2E_URL (relay serving web/dist), HUSH_BIN (native hush),
//      HUSH_DATA (the native peer's data dir), HUSH_WORDS, HUSH_E2E_OUT (screenshots)
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

export const URL = process.env.HUSH_E2E_URL;
export const BIN = process.env.HUSH_BIN;
export const DATA = process.env.HUSH_DATA;
export const WORDS = process.env.HUSH_WORDS;
export const OUT = process.env.HUSH_E2E_OUT || "web-e2e";
mkdirSync(OUT, { recursive: true });

/// How the tests start Debian's Chromium: headless, software GL, nothing
/// fetched in the background.
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let name = "web test";
/// Names the test in its failure lines.
export function testName(n) {
  name = n;
}

export function fail(msg) {
  console.error(`${name} FAIL:`, msg);
  process.exit(1);
}

/// Runs the native peer's `hush` (profile "peer") and returns what it printed.
export function hush(...args) {
  const r = spawnSync(BIN, ["--server", URL, "--data-dir", DATA, "--profile", "peer", ...args], {
    encoding: "utf8",
    env: { ...process.env, HUSH_LOG: "warn" },
    timeout: 90_000,
  });
  if (r.status !== 0) fail(`hush ${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/// The next `count` messages the native peer receives, as JSON.
export function peerReads(count) {
  return hush("listen", "--count", String(count), "--timeout", "60")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/// Helpers that drive whichever page `current()` returns ({ page, lines },
/// where `lines` is that page's console so far).
export function driver(current) {
  let missedClicks = 0;

  async function waitLine(re, ms, what) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const hit = current().lines.find((l) => re.test(l));
      if (hit) return hit;
      await current().page.waitForTimeout(100);
    }
    await current().page.screenshot({ path: `${OUT}/timeout.png` }).catch(() => {});
    fail(`timed out waiting for ${what ?? re}; console:\n${current().lines.slice(-30).join("\n")}`);
  }

  async function shot(file) {
    await current().page.waitForTimeout(800);
    await current().page.screenshot({ path: `${OUT}/${file}.png` });
  }

  // Enter once the typed text has been taken in.
  async function enter() {
    const { page } = current();
    await page.waitForTimeout(400);
    await page.keyboard.press("Enter");
    await page.waitForTimeout(300);
  }

  // Software-rendered frames are slow: give the click a few frames to land.
  async function clickAt(x, y) {
    await current().page.mouse.click(x, y);
    await current().page.waitForTimeout(600);
  }

  // A click on a text field, made sure of: egui gives the page's text agent
  // the focus once it edits text, and puts it at the text cursor, so that is
  // waited for (at the clicked height), and the click made again if it did
  // not land. egui hit-tests against the layout of the frame before, and an
  // auto-sized panel is not clickable in its first frame: a click in the
  // first frames of a new screen or a tab just brought to the front (slow
  // under software GL) can miss, and keys typed then go nowhere. Each miss
  // is counted and printed.
  async function clickField(x, y, what) {
    const { page } = current();
    for (let attempt = 1; attempt <= 4; attempt++) {
      await page.mouse.click(x, y);
      const end = Date.now() + 1500;
      while (Date.now() < end) {
        const focused = await page.evaluate((y) => {
          const a = document.activeElement;
          return a?.id === "hush-text-agent" && Math.abs(parseFloat(a.style.top) - y) <= 36;
        }, y);
        if (focused) {
          await page.waitForTimeout(300);
          return;
        }
        await page.waitForTimeout(50);
      }
      missedClicks++;
      console.log(`  the click on ${what} did not focus it (attempt ${attempt}); clicking again`);
    }
    await page.screenshot({ path: `${OUT}/missed-click.png` });
    fail(`a click on ${what} never focused it`);
  }

  async function unlock() {
    await waitLine(/^vault locked/, 180_000, "the app to start");
    await shot("unlock");
    await clickField(640, 169, "the words field");
    await current().page.keyboard.type(WORDS, { delay: 5 });
    await enter();
  }

  return { waitLine, shot, enter, clickAt, clickField, unlock, missedClicks: () => missedClicks };
}
