#!/usr/bin/env python3
"""Load test of `rerank serve` for scripts/gpu-check.sh: N TEI /rerank
requests of D documents from C concurrent clients on 127.0.0.1; prints one
line with req/s, pairs/s, p50 and p99. Standard library only.

    gpu-serve-load.py PORT [--requests 400] [--docs 32] [--clients 16]
"""
import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--docs", type=int, default=32)
    ap.add_argument("--clients", type=int, default=16)
    a = ap.parse_args()
    url = f"http://127.0.0.1:{a.port}/rerank"
    body = json.dumps({
        "query": "what is the boundary layer of a flat plate",
        "texts": [f"boundary layer flow {i} over a flat plate at high speed " * 6 for i in range(a.docs)],
    }).encode()

    def one(_):
        t = time.perf_counter()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            out = json.loads(r.read())
        if len(out) != a.docs:
            raise SystemExit(f"{url}: {len(out)} scores for {a.docs} documents")
        return time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.clients) as ex:
        lat = sorted(ex.map(one, range(a.requests)))
    wall = time.perf_counter() - t0
    print(f"serve: {a.requests} requests of {a.docs} pairs, {a.clients} clients: {a.requests / wall:.0f} req/s, "
          f"{a.requests * a.docs / wall:.0f} pairs/s, p50 {1000 * lat[len(lat) // 2]:.1f} ms, "
          f"p99 {1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
