#!/usr/bin/env python3
"""Interop: the independent reference client (shared/tools/hushref.py, which
behaves like the stock hush web client) against a real hush-relay process.

Usage: relay_interop.py PATH/TO/hush-relay PATH/TO/hushref.py
Exits non-zero on the first mismatch, printing what differed.
"""
import json, os, subprocess, sys, tempfile, time

WORDS = "abandon ability able about above absent absorb abstract absurd abuse access accident"
A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"


def fail(msg):
    print("INTEROP FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def start_relay(binary, data_dir, extra=()):
    env = dict(os.environ, HUSH_WORDS=WORDS, HUSH_LOG="warn")
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                          "--heartbeat-secs", "1", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("listening on http://"):
        fail(f"relay's first line was {line!r}; stderr: {p.stderr.read()}")
    return p, line.split()[-1]


def ref(hushref, base, *args, timeout=60):
    env = dict(os.environ, HUSH_WORDS=WORDS)
    return subprocess.run([sys.executable, hushref, *args, "--base", base],
                          capture_output=True, text=True, env=env, timeout=timeout)


def main():
    binary, hushref = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as d:
        relay, base = start_relay(binary, d)
        try:
            # A listener like the web client, then a sender like the web client.
            listen = subprocess.Popen(
                [sys.executable, hushref, "listen", "--base", base, "--uuid", B, "--peer", A,
                 "--count", "2", "--timeout", "30", "--meta"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, HUSH_WORDS=WORDS))
            # Wait until it is subscribed.
            if "subscribed" not in listen.stderr.readline():
                fail("listener did not subscribe")
            for text in ("hello from the reference client", "ünïcödé ✓ second"):
                r = ref(hushref, base, "send", "--from-uuid", A, "--to-uuid", B, "--name", "alice",
                        "--text", text)
                if r.returncode != 0:
                    fail(f"send: {r.returncode} {r.stderr}")
                echo = json.loads(r.stdout)
                if not echo["created_at"].endswith("+00:00"):
                    fail(f"WebSocket created_at not in the stock format: {echo}")
            out, err = listen.communicate(timeout=40)
            if listen.returncode != 0:
                fail(f"listen exit {listen.returncode}: {err}")
            got = [json.loads(l)["payload"]["content"] for l in out.splitlines()]
            if got != ["hello from the reference client", "ünïcödé ✓ second"]:
                fail(f"listener got {got}")
            r = ref(hushref, base, "history", "--uuid", B, "--peer", A, "--meta")
            rows = [json.loads(l) for l in r.stdout.splitlines()]
            if r.returncode != 0 or [x["payload"]["content"] for x in rows] != got:
                fail(f"history: {r.returncode} {r.stdout} {r.stderr}")
            if not all(x["created_at"].endswith("Z") for x in rows):
                fail(f"REST created_at not in the stock format: {rows}")
            # `after` with the server's own string returns only what is newer.
            r = ref(hushref, base, "history", "--uuid", B, "--peer", A, "--after", rows[0]["created_at"])
            if [json.loads(l)["content"] for l in r.stdout.splitlines()] != got[1:]:
                fail(f"history --after: {r.stdout}")
            r = ref(hushref, base, "probe", "--heartbeat", "3", "--wait", "2")
            checks = [json.loads(l) for l in r.stdout.splitlines()]
            by = {}
            for c in checks:
                by.setdefault(c["check"], []).append(c)
            for name in ("bad_token", "no_token"):
                c = by[name][0]
                if c.get("close_code") != 4001:
                    fail(f"{name}: {c}")
            replies = [json.loads(c["got"]) for c in by["reply"]]
            want = ["pong", "error", "error", "error", "error"]
            if [x["type"] for x in replies] != want:
                fail(f"probe replies: {replies}")
            msgs = [x.get("message") for x in replies[1:]]
            if msgs != ["Unknown message type: bogus", "Missing thread_id",
                        "Invalid thread_id format", "Thread not found"]:
                fail(f"stock error messages differ: {msgs}")
            if by["heartbeat"][0]["got"] != '{"type":"heartbeat"}':
                fail(f"heartbeat: {by['heartbeat']}")
            print(f"interop ok: {len(checks)} probe checks, 2 messages from the reference client through {base}")
        finally:
            relay.terminate()
            relay.wait(10)


if __name__ == "__main__":
    main()
