"""What the misses are: `python -m bench.facts_errors [--runs runs/bench-facts] [--sets dental,saas]`.

After `python -m bench.facts`: answers each set's test phrasings with its run and, for every miss, checks
whether the answer is (or contains the detail of) another fact's answer. Prints counts, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tunesmith.eval.generate import generate_batch
from tunesmith.eval.metrics import contains
from tunesmith.run import Run

from .facts import ROOT, SETS


def misses(run_dir: Path, folder: Path) -> dict:
    run = Run(run_dir)
    rows = [json.loads(x) for x in (folder / "test.jsonl").read_text().splitlines()]
    facts = {}
    for line in (folder / "train.jsonl").read_text().splitlines():
        r = json.loads(line)
        facts[r["fact"]] = (r["must_contain"], r["messages"][1]["content"])
    answers = generate_batch(
        run.model, run.tokenizer, [run.with_system(r["messages"][:1]) for r in rows], max_new_tokens=64
    )
    out = {
        "rows": len(rows),
        "hits": 0,
        "miss_with_other_fact": 0,
        "miss_verbatim_other_answer": 0,
        "miss_no_known_fact": 0,
        "examples": [],
    }
    for r, a in zip(rows, answers):
        if contains(a, r["must_contain"]):
            out["hits"] += 1
            continue
        others = [f for f, (m, _) in facts.items() if f != r["fact"] and contains(a, m)]
        out["miss_verbatim_other_answer"] += any(
            a.strip() == ans.strip() for f, (_, ans) in facts.items() if f != r["fact"]
        )
        out["miss_with_other_fact" if others else "miss_no_known_fact"] += 1
        if len(out["examples"]) < 6:
            out["examples"].append(
                {"q": r["messages"][0]["content"], "want": r["fact"], "answer": a, "other_facts": others}
            )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/bench-facts")
    ap.add_argument("--sets", default="dental,saas")
    args = ap.parse_args()
    result = {}
    for name in args.sets.split(","):
        result[name] = misses(Path(args.runs) / name, SETS[name])
        print(name, {k: v for k, v in result[name].items() if k != "examples"}, flush=True)
    out = ROOT / "bench" / "results" / f"facts-errors-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
