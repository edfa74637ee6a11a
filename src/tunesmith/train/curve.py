"""`tunesmith curve`: would more data help? Train on nested subsets of the training rows (the 25% inside the
50% inside the whole), score each run on one validation file, and fit the score against log2(rows).

Every size trains with the same config and seed; only `data` and `output` change. Settings left unset
(epochs, lr) are chosen per size the way `train` chooses them. The subsets are written into the output
folder, in the training file's own format, under names derived here (never from the user's file name).
"""

from __future__ import annotations

import csv
import gc
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

from ..config import RunConfig, build_config
from ..errors import TunesmithError
from ..eval.compare import LOWER_BETTER
from .report import is_num, saved_figure

DEFAULT_SIZES = (0.25, 0.5, 1.0)
DEFAULT_OUTPUT = "runs/curve"
# The built-in tasks' leading SELECT_METRICS (sft's two, classify's first, tokens'), for a reader that does not
# import the run's task (a report: no torch); tests/test_curve.py checks them against the tasks.
MAIN_METRICS = ("contains", "token_f1", "accuracy", "entity_f1")
FRACTION_METRICS = {"contains", "token_f1", "accuracy", "entity_f1", "macro_f1", "micro_f1", "exact_match", "rouge_l"}


def _stderr(msg: str):
    print(msg, file=sys.stderr, flush=True)


def main_metric(metrics: dict, select: tuple[str, ...] = MAIN_METRICS) -> str | None:
    """The score a curve plots (and a report's headline shows) from one system's evaluation metrics: the first
    of `select` (the task's SELECT_METRICS: contains, else token F1 for sft; accuracy; entity F1) it measured,
    else loss (clm, mlm)."""
    return next((key for key in (*select, "loss") if is_num(metrics.get(key))), None)


def parse_sizes(text: str | list | tuple) -> list[float]:
    """'0.25,0.5,1.0' (or a list) -> ascending fractions of the training rows, each in (0, 1]."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    sizes = []
    for p in parts:
        if p == "":
            continue
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise TunesmithError(f"--sizes: '{p}' is not a number (expected fractions such as 0.25,0.5,1.0)") from None
        if not 0 < value <= 1 or not math.isfinite(value):
            raise TunesmithError(f"--sizes: {p} is not a fraction of the training rows in (0, 1]")
        sizes.append(value)
    if not sizes:
        raise TunesmithError("--sizes: give at least one fraction, e.g. 0.25,0.5,1.0")
    if len(set(sizes)) != len(sizes):
        raise TunesmithError(f"--sizes: a fraction is given twice ({text})")
    return sorted(sizes)


def subset_indices(n: int, sizes: list[float], seed: int) -> list[list[int]]:
    """Row indices for each size: one seeded shuffle, then its first k rows, so every subset holds the smaller
    ones. Each subset keeps the file's row order."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    counts = [int(f * n + 0.5) for f in sizes]
    for f, k in zip(sizes, counts):
        if k < 2:
            raise TunesmithError(f"--sizes: {f:g} of {n} training rows is {k} rows; each size needs at least 2")
    for (f1, k1), (f2, k2) in zip(zip(sizes, counts), zip(sizes[1:], counts[1:])):
        if k1 == k2:
            raise TunesmithError(f"--sizes: {f1:g} and {f2:g} of {n} training rows are both {k1} rows")
    return [sorted(order[:k]) for k in counts]


def fit_trend(points: list[tuple[float, float]]) -> dict | None:
    """Least squares of score = intercept + slope * log2(rows); None with fewer than two row counts.
    `slope` is the change per doubling of the data."""
    pts = [(math.log2(r), s) for r, s in points if r > 0 and s is not None and math.isfinite(s)]
    if len({x for x, _ in pts}) < 2:
        return None
    n = len(pts)
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in pts)
    return {"slope": slope, "intercept": intercept, "r2": 1 - ss_res / ss_tot if ss_tot > 0 else None}


