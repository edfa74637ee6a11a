"""The verdict under `tunesmith eval --baselines`: the best option that needs no fine-tuning, fine-tuning's margin
over it with a paired-bootstrap 95% interval, and what the fine-tuning cost. Every figure is computed."""

from __future__ import annotations

import numpy as np

RESAMPLES, SEED = 1000, 0

NAMES = {  # result key -> how a sentence names the system
    "base": "the base model (zero-shot)",
    "few_shot": "few-shot prompting",
    "rag": "RAG",
    "tuned_rag": "fine-tuning + RAG",
    "majority": "the majority class",
    "linear_probe": "a linear probe",
}
LABELS = {  # result key -> the name `--baselines` gives it
    "base": "zero-shot",
    "few_shot": "few-shot",
    "rag": "rag",
    "tuned_rag": "tuned+rag",
    "linear_probe": "linear-probe",
}
METRIC_NAMES = {"contains": "fact accuracy (contains)", "token_f1": "token F1", "accuracy": "accuracy"}
PERCENT = {"contains", "accuracy", "exact_match"}  # rates, printed as percentages


def main_metric(musts: list[list[str]]) -> str:
    """What a generation verdict compares: `contains` when rows carry must_contain, else token F1."""
    return "contains" if any(musts) else "token_f1"


def paired_bootstrap(a: list, b: list, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """mean(a - b) over the rows both score (None = not scored), with a 95% percentile interval from
    `resamples` resamples of those rows (the same rows for both: the pairing is kept)."""
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None], dtype=np.float64)
    if not len(d):
        return {"diff": None, "low": None, "high": None, "rows": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high), "rows": int(len(d))}


def mean(rows: list) -> float | None:
    vals = [x for x in rows if x is not None]
    return sum(vals) / len(vals) if vals else None


def training_cost(summary: dict, gpu: dict | None, method: str | None = None) -> dict | None:
    """Training seconds and tokens from the run's summary.json, and an estimated price on `gpu` (see
    config.REFERENCE_GPU): tokens / (peak FLOP/s x assumed utilisation / FLOPs per token) seconds at its
    hourly price; FLOPs per token = 6 x parameters (full) or 4 x parameters (LoRA: no weight gradients for the
    frozen weights)."""
    if not summary or summary.get("train_seconds") is None:
        return None
    out = {"train_seconds": summary["train_seconds"], "tokens": summary.get("tokens")}
    params = summary.get("total_params")
    if gpu and params and out["tokens"]:
        per_token = (4 if (method or summary.get("method")) == "lora" else 6) * params
        tps = gpu["peak_tflops"] * 1e12 * gpu["utilisation"] / per_token
        secs = out["tokens"] / tps
        out.update(
            gpu=gpu["name"],
            usd_per_hour=gpu["usd_per_hour"],
            params=params,
            assumed_tokens_per_s=round(tps),
            estimated_gpu_seconds=round(secs, 3),
            estimated_usd=secs / 3600 * gpu["usd_per_hour"],
        )
    return out


def _fmt(metric: str, x: float) -> str:
    return f"{100 * x:.1f}%" if metric in PERCENT else f"{x:.3f}"


def _ci(b: dict, sign: int = 1) -> str:
    """The interval in points; sign -1 states it for the reverse difference (baseline minus fine-tuned)."""
    low, high = sorted((sign * 100 * b["low"], sign * 100 * b["high"]))
    return f"95% CI {low:+.1f} to {high:+.1f}, paired bootstrap over {b['rows']} rows"


def _seconds(x: float) -> str:
    return f"{x:,.1f} s" if x >= 1 else f"{x:.2g} s"


def _round2(x: float) -> str:
    """Two significant figures, with thousands separators: 173974 -> 170,000."""
    return f"{float(f'{x:.2g}'):,.0f}"


def _usd(x: float) -> str:
    return f"${x:.2f}" if x >= 0.1 else f"${x:.2g}"


