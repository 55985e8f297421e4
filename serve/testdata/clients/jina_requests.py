"""jina_requests.py: Jina's documented rerank call (POST /v1/rerank with a
Bearer key, {"model", "query", "documents", "top_n"}), made with Python's
requests (Debian's python3-requests) as Jina's reference makes it with
curl, and read as Jina's clients read it: results[].index,
relevance_score, document.text, usage.total_tokens.

Reads the spec of lib.js on stdin and prints its answer on stdout.
"""
import json
import sys

import requests

spec = json.load(sys.stdin)
body = {"model": spec["model"], "query": spec["query"], "documents": spec["documents"]}
if spec.get("top_n") is not None:
    body["top_n"] = spec["top_n"]
r = requests.post(spec["url"] + "/v1/rerank", timeout=60, json=body, headers={
    "Content-Type": "application/json", "Authorization": "Bearer " + spec["api_key"]})
if r.status_code != 200:
    print(json.dumps({"error": {"status": r.status_code, "message": r.text, "body": r.json()}}))
    sys.exit(0)
res = r.json()
print(json.dumps({
    "model": res["model"],
    "total_tokens": res["usage"]["total_tokens"],
    "results": [{"index": x["index"], "score": x["relevance_score"], "document": x["document"]} for x in res["results"]],
}))
