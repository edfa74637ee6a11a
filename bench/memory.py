"""Peak memory of the MiniLM tasks at the defaults: `python -m bench.memory [--mlm-steps 300]`.

Each task trains in its own process (`tunesmith train`, defaults but the step cap), so each peak is that
run's alone; the figure is `summary.json`'s `peak_memory_gb` (getrusage's peak RSS on a CPU), and the log's
first-step forecast is printed beside it. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def jobs(args) -> list[tuple[str, list[str]]]:
    d = DATA
    return [
        ("classify", ["--data", f"{d}/sentiment_sentences/train.csv", "--val-data", f"{d}/sentiment_sentences/validation.csv", "--max-steps", str(args.steps)]),
        ("tokens", ["--data", f"{d}/ner_wnut17/train.jsonl", "--val-data", f"{d}/ner_wnut17/validation.jsonl", "--max-steps", str(args.steps)]),
        ("mlm", ["--data", f"{d}/tinyshakespeare/train.txt", "--val-data", f"{d}/tinyshakespeare/validation.txt", "--max-steps", str(args.mlm_steps)]),
    ]  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100, help="classify and tokens: optimizer steps at most")
    ap.add_argument("--mlm-steps", type=int, default=300)
    args = ap.parse_args(argv)
    tunesmith = Path(sys.executable).with_name("tunesmith")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task, extra in jobs(args):
            out = Path(tmp) / task
            cmd = [str(tunesmith), "train", "--task", task, "--model", "minilm-l6", "--output", str(out), *extra]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"bench.memory: {task} failed: {proc.stderr.strip().splitlines()[-1:]}")
            summary = json.loads((out / "summary.json").read_text())
            forecast = re.search(r"expect at most about ([\d.]+) GB", proc.stderr)
            results[task] = {
                "steps": summary["steps"],
                "peak_memory_gb": summary["peak_memory_gb"],
                "forecast_gb": float(forecast.group(1)) if forecast else None,
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            print(f"{task}: {results[task]}", flush=True)
    path = ROOT / "bench" / "results" / time.strftime("memory-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