def trend_sentence(trend: dict | None, metric: str) -> str:
    """'doubling the data adds about +N points on this trend', or that it gains nothing."""
    if trend is None:
        return "too few sizes for a trend (give at least two)"
    slope = trend["slope"]
    if metric in LOWER_BETTER:
        gain = -slope
        if round(gain, 3) <= 0:
            return "no gain from more data on this trend"
        return f"doubling the data lowers {metric} by about {gain:.3f} on this trend"
    if metric in FRACTION_METRICS:
        points = slope * 100
        if round(points, 1) <= 0:
            return "no gain from more data on this trend"
        return f"doubling the data adds about +{points:.1f} points of {metric} on this trend"
    if round(slope, 3) <= 0:
        return "no gain from more data on this trend"
    return f"doubling the data adds about +{slope:.3f} {metric} on this trend"


# -- subsets, written in the training file's own format ---------------------------------------------------


def _read_units(path: Path, task) -> tuple[str, list]:
    """The training file as (kind, units): the rows (CoNLL sentences, a Parquet table) a subset is drawn from."""
    from ..data.labelled import CONLL_SUFFIXES, read_tagged
    from ..data.load import file_kind, load_rows

    if not path.is_file():
        raise TunesmithError(f"{path}: training file not found")
    if task.CONLL and path.suffix.lower() in CONLL_SUFFIXES:
        return "conll", read_tagged(path)
    kind = file_kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return "parquet", pq.read_table(path)
    return kind, [row for _, row in load_rows(path)]  # raw rows: the run's column mapping still applies


def _write_subset(kind: str, units, idx: list[int], dest_stem: Path) -> Path:
    if kind == "conll":
        dest = dest_stem.with_suffix(".conll")
        blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(units[i].words, units[i].tags)) for i in idx]
        dest.write_text("\n\n".join(blocks) + "\n")
    elif kind == "parquet":
        import pyarrow.parquet as pq

        dest = dest_stem.with_suffix(".parquet")
        pq.write_table(units.take(idx), dest)
    elif kind == "csv":
        dest = dest_stem.with_suffix(".csv")
        header = list(units[0])
        with dest.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([["" if units[i].get(h) is None else units[i][h] for h in header] for i in idx])
    elif kind == "txt":
        dest = dest_stem.with_suffix(".txt")
        parts = [units[i]["text"] for i in idx]  # paragraphs keep their newlines; one blank line between them
        dest.write_text("".join(p if p.endswith("\n\n") else p.rstrip("\n") + "\n\n" for p in parts))
    else:  # jsonl, json
        dest = dest_stem.with_suffix(".jsonl")
        dest.write_text("".join(json.dumps(units[i], ensure_ascii=False, default=str) + "\n" for i in idx))
    return dest


