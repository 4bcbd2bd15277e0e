#!/usr/bin/env python3
"""Interop: the independent reference client (shared/tools/hushref.py, which
behaves like the stock hush web client) against a real hush-relay process,
and against our own client (`hush send` / `hush listen`) in both directions.

Usage: interop.py PATH/TO/hush-relay PATH/TO/hushref.py PATH/TO/hush
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


def hush(binary, base, data, *args, timeout=90):
    env = dict(os.environ, HUSH_WORDS=WORDS, HUSH_LOG="warn")
    return subprocess.run([binary, "--server", base, "--data-dir", data, "--profile", "interop", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def with_our_client(hush_bin, hushref, base, data):
    """The reference client and ours exchange messages both ways."""
    r = hush(hush_bin, base, data, "identity", "--name", "Ours")
    if r.returncode != 0:
        fail(f"hush identity: {r.stderr}")
    me = json.loads(r.stdout)["user_id"]
    peer = "33333333-3333-4333-8333-333333333333"
    if hush(hush_bin, base, data, "contacts", "add", peer, "Reference").returncode != 0:
        fail("hush contacts add")
    # Reference (stock web client) → ours.
    r = ref(hushref, base, "send", "--from-uuid", peer, "--to-uuid", me, "--name", "ref",
            "--text", "stock client to hush")
    if r.returncode != 0:
        fail(f"reference send: {r.stderr}")
    r = hush(hush_bin, base, data, "listen", "--count", "1", "--timeout", "30")
    if r.returncode != 0:
        fail(f"hush listen: {r.returncode} {r.stderr}")
    got = json.loads(r.stdout.splitlines()[0])
    if (got["content"], got["sender_id"], got["sender_name"]) != ("stock client to hush", peer, "ref"):
        fail(f"hush listen got {got}")
    # Ours → reference.
    listen = subprocess.Popen(
        [sys.executable, hushref, "listen", "--base", base, "--uuid", peer, "--peer", me,
         "--count", "1", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, HUSH_WORDS=WORDS))
    if "subscribed" not in listen.stderr.readline():
        fail("reference listener did not subscribe")
    r = hush(hush_bin, base, data, "send", peer, "hush to stock client ✓")
    if r.returncode != 0:
        fail(f"hush send: {r.returncode} {r.stderr}")
    out, err = listen.communicate(timeout=40)
    if listen.returncode != 0:
        fail(f"reference listen: {listen.returncode} {err}")
    payload = json.loads(out.splitlines()[0])
    if (payload["content"], payload["sender_id"], payload["sender_name"]) != ("hush to stock client ✓", me, "Ours"):
        fail(f"reference got {payload}")
    if list(payload) != ["sender_id", "sender_name", "content", "timestamp"]:
        fail(f"payload keys not in wire order: {list(payload)}")
    # History through the reference client decrypts ours too.
    r = ref(hushref, base, "history", "--uuid", peer, "--peer", me)
    contents = [json.loads(l)["content"] for l in r.stdout.splitlines()]
    if r.returncode != 0 or contents != ["stock client to hush", "hush to stock client ✓"]:
        fail(f"reference history: {r.returncode} {contents} {r.stderr}")


def stock_probe(binary, hushref, d):
    """hush-relay --stock must look like the original server to the probe."""
    relay, base = start_relay(binary, os.path.join(d, "stock"), ("--stock",))
    try:
        r = ref(hushref, base, "probe", "--wait", "2")
        checks = [json.loads(l) for l in r.stdout.splitlines()]
        by = {}
        for c in checks:
            by.setdefault(c["check"], []).append(c)
        for name in ("bad_token", "no_token"):
            if by[name][0].get("http_status") != 403:
                fail(f"stock {name}: {by[name][0]}")
        for name in ("non_json_text", "json_array", "binary"):
            c = by[name][0]
            if c.get("closed") or c.get("got") is not None:
                fail(f"stock {name} should go silent without closing: {c}")
        errors = [json.loads(c["got"]) for c in by["reply"][1:]]
        if any(set(e) != {"type", "message"} for e in errors):
            fail(f"stock errors carry extension fields: {errors}")
        h = json.loads(subprocess.run(["curl", "-s", base + "/health"], capture_output=True, text=True).stdout)
        if h != {"status": "healthy"}:
            fail(f"stock /health: {h}")
    finally:
        relay.terminate()
        relay.wait(10)


def main():
    binary, hushref = sys.argv[1], sys.argv[2]
    hush_bin = sys.argv[3] if len(sys.argv) > 3 else None
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
            if hush_bin:
                with_our_client(hush_bin, hushref, base, os.path.join(d, "client"))
            stock_probe(binary, hushref, d)
            print(f"interop ok: {len(checks)} probe checks, reference↔relay messages"
                  + (", reference↔hush both ways" if hush_bin else "") + f" through {base}")
        finally:
            relay.terminate()
            relay.wait(10)


if __name__ == "__main__":
    main()
