"""How well the `rag` baseline finds the fact: `python -m bench.retrieval [--sets demo,dental,saas]`.

For each fact set, retrieves training pairs for every held-out phrasing as `tunesmith eval --baselines rag`
does, and prints recall@1 and recall@4 (the share of test rows whose `must_contain` is in a retrieved training
answer) for the three retrieval methods: hybrid (BM25 and minilm-l6 fused by RRF, the default), dense and bm25.
No generation, no training: a few seconds a set. Writes bench/results/retrieval-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import time

from tunesmith.data.formats import read_examples
from tunesmith.eval.baselines import pair_text, question, read_train
from tunesmith.eval.retrieve import METHODS, Retriever, recall_at_k, sentence_embedder

from .facts import ROOT, SETS


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="demo,dental,saas")
    args = ap.parse_args(argv)
    embed = sentence_embedder("minilm-l6")
    results = {}
    for name in args.sets.split(","):
        folder = SETS[name]
        pairs = read_train(folder / "train.jsonl")
        _, test = read_examples(folder / "test.jsonl")
        queries = [question(e.messages[:-1]) for e in test]
        musts = [e.must_contain for e in test]
        answers = [m[-1]["content"] for m in pairs]
        retriever = Retriever([pair_text(m) for m in pairs], embed)  # both rankings, built once for the three
        row = {"train_pairs": len(pairs), "test_rows": len(test)}
        for method in METHODS:
            hits = retriever.search(queries, 4, method)
            for k in (1, 4):
                recall, _ = recall_at_k([[answers[j] for j in h[:k]] for h in hits], musts)
                row[f"{method}_recall_at_{k}"] = round(recall, 3)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    out = ROOT / "bench" / "results" / f"retrieval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