def _prepare_output(out: Path, force: bool, inputs: list[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise TunesmithError(f"{out}: exists and is not a folder; choose another --output")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise TunesmithError(f"{out}: folder is not empty; choose another --output or pass --force")
        here = out.resolve()
        for f in inputs:
            if here == f.resolve() or here in f.resolve().parents:
                raise TunesmithError(f"{out}: holds {f}; --force would delete it; choose another --output")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def plot_curve(result: dict, out: Path) -> None:
    with saved_figure(out) as ax:
        metric = result["metric"]
        done = [s for s in result["sizes"] if s["score"] is not None]
        pts = [(s["rows"], s["score"]) for s in done]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o", color="tab:blue", label=f"validation {metric}", zorder=3)
            for s in done:
                label = f"{s['score']:.3g} ({s['train_seconds']:.0f} s)"
                ax.annotate(
                    label, (s["rows"], s["score"]), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8
                )
            ax.margins(x=0.08, y=0.18)
            trend = result.get("trend")
            if trend is not None:
                lo, hi = min(xs), max(xs)
                grid = [lo * (hi / lo) ** (i / 50) for i in range(51)]
                ax.plot(
                    grid,
                    [trend["intercept"] + trend["slope"] * math.log2(g) for g in grid],
                    "--",
                    color="tab:orange",
                    label="least-squares trend on log2(rows)",
                )
            ax.set_xscale("log", base=2)
            ax.set_xticks(list(xs))
            ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel("training rows (log scale)")
        ax.set_ylabel(f"validation {metric}")
        ax.set_title(result["sentence"], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def learning_curve(
    config: RunConfig | dict,
    sizes: str | list[float] | tuple = DEFAULT_SIZES,
    output: str | Path = DEFAULT_OUTPUT,
    *,
    force: bool = False,
    log=_stderr,
) -> dict:
    """Train `config` on nested subsets of its training rows (`sizes`: fractions) and score each on its
    `val_data`; writes curve.json and curve.png into `output` (subset runs in n<rows>/, subsets in data/)
    and returns what curve.json holds."""
    from ..tasks import get_task

    cfg = build_config(None, **config) if isinstance(config, dict) else config
    fractions = parse_sizes(sizes)
    if not cfg.val_data:
        raise TunesmithError("curve needs --val-data: one validation file every size is scored on")
    val = Path(cfg.val_data)
    if not val.is_file():
        raise TunesmithError(f"{val}: validation file not found")
    src = Path(cfg.data)
    task = get_task(cfg.task)
    kind, units = _read_units(src, task)
    subsets = subset_indices(len(units), fractions, cfg.seed)
    out = Path(output)
    _prepare_output(out, force, [src, val])
    (out / "data").mkdir()

    from .checkpoint import write_json_atomic
    from .loop import train  # torch loads here, after the cheap checks

    result = {
        "task": cfg.task,
        "metric": None,
        "higher_is_better": None,
        "train_data": str(src),
        "val_data": str(val),
        "train_rows": len(units),
        "seed": cfg.seed,
        "sizes": [],
        "trend": None,
        "sentence": "",
        "plot": "curve.png",
    }
    t_all = time.perf_counter()
    for i, (frac, idx) in enumerate(zip(fractions, subsets), start=1):
        rows = len(idx)
        data_file = _write_subset(kind, units, idx, out / "data" / f"train_{rows}rows")
        run_dir = out / f"n{rows}"
        log(f"curve: size {i}/{len(fractions)}: {frac:g} of the training rows = {rows} rows -> {run_dir}")
        run = train(cfg.model_copy(update={"data": str(data_file), "output": str(run_dir)}), log=log)
        t_eval = time.perf_counter()
        scores = run.evaluate(val, base=False, save=True)
        eval_seconds = time.perf_counter() - t_eval
        tuned = {k: v for k, v in scores["tuned"].items() if is_num(v)}
        if result["metric"] is None:
            result["metric"] = main_metric(tuned, task.SELECT_METRICS)
            result["higher_is_better"] = result["metric"] not in LOWER_BETTER
        score = tuned.get(result["metric"])
        summary = run.summary
        result["sizes"].append(
            {
                "fraction": frac,
                "rows": rows,
                "data": str(data_file.relative_to(out)),
                "run": run_dir.name,
                "score": score,
                "metrics": tuned,
                "train_seconds": summary["train_seconds"],
                "eval_seconds": round(eval_seconds, 1),
                "steps": summary.get("steps"),
                "best_step": summary.get("best_step"),
            }
        )
        shown = "not measured" if score is None else f"{score:.4g}"
        log(
            f"curve: {rows} rows: validation {result['metric']} {shown} "
            f"(train {summary['train_seconds']:.0f} s, eval {eval_seconds:.0f} s)"
        )
        del run, scores
        gc.collect()

    trend = fit_trend([(s["rows"], s["score"]) for s in result["sizes"]])
    result["trend"] = trend
    result["sentence"] = trend_sentence(trend, result["metric"] or "score")
    result["seconds"] = round(time.perf_counter() - t_all, 1)
    plot_curve(result, out / "curve.png")
    write_json_atomic(out / "curve.json", result)
    log(f"curve: {result['sentence']} ({out / 'curve.json'}, {out / 'curve.png'})")
    return result
