"""The comparison table `tunesmith eval` and the demo print: base model (or baselines) beside the tuned run."""

from __future__ import annotations

LOWER_BETTER = {"loss", "perplexity"}


def _change(key, b, t):
    better = (t < b) if key in LOWER_BETTER else (t > b)
    return f"[{'green' if better else 'red'}]{t - b:+.4g}[/]"


def print_comparison(result: dict, title: str):
    """One row per scalar metric: the base model (or the chance/majority/linear-probe baselines) and the
    options of `--baselines` beside the tuned run; then the retrieval figure and the verdict, where present."""
    from rich.console import Console
    from rich.table import Table

    from .verdict import LABELS

    head = lambda c: c if c == "base" else LABELS.get(c, c)  # the base model's column keeps its name
    fmt = lambda xs: ["-" if x is None else f"{x:.4g}" for x in xs]
    base, tuned = result.get("base") or {}, result["tuned"]
    baselines = [k for k in ("chance", "majority", "linear_probe") if isinstance(base.get(k), dict)]
    cols = baselines or ["base"]
    before = [k for k in ("few_shot", "rag") if isinstance(result.get(k), dict)]  # --baselines, no training
    after = [k for k in ("tuned_rag",) if isinstance(result.get(k), dict)]
    # With --baselines' extra columns the change column goes (the verdict compares), so the table fits 80 columns.
    change = not (before or after)
    heads = ["metric", *map(head, cols + before), "fine-tuned", *map(head, after)]
    if change:
        heads.append(f"change vs {head(cols[-1])}")
    rows = []
    for key, t in tuned.items():
        if not isinstance(t, (int, float)) or key.startswith("_"):
            continue
        refs = [(base.get(c) or {}).get(key) for c in baselines] if baselines else [base.get(key)]
        row = [
            key,
            *fmt(refs + [result[k].get(key) for k in before]),
            f"{t:.4g}",
            *fmt([result[k].get(key) for k in after]),
        ]
        if change:
            row.append("" if refs[-1] is None else _change(key, refs[-1], t))
        rows.append(row)
    table = Table(title=title)
    for i, name in enumerate(heads):  # numbers are never cut short (the change column holds markup); headers may wrap
        widest = 0 if change and i == len(heads) - 1 else max((len(r[i]) for r in rows), default=0)
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0, min_width=widest or None)
    for row in rows:
        table.add_row(*row)
    console = Console(stderr=True)
    console.print(table)
    if result.get("collapsed"):
        console.print(f"warning: {result['collapsed']}; retrain with a lower --lr", markup=False)
    ret = result.get("retrieval")
    if ret:
        if ret.get("recall_at_k") is None:
            said = f"recall@{ret['k']} not measured: no test row carries must_contain"
        else:
            where = "training answer" if ret["source"] == "training pairs" else "passage"
            said = (
                f"recall@{ret['k']} {ret['recall_at_k']:.1%}: {round(ret['recall_at_k'] * ret['rows'])} of "
                f"{ret['rows']} test rows with must_contain have it in a retrieved {where}"
            )
        console.print(f"retrieval ({ret['source']}, {ret['texts']} texts): {said}", markup=False)
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
        _print_general(result["general"], console)


def pct(x: float, than: float | None = None) -> str:
    """A fraction as a whole percentage, with one decimal where that would read the same as `than`."""
    whole = f"{x * 100:.0f}%"
    return f"{x * 100:.1f}%" if than is not None and whole == f"{than * 100:.0f}%" else whole


def _print_general(block: dict, console) -> None:
    """The general-ability probe (eval/general.py, general_block) under the comparison table."""
    from rich.table import Table

    table = Table(title=f"general-ability probe ({block['probe']}, {block['questions']} questions)")
    for c in ("metric", "base", "fine-tuned", "change"):
        table.add_column(c, justify="left" if c == "metric" else "right")
    base = block.get("base") or {}
    for key in ("contains", "perplexity"):
        t, b = block["tuned"].get(key), base.get(key)
        if t is not None:
            table.add_row(key, "-" if b is None else f"{b:.4g}", f"{t:.4g}", "" if b is None else _change(key, b, t))
    console.print(table)
    d = block.get("drop")
    if d is not None:
        said = f"fell {pct(d)}" if d > 0 else "did not fall" if d == 0 else f"rose {pct(-d)}"
        console.print(f"general-ability probe: contains {said} from the base model (relative)")
