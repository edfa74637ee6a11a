"""A complete run folder written by hand (no model, no torch): what `tunesmith report` reads, with every
optional part present (baselines, verdict, retrieval, forgetting figures) and a hostile sample answer."""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.config import build_config, save_config

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def fake_run(root: Path, *, full: bool = True) -> Path:
    run = root / "fake-run"
    run.mkdir(parents=True)
    save_config(
        build_config(None, data="train.jsonl", val_data="val.jsonl", output=str(run), lora={"r": 8}),
        run / "config.yaml",
    )
    rows = []
    for step in range(1, 21):
        rows.append({"step": step, "epoch": step / 10, "train_loss": 3.0 / step, "lr": 1e-3, "tokens": step * 100})
        if step % 5 == 0 or step == 1:
            row = {"step": step, "eval_loss": 2.5 / step + 0.3, "eval_perplexity": 2.0, "eval_token_accuracy": 0.5}
            row["eval_contains"] = min(1.0, step / 20)
            if full:
                row["general_contains"] = 0.6 - step / 100
                row["general_perplexity"] = 12.0 + step / 10
                row["general_drop"] = round(step / 100 / 0.6, 4)
            rows.append(row)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 21, "train_lo')
    summary = {
        "task": "sft",
        "method": "lora",
        "model": "smollm2-135m",
        "dtype": "fp32",
        "quantize": None,
        "steps": 20,
        "epochs": 2.0,
        "tokens": 2000,
        "train_seconds": 61.5,
        "tokens_per_s": 32.5,
        "best_eval_loss": 0.425,
        "best_step": 15,
        "select_by": "contains",
        "best_eval_contains": 0.75,
        "stopped_early": True,
        "stop_reason": "validation contains stopped improving",
        "eval_seconds": 12.3,
        "peak_memory_gb": 1.25,
        "trainable_params": 1234,
        "total_params": 135000000,
        "data": {"format": "chat", "train_rows": 40, "val_rows": 8, "truncated": 0},
    }
    (run / "summary.json").write_text(json.dumps(summary))

    def samples(prefix):
        return [
            {"prompt": f"question {i} <q>?", "reference": f"answer {i}", "answer": f"{prefix} answer {i}"}
            for i in range(12)
        ]

    result = {
        "rows": 12,
        "tuned": {
            "loss": 0.41,
            "perplexity": 1.5068,
            "exact_match": 0.25,
            "token_f1": 0.6123,
            "contains": 0.75,
            "samples": samples("tuned"),
        },
        "base": {
            "loss": 3.2,
            "perplexity": 24.53,
            "exact_match": 0.0,
            "token_f1": 0.1,
            "contains": 0.0,
            "samples": samples("base"),
        },
    }
    result["tuned"]["samples"][0]["answer"] = HOSTILE
    if full:
        result["few_shot"] = {"exact_match": 0.0, "token_f1": 0.2, "contains": 0.083333, "samples": samples("few")}
        result["rag"] = {"exact_match": 0.1, "token_f1": 0.45, "contains": 0.5, "samples": samples("rag")}
        result["tuned_rag"] = {"exact_match": 0.3, "token_f1": 0.7, "contains": 0.916667}
        result["verdict"] = {  # the shape eval/verdict.py writes
            "text": "Fine-tuning beats the best baseline (rag) by +25.0 points <on these 12 rows>.",
            "metric": "contains",
            "tuned": 0.75,
            "best_baseline": "rag",
            "best_baseline_score": 0.5,
            "margin": {"diff": 0.25, "low": 0.083, "high": 0.417, "rows": 12},
            "cost": {
                "train_seconds": 61.5,
                "tokens": 2000,
                "gpu": "A100 40GB",
                "usd_per_hour": 1.29,
                "params": 135000000,
                "assumed_tokens_per_s": 170000,
                "estimated_gpu_seconds": 0.012,
                "estimated_usd": 4.3e-06,
            },
        }
        result["retrieval"] = {"k": 3, "recall_at_k": 0.833, "rows": 12, "source": "training pairs", "texts": 40}
        result["general"] = {
            "probe": "default",
            "questions": 40,
            "base": {"contains": 0.6, "perplexity": 12.0},
            "tuned": {"contains": 0.45, "perplexity": 14.5},
            "drop": 0.25,
        }
    (run / "eval_test.json").write_text(json.dumps(result))
    return run
