"""A whole default run against HF Trainer: `python -m bench.default_run [--rounds 2] [--before PATH]`

Issue 29: the training steps were 1.85x HF Trainer, yet a whole default run was 0.99x, because validation ate
the gain. This times what a user waits for: `tunesmith train` as a process, with default settings on 128
support chats and 2 validation rows (16 steps, batch 8), against HF Trainer's 16 steps with no evaluation
(bench/run_one.py's `hf` system, also timed as a whole process). It reports both the whole-process wall and
the training-only throughput (tokens over the time outside evaluations), so a feature that adds per-run cost
shows up as a number.

The base-model figures (eval/basecache.py) are cleared first: round 0 is a cold run that computes them, and
the alternated rounds after it find them cached, as every run after a user's first does. `--before PATH`: a
checkout of an earlier commit, timed the same way in each round (its `src` goes first on PYTHONPATH).
Writes bench/results/default-run-<time>.json after every run. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "support_bitext"


def tunesmith_run(tmp: Path, train: Path, val: Path, args, src: Path | None, name: str) -> dict:
    out = tmp / name
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, **({"PYTHONPATH": str(src)} if src else {})}
    cmd = [sys.executable, "-m", "tunesmith", "train", "--data", str(train), "--val-data", str(val)]
    cmd += ["--max-steps", str(args.steps), "--batch-size", str(args.batch), "--output", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"system": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    s = json.loads((out / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    step0 = next((r for r in rows if r["step"] == 0 and "eval_loss" in r), {})
    train_only = s["train_seconds"] - s["eval_seconds"]
    return {
        "system": name,
        "wall_s": round(wall, 1),
        "train_seconds": s["train_seconds"],
        "eval_seconds": s["eval_seconds"],
        "eval_share_of_wall": round(s["eval_seconds"] / wall, 3),
        "train_only_tokens_per_s": round(s["tokens"] / max(train_only, 1e-9), 1),
        "evaluations": [r["step"] for r in rows if "eval_loss" in r],
        "step0_cached": bool(step0.get("eval_cached")),
        "probe_cached": bool(step0.get("general_cached")),
        "lora_r": s.get("auto", {}).get("lora.r"),
    }


def hf_run(args) -> dict:
    cmd = [sys.executable, str(HERE / "run_one.py"), "hf", "--data", str(DATA / "train.jsonl")]
    cmd += ["--rows", str(args.rows), "--steps", str(args.steps), "--batch", str(args.batch), "--warmup", "2"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"system": "hf", "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    r = json.loads(lines[-1])
    return {"system": "hf", "wall_s": round(wall, 1), "train_only_tokens_per_s": r["tokens_per_s"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--before", type=Path, help="a checkout of an earlier commit to time beside this one")
    args = ap.parse_args(argv)
    if not (DATA / "train.jsonl").is_file():
        sys.exit(f"bench.default_run: {DATA} not found (the shared datasets)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-default-"))
    os.environ["TUNESMITH_BASE_FIGURES"] = str(tmp / "base-figures")  # cold at the start, this run's own
    rows = DATA.joinpath("train.jsonl").read_text().splitlines()[: args.rows]
    train, val = tmp / "train.jsonl", tmp / "val.jsonl"
    train.write_text("\n".join(rows) + "\n")
    val.write_text("\n".join(DATA.joinpath("validation.jsonl").read_text().splitlines()[:2]) + "\n")
    path = HERE / "results" / time.strftime("default-run-%Y%m%d-%H%M%S.json")
    runs: list[dict] = []

    def record(r, round_):
        runs.append({**r, "round": round_})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        path.write_text(json.dumps({"settings": vars(args) | {"before": str(args.before)}, "runs": runs}, indent=2))

    record(tunesmith_run(tmp, train, val, args, None, "tunesmith-cold"), 0)
    for r in range(1, args.rounds + 1):
        if args.before:
            record(tunesmith_run(tmp, train, val, args, args.before / "src", "before"), r)
        record(tunesmith_run(tmp, train, val, args, None, "tunesmith"), r)
        record(hf_run(args), r)

    def med(name, key):
        vals = [x[key] for x in runs if x["system"] == name and key in x]
        return statistics.median(vals) if vals else None

    hf_wall = med("hf", "wall_s")
    print("| system | whole wall s (median) | x HF wall | validation s | validation share | train-only tok/s |")
    print("|---|---|---|---|---|---|")
    for name in ("before", "tunesmith-cold", "tunesmith", "hf"):
        wall = med(name, "wall_s")
        if wall is None:
            continue
        ev = med(name, "eval_seconds")
        share = med(name, "eval_share_of_wall")
        print(
            f"| {name} | {wall:.1f} | {hf_wall / wall:.2f} | {'' if ev is None else f'{ev:.1f}'} | "
            f"{'' if share is None else f'{share:.0%}'} | {med(name, 'train_only_tokens_per_s'):.1f} |"
        )
    print(f"written: {path}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
