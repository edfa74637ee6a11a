"""The comparison table `tunesmith eval` and the demo print: base model (or baselines) beside the tuned run."""

from __future__ import annotations

LOWER_BETTER = {"loss", "perplexity"}


def _change(key, b, t):
    better = (t < b) if key in LOWER_BETTER else (t > b)
    return f"[{'green' if better else 'red'}]{t - b:+.4g}[/]"


def print_comparison(result: dict, title: str):
    """One row per scalar metric: the base model (or the chance/majority baselines) beside the tuned run."""
    from rich.console import Console
    from rich.table import Table

    base, tuned = result.get("base") or {}, result["tuned"]
    baselines = [k for k in ("chance", "majority") if isinstance(base.get(k), dict)]
    cols = baselines or ["base"]
    table = Table(title=title)
    table.add_column("metric")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("fine-tuned", justify="right")
    table.add_column(f"change vs {cols[-1]}", justify="right")
    for key, t in tuned.items():
        if not isinstance(t, (int, float)) or key.startswith("_"):
            continue
        refs = [(base.get(c) or {}).get(key) for c in baselines] if baselines else [base.get(key)]
        table.add_row(
            key,
            *["-" if b is None else f"{b:.4g}" for b in refs],
            f"{t:.4g}",
            "" if refs[-1] is None else _change(key, refs[-1], t),
        )
    console = Console(stderr=True)
    console.print(table)
    per = tuned.get("per_class") or tuned.get("per_type")
    if per:
        detail = Table(title="per class" if "per_class" in tuned else "per entity type")
        for c in ("name", "precision", "recall", "f1", "support"):
            detail.add_column(c, justify="left" if c == "name" else "right")
        for name, m in per.items():
            detail.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
        console.print(detail)
    if result.get("confusion_matrix"):
        console.print(f"confusion matrix: {result['confusion_matrix']}")