def verdict(
    tuned: list, baselines: dict[str, list], metric: str, *, tuned_rag: list | None = None, cost: dict | None = None
) -> dict:
    """Per-row scores of the fine-tuned model and of each option without fine-tuning ({result key: rows}) ->
    {"text": the paragraph, "metric", "best_baseline", its score, "tuned", "margin" (tuned - best, with the
    interval), "cost"}. A baseline that beats fine-tuning is named as the winner."""
    label = METRIC_NAMES.get(metric, metric)
    scores = {k: m for k, v in baselines.items() if (m := mean(v)) is not None}
    t = mean(tuned)
    out = {
        "metric": metric,
        "tuned": t,
        "best_baseline": None,
        "best_baseline_score": None,
        "margin": None,
        "cost": cost,
    }
    if t is None:
        out["text"] = f"No verdict: no test row has a {label} score."
        return out
    said = []
    if not scores:
        said.append(f"Fine-tuned: {label} {_fmt(metric, t)}; no baseline was scored.")
    else:
        best = max(scores, key=lambda k: (scores[k], k == "base"))  # a tie goes to anything but the base model
        b, name = scores[best], NAMES.get(best, best)
        m = paired_bootstrap(tuned, baselines[best])
        out.update(best_baseline=best, best_baseline_score=b, margin=m)
        others = ", ".join(f"{LABELS.get(k, k)} {_fmt(metric, v)}" for k, v in scores.items() if k != best)
        said.append(
            f"The best option without fine-tuning is {name}: {label} {_fmt(metric, b)}, against "
            f"{_fmt(metric, t)} fine-tuned" + (f" (other options: {others})." if others else ".")
        )
        pts = 100 * m["diff"]
        if t > b:
            if b > 0:
                said.append(
                    f"{name[0].upper() + name[1:]} alone reaches {b / t:.0%} of the fine-tuned score without training."
                )
            said.append(
                f"Fine-tuning beats the best baseline ({LABELS.get(best, best)}) by {pts:+.1f} points ({_ci(m)})."
            )
            if m["low"] <= 0:
                said.append("The interval includes zero: on this test set the win is not clear.")
        elif t < b:
            said.append(
                f"{name[0].upper() + name[1:]} beats fine-tuning by {-pts:.1f} points ({_ci(m, -1)}): on this test "
                + (
                    f"set, fine-tuning did not pay; {name} is the better choice."
                    if m["high"] < 0
                    else f"set fine-tuning did not pay, though the interval includes zero: the two are not clearly "
                    f"apart, and {name} needs no training."
                )
            )
        else:
            said.append(f"Fine-tuning and {name} score the same on this test set: fine-tuning did not pay.")
    if tuned_rag is not None and (tr := mean(tuned_rag)) is not None:
        r = paired_bootstrap(tuned_rag, tuned)
        out["tuned_rag_gain"] = r
        said.append(
            f"Fine-tuning + RAG reaches {_fmt(metric, tr)}, {100 * r['diff']:+.1f} points over fine-tuning "
            f"alone ({_ci(r)})."
        )
    if cost:
        line = f"Fine-tuning took {cost['train_seconds']:,.0f} s"
        if cost.get("tokens"):
            line += f" and {cost['tokens']:,} training tokens"
        line += " on the machine that trained it"
        if cost.get("estimated_usd") is not None:
            line += (
                f"; on one {cost['gpu']} (${cost['usd_per_hour']:.2f}/h, assumed ~{_round2(cost['assumed_tokens_per_s'])} "
                f"tokens/s for {cost['params'] / 1e6:,.0f}M parameters) that is about "
                f"{_seconds(cost['estimated_gpu_seconds'])}, an estimated {_usd(cost['estimated_usd'])} (an estimate from a "
                "list price and an assumed throughput, not a measurement)"
            )
        said.append(line + ".")
    out["text"] = " ".join(said)
    return out
