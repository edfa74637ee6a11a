"""The comparison table `tunesmith eval` and the demo print: base model (or baselines) beside the tuned run."""

from __future__ import annotations

LOWER_BETTER = {"loss", "perplexity"}
HEADERS = {"linear_probe": "linear-probe", "few_shot": "few-shot", "tuned_rag": "tuned+rag"}


def _change(key, b, t):
    better = (t < b) if key in LOWER_BETTER else (t > b)
    return f"[{'green' if better else 'red'}]{t - b:+.4g}[/]"


def print_comparison(result: dict, title: str):
    """One row per scalar metric: the base model (or the chance/majority/linear-probe baselines) and the
    options of `--baselines` beside the tuned run; then the retrieval figure and the verdict, where present."""
    from rich.console import Console
    from rich.table import Table

    base, tuned = result.get("base") or {}, result["tuned"]
    baselines = [k for k in ("chance", "majority", "linear_probe") if isinstance(base.get(k), dict)]
    cols = baselines or ["base"]
    before = [k for k in ("few_shot", "rag") if isinstance(result.get(k), dict)]  # --baselines, no training
    after = [k for k in ("tuned_rag",) if isinstance(result.get(k), dict)]
    # With --baselines' extra columns the change column goes (the verdict compares), so the table fits 80 columns.
    change = not (before or after)
    heads = ["metric", *[HEADERS.get(c, c) for c in cols + before], "fine-tuned", *[HEADERS.get(c, c) for c in after]]
    if change:
        heads.append(f"change vs {HEADERS.get(cols[-1], cols[-1])}")
    rows = []
    for key, t in tuned.items():
        if not isinstance(t, (int, float)) or key.startswith("_"):
            continue
        refs = [(base.get(c) or {}).get(key) for c in baselines] if baselines else [base.get(key)]
        fmt = lambda xs: ["-" if x is None else f"{x:.4g}" for x in xs]
        row = [key, *fmt(refs + [result[k].get(key) for k in before]), f"{t:.4g}"]
        row += fmt([result[k].get(key) for k in after])
        if change:
            row.append("" if refs[-1] is None else _change(key, refs[-1], t))
        rows.append(row)
    table = Table(title=title)
    for i, head in enumerate(heads):  # numbers are never cut short; headers may wrap
        widest = max((len(r[i]) for r in rows), default=0) if i < len(heads) - change else 0
        table.add_column(head, justify="left" if i == 0 else "right", no_wrap=i == 0, min_width=widest or None)
    for row in rows:
        table.add_row(*row)
    console = Console(stderr=True)
    console.print(table)
    ret = result.get("retrieval")
    if ret:
        console.print(
            f"retrieval ({ret['source']}, {ret['texts']} texts): "
            + (
                f"recall@{ret['k']} {ret['recall_at_k']:.1%}: {round(ret['recall_at_k'] * ret['rows'])} of {ret['rows']} "
                "test rows with must_contain have it in a retrieved "
                + ("training answer" if ret["source"] == "training pairs" else "passage")
                if ret.get("recall_at_k") is not None
                else f"recall@{ret['k']} not measured: no test row carries must_contain"
            ),
            markup=False,
        )
    if result.get("verdict"):
        console.print("verdict: " + result["verdict"]["text"], markup=False)
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
    if result.get("general"):
        from .general import print_general

        print_general(result["general"], console)
