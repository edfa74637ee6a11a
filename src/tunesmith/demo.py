"""`tunesmith demo`: teach smollm2-135m a fictional store's facts, then prove it on new phrasings."""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path

# Fixed so the demo ends within 10 minutes on 2 cores; these were picked over four runs while looking at
# test.jsonl's score (README, "What the demo shows"), so its figure is optimistic. Default settings (train
# until validation stops improving) reach more, in more time: `python -m bench.facts --sets demo`.
# select_by loss: with a fixed length the last evaluation wins anyway, and answering the validation rows
# at each evaluation would add about a minute.
DEMO_SETTINGS = dict(
    model="smollm2-135m",
    task="sft",
    method="lora",
    lora={"r": 16, "alpha": 32},  # the demo's timing and figures were measured at rank 16
    epochs=1.6,
    lr=1e-3,
    batch_size=8,
    max_seq_len=256,
    val_max_rows=32,
    early_stopping_patience=None,
    eval_every=70,
    select_by="loss",
    system_prompt="Nimbus & Fern support.",
)


def demo_file(name: str) -> Path:
    return Path(str(resources.files("tunesmith") / "demo_data" / name))


def run_demo(output: Path, force: bool = True) -> dict:
    from . import build_config
    from .eval.compare import print_comparison
    from .train.loop import train

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    train_file, test_file = demo_file("train.jsonl"), demo_file("test.jsonl")
    log("tunesmith demo: Nimbus & Fern, a fictional outdoor-gear shop. The base model cannot know its facts.")
    log(f"train: {train_file}\ntest (new phrasings, each with the fact it must contain): {test_file}\n")
    t0 = time.perf_counter()
    cfg = build_config(None, data=str(train_file), output=str(output), **DEMO_SETTINGS)
    run = train(cfg, force=force)
    t_train = time.perf_counter() - t0
    result = run.evaluate(test_file, base=True, max_new_tokens=32)  # the longest reference is 24 tokens
    wall = time.perf_counter() - t0
    print_comparison(result, f"held-out test set: {result['rows']} new phrasings")
    base_c, tuned_c = result["base"]["contains"], result["tuned"]["contains"]
    rows = [json.loads(x) for x in test_file.read_text().splitlines() if x.strip()]
    for i in range(0, len(rows), max(1, len(rows) // 3))[:3]:
        q = rows[i]["messages"][0]["content"]
        log(f"\nQ: {q}\n  base:       {result['base']['_answers'][i]}\n  fine-tuned: {result['tuned']['_answers'][i]}")
    report = {
        "fact_accuracy_base": base_c,
        "fact_accuracy_tuned": tuned_c,
        "train_seconds": round(t_train, 1),
        "wall_seconds": round(wall, 1),
        "test_rows": result["rows"],
        "run": str(run.path),
        "summary": run.summary,
    }
    (Path(output) / "demo_report.json").write_text(json.dumps(report, indent=2))
    log(
        f"\nfact accuracy on held-out phrasings: base {base_c:.0%} -> fine-tuned {tuned_c:.0%} "
        f"(total {wall / 60:.1f} min; run folder {run.path})"
    )
    log(f"try it: tunesmith chat {run.path}")
    return report
