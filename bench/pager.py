"""The reference pager of `hush-bench catchup` (issue 18, point 5): a new
device written the way a Python client would, with the reference client's
own functions (tests/interop/hushref.py). It unlocks (POST /api/auth, the
Argon2id vault key), then reads a thread's whole history page after page,
one request at a time, the largest page the relay advertises, decrypting
and parsing every message. A 429 waits as told.

usage: pager.py BASE ME PEER EXPECTED   (HUSH_WORDS in the environment)
prints one JSON line: messages, seconds, cpu_s (this process)
"""
import json, os, sys, time, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'interop'))
import hushref  # noqa: E402


def main():
    base, me, peer, expected = sys.argv[1].rstrip('/'), sys.argv[2], sys.argv[3], int(sys.argv[4])
    words = os.environ['HUSH_WORDS']
    t0, c0 = time.monotonic(), time.process_time()
    auth = hushref.http('POST', base + '/api/auth', {"words": words})
    token = auth['token']
    vk = hushref.vault_key(words, auth['kdf_salt'])
    me, peer = hushref.canon(me), hushref.canon(peer)
    tid, key = hushref.thread_id(me, peer), hushref.thread_key(vk, me, peer)
    health = hushref.http('GET', base + '/health')
    limit = int(health.get('relay', {}).get('max_page', 200))
    # Without `after` a page is the newest messages; from the start, it is
    # "after the epoch".
    after, n = '1970-01-01T00:00:00Z', 0
    while True:
        q = {'limit': limit, 'after': after}
        try:
            rows = hushref.http('GET', f'{base}/api/messages/{tid}?' + urllib.parse.urlencode(q), token=token)
        except hushref.HttpError as e:
            if e.status != 429:
                raise
            time.sleep(1)
            continue
        for r in rows:
            json.loads(hushref.decrypt(key, r))
            n += 1
        if len(rows) < limit or n >= expected:
            break
        after = rows[-1]['created_at']
    print(json.dumps({"messages": n, "seconds": time.monotonic() - t0, "cpu_s": time.process_time() - c0}))


if __name__ == '__main__':
    main()
