"""Do the defaults still learn, for every task? `python -m bench.quality [--only NAME,...]` (`make quality`)

Issue 28: a LoRA rank chosen on chat facts became every task's default, and classification and tagging
stopped learning without a single test failing. This check trains each task with its defaults on the
shared datasets (../shared/data; train on a fixed sample of `train`, validate on `validation`), scores the
run on the validation file with `tunesmith eval --json`, and compares each score with the floor below.
Only the model, task and files are given, as a new user would: whatever a default does, this sees.

Run it alone on the machine (each job is its own `tunesmith` process), and before any change to a default;
say in the commit that it passed. It prints a table, writes bench/results/quality-<time>.json after every
job (a cut run still leaves its figures), and exits 1 when a score is below its floor.

The floors were set from the first run of this check with the per-task defaults (2026-12-08: sentiment 0.933,
spam F1 0.952, WNUT-17 entity F1 0.532, MLM perplexity 99.5% below the base's, demo facts validation token F1 0.897 at
step 150), 2-8 points under what it measured, and far above what the r64 regression gave
(sentiment 0.50, spam F1 0.00, WNUT-17 entity F1 0.01). MLM's floor is a 99% fall: MiniLM's untrained
MLM head starts at a perplexity near 38,000, so any learning clears 30%.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEMO = ROOT / "src" / "tunesmith" / "demo_data"


@dataclass
class Job:
    name: str
    task: str
    model: str
    train: Path
    val: Path | None  # None: the run holds out its own slice (the fact set has no validation file)
    rows: int  # training rows (text: characters) sampled with a fixed seed; 0 = all
    metric: str  # what `score` reads, for the table
    floor: float
    extra: tuple[str, ...] = ()  # only where the check must bound its time: never a setting under test


JOBS = [
    Job("sentiment", "classify", "minilm-l6", DATA / "sentiment_sentences" / "train.csv",
        DATA / "sentiment_sentences" / "validation.csv", 1000, "accuracy", 0.90),
    Job("spam", "classify", "minilm-l6", DATA / "sms_spam" / "train.jsonl", DATA / "sms_spam" / "validation.jsonl",
        1000, "spam F1", 0.93),
    Job("wnut17", "tokens", "minilm-l6", DATA / "ner_wnut17" / "train.jsonl", DATA / "ner_wnut17" / "validation.jsonl",
        1500, "entity F1", 0.45),
    Job("shakespeare", "mlm", "minilm-l6", DATA / "tinyshakespeare" / "train.txt",
        DATA / "tinyshakespeare" / "validation.txt", 150_000, "perplexity fall vs base", 0.99),
    # Chat facts at full default length take 35 minutes (docs/evaluation.md); 150 steps (1.9 epochs) fit.
    Job("demo-facts", "sft", "smollm2-135m", DEMO / "train.jsonl", None, 0, "validation token F1", 0.85,
        ("--max-steps", "150")),
]  # fmt: skip


def sample(job: Job, folder: Path) -> Path:
    """The job's training file, cut to `job.rows` rows picked with seed 0 (text: the first `rows` characters,
    ending at a line break), in the original format."""
    if not job.rows:
        return job.train
    out = folder / f"{job.name}{job.train.suffix}"
    if job.train.suffix == ".txt":
        text = job.train.read_text()
        out.write_text(text[: text.rfind("\n", 0, job.rows) + 1])
    elif job.train.suffix == ".csv":
        with job.train.open(newline="") as f:
            header, *rows = list(csv.reader(f))
        with out.open("w", newline="") as f:
            csv.writer(f).writerows([header, *random.Random(0).sample(rows, min(job.rows, len(rows)))])
    else:
        lines = job.train.read_text().splitlines()
        out.write_text("\n".join(random.Random(0).sample(lines, min(job.rows, len(lines)))) + "\n")
    return out


def score(job: Job, result: dict, summary: dict) -> float:
    if not job.val:  # the run's own held-out slice: its kept validation score
        return summary[f"best_eval_{summary['select_by']}"]
    tuned = result["tuned"]
    if job.task == "classify":
        return tuned["per_class"]["spam"]["f1"] if job.name == "spam" else tuned["accuracy"]
    if job.task == "tokens":
        return tuned["entity_f1"]
    if job.task == "mlm":
        return 1 - tuned["perplexity"] / result["base"]["perplexity"]
    raise ValueError(f"no score for {job.name}")


def run_job(job: Job, tmp: Path) -> dict:
    tunesmith = [sys.executable, "-m", "tunesmith"]
    out = tmp / job.name
    data = sample(job, tmp)
    cmd = [*tunesmith, "train", "--task", job.task, "--model", job.model, "--data", str(data), "--output", str(out)]
    cmd += ["--val-data", str(job.val)] if job.val else []
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *job.extra], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"job": job.name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    train_s = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    result = {}
    if job.val:
        ev = subprocess.run([*tunesmith, "eval", str(out), "--data", str(job.val), "--json"], capture_output=True)
        if ev.returncode != 0:
            return {"job": job.name, "error": (ev.stderr.decode().strip().splitlines() or ["?"])[-1]}
        result = json.loads(ev.stdout)
    value = score(job, result, summary)
    return {
        "job": job.name,
        "task": job.task,
        "model": job.model,
        "train_rows": job.rows or "all",
        "metric": job.metric,
        "score": round(value, 4),
        "floor": job.floor,
        "passed": value >= job.floor,
        "collapsed": summary.get("collapsed"),
        "lora": [summary.get("auto", {}).get("lora.r"), summary.get("auto", {}).get("lora.alpha")],
        "lr": summary.get("auto", {}).get("lr"),
        "steps": summary["steps"],
        "best_step": summary["best_step"],
        "stop_reason": summary["stop_reason"],
        "train_wall_s": round(train_s, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma list of job names: " + ", ".join(j.name for j in JOBS))
    args = ap.parse_args(argv)
    wanted = [n for n in args.only.split(",") if n]
    unknown = set(wanted) - {j.name for j in JOBS}
    if unknown:
        sys.exit(f"bench.quality: unknown job {sorted(unknown)[0]!r}")
    if not DATA.is_dir():
        sys.exit(f"bench.quality: {DATA} not found (the shared datasets)")
    jobs = [j for j in JOBS if not wanted or j.name in wanted]
    path = ROOT / "bench" / "results" / time.strftime("quality-%Y%m%d-%H%M%S.json")
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for job in jobs:
            print(f"{job.name}: training ({job.task}, {job.model}, defaults)...", file=sys.stderr, flush=True)
            rows.append(run_job(job, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            path.write_text(json.dumps({"rows": rows, "wall_s": round(time.perf_counter() - t0, 1)}, indent=2))
    print("| job | task | metric | score | floor | result | steps (kept) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['job']} | | | | | FAILED: {r['error']} | | |")
            continue
        verdict = "ok" if r["passed"] else "BELOW FLOOR"
        verdict += " (collapsed)" if r["collapsed"] else ""
        print(
            f"| {r['job']} | {r['task']} | {r['metric']} | {r['score']:.3f} | {r['floor']:.2f} | {verdict} | "
            f"{r['steps']} ({r['best_step']}) | {r['wall_s']:.0f} |"
        )
    print(f"total {time.perf_counter() - t0:.0f} s; written: {path}")
    return 0 if all(r.get("passed") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
