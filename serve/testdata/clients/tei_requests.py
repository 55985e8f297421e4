"""tei_requests.py: text-embeddings-inference's documented HTTP calls, made
with Python's requests (Debian's python3-requests) as TEI's README makes
them with curl: POST /rerank {"query", "texts"} (here with raw_scores,
return_text and truncate), POST /predict with [query, passage] pairs,
GET /info and GET /health.

Reads the spec of lib.js on stdin and prints its answer on stdout.
"""
import json
import sys

import requests

spec = json.load(sys.stdin)
url, headers = spec["url"], {"Authorization": "Bearer " + spec["api_key"]}
try:
    r = requests.post(url + "/rerank", headers=headers, timeout=60, json={
        "query": spec["query"], "texts": spec["documents"],
        "raw_scores": spec.get("raw_scores", False), "return_text": True, "truncate": True,
    })
    r.raise_for_status()
    ranks = r.json()
    p = requests.post(url + "/predict", headers=headers, timeout=60, json={
        "inputs": [[spec["query"], d] for d in spec["documents"]],
        "raw_scores": spec.get("raw_scores", False), "truncate": True,
    })
    p.raise_for_status()
    info = requests.get(url + "/info", headers=headers, timeout=60)
    info.raise_for_status()
    health = requests.get(url + "/health", timeout=60)  # public: no key
    out = {
        "results": [{"index": x["index"], "score": x["score"], "document": {"text": x["text"]}} for x in ranks],
        "predict": [x[0]["score"] for x in p.json()],
        "compute_tokens": int(r.headers["x-compute-tokens"]),
        "info": info.json(),
        "health": health.status_code,
    }
except requests.HTTPError as e:
    out = {"error": {"status": e.response.status_code, "message": str(e), "body": e.response.json()}}
print(json.dumps(out))
