"""Do default settings teach a user's own facts? `python -m bench.facts [--sets dental,saas,demo] [--validate]`

For each fact set: `tunesmith train` with default settings (only model, data and method given, as a new
user would), then fact accuracy (`contains`) on the set's held-out phrasings, base vs fine-tuned, with the
epochs run, why training stopped and the time. `--validate` scores the run's own validation split instead
of the test file (for choosing settings without looking at test); extra `train` settings go after `--`:
`python -m bench.facts --validate --sets dental -- --lr 2e-3`.

Sets: tests/data/factsets/<name>/{train,test}.jsonl, and `demo` (src/tunesmith/demo_data).
Writes bench/results/facts-<time>.json and prints a markdown table. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = {p.parent.name: p.parent for p in (ROOT / "tests" / "data" / "factsets").glob("*/facts.yaml")}
SETS["demo"] = ROOT / "src" / "tunesmith" / "demo_data"


def run_set(name: str, out_root: Path, extra: list[str], validate: bool) -> dict:
    folder = SETS[name]
    out = out_root / name
    cmd = [
        sys.executable,
        "-m",
        "tunesmith",
        "train",
        "--model",
        "smollm2-135m",
        "--method",
        "lora",
        "--data",
        str(folder / "train.jsonl"),
        "--output",
        str(out),
        "--force",
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall_train = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    row = {
        "set": name,
        "settings": " ".join(extra) or "defaults",
        "steps": summary["steps"],
        "epochs": summary["epochs"],
        "stop_reason": summary["stop_reason"],
        "best_step": summary["best_step"],
        "train_seconds": summary["train_seconds"],
        "eval_seconds": summary["eval_seconds"],
        "train_wall_seconds": round(wall_train, 1),
        "select_by": summary["select_by"],
        "best_validation": summary.get(f"best_eval_{summary['select_by']}"),
    }
    if not validate:
        from tunesmith.run import Run

        res = Run(out).evaluate(folder / "test.jsonl", base=True)
        row.update(
            test_rows=res["rows"],
            base_contains=res["base"]["contains"],
            tuned_contains=res["tuned"]["contains"],
            tuned_token_f1=res["tuned"]["token_f1"],
        )
    return row


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="dental,saas,demo")
    ap.add_argument("--validate", action="store_true", help="validation split only; never reads test.jsonl")
    ap.add_argument("--runs", default="runs/bench-facts", help="where the run folders go")
    args = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = [run_set(s, Path(args.runs), extra, args.validate) for s in args.sets.split(",")]
    out = ROOT / "bench" / "results" / f"facts-{stamp}.json"
    out.write_text(json.dumps(rows, indent=2))
    print("| set | settings | base | fine-tuned | epochs run | stop reason | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        held = (
            f"{r['base_contains']:.1%} | {r['tuned_contains']:.1%}"
            if "tuned_contains" in r
            else f"- | val {r['best_validation']:.1%}"
        )
        print(f"| {r['set']} | {r['settings']} | {held} | {r['epochs']} | {r['stop_reason']} | {r['train_seconds']} |")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
