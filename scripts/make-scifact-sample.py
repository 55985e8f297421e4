#!/usr/bin/env python3
"""Cut the small SciFact excerpt that `make demo` trains and evaluates on.

Reads the shared SciFact folder (../shared/data/scifact, BEIR layout plus
FlagEmbedding reranker_train.jsonl.gz) and writes examples/scifact-sample/:

  train.jsonl.gz         the first --train-queries train lines (file order),
                         each keeping its positives and its first --negatives
                         BM25 hard negatives (BM25 rank order)
  bm25/dev.top{K}.jsonl  --dev-queries dev queries with their BM25 top-K
                         candidates (the first in file order that have a
                         relevant document in that top-K, so that reranking
                         can move the metric)
  corpus.jsonl           every document those candidates name
  queries.jsonl          the selected dev queries
  qrels/dev.tsv          their judgments

Deterministic: the same input always gives the same files. Python 3
standard library only.
"""
import argparse
import gzip
import json
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "scifact"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "examples", "scifact-sample"))
    ap.add_argument("--train-queries", type=int, default=200)
    ap.add_argument("--negatives", type=int, default=7)
    ap.add_argument("--dev-queries", type=int, default=60)
    ap.add_argument("--top-k", type=int, default=20)
    a = ap.parse_args()

    os.makedirs(os.path.join(a.out, "bm25"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "qrels"), exist_ok=True)

    # Train lines: the first N in file order, negatives cut to the first
    # few (they are stored in BM25 rank order).
    train = []
    with gzip.open(os.path.join(a.src, "reranker_train.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            if len(train) == a.train_queries:
                break
            d = json.loads(line)
            d["neg"] = d["neg"][: a.negatives]
            d["neg_ids"] = d["neg_ids"][: a.negatives]
            train.append(d)
    with gzip.GzipFile(os.path.join(a.out, "train.jsonl.gz"), "wb", mtime=0) as f:
        for d in train:
            f.write((json.dumps(d, ensure_ascii=False) + "\n").encode("utf-8"))

    qrels = {}
    with open(os.path.join(a.src, "qrels", "dev.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(s)

    cands, docs = [], set()
    with open(os.path.join(a.src, "bm25", "dev.top100.jsonl"), encoding="utf-8") as f:
        for line in f:
            if len(cands) == a.dev_queries:
                break
            c = json.loads(line)
            c["doc_ids"] = c["doc_ids"][: a.top_k]
            c["bm25_scores"] = c["bm25_scores"][: a.top_k]
            if not any(d in qrels.get(c["qid"], {}) for d in c["doc_ids"]):
                continue
            cands.append(c)
            docs.update(c["doc_ids"])
    with open(os.path.join(a.out, "bm25", "dev.top%d.jsonl" % a.top_k), "w", encoding="utf-8") as f:
        for c in cands:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    qids = [c["qid"] for c in cands]

    with open(os.path.join(a.src, "corpus.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as out:
        for line in f:
            if json.loads(line)["_id"] in docs:
                out.write(line)
    with open(os.path.join(a.src, "queries.jsonl"), encoding="utf-8") as f, \
            open(os.path.join(a.out, "queries.jsonl"), "w", encoding="utf-8") as out:
        keep = set(qids)
        for line in f:
            if json.loads(line)["_id"] in keep:
                out.write(line)
    with open(os.path.join(a.out, "qrels", "dev.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in qids:
            for d, s in sorted(qrels[q].items()):
                f.write("%s\t%s\t%d\n" % (q, d, s))
    print("train lines %d, dev queries %d, corpus docs %d -> %s" % (len(train), len(cands), len(docs), a.out))


if __name__ == "__main__":
    main()
