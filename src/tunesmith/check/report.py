"""The readable form of a `check` report: rich tables on stderr, like `tunesmith eval`'s."""

from __future__ import annotations

SHOWN_INVALID = 30  # rows listed on screen; --json lists every one
BAR = 40  # histogram width in characters


def _where(e: dict) -> str:
    return f"{e['file']}:{e['line']}" if e.get("line") else e["file"]


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _examples(groups, n=2) -> str:
    return "; ".join(" = ".join(g[:3]) + (" ..." if len(g) > 3 else "") for g in groups[:n])


def print_report(res: dict, console=None) -> None:
    from rich.console import Console

    console = console or Console(stderr=True)
    fmt = res.get("format_description") or res.get("file_kind") or "?"
    console.print(f"[bold]{res['file']}[/]: {fmt}, {res['rows']:,} rows ({res['valid_rows']:,} valid)")
    console.print(f"task {res['task']}, model {res['model']}")
    for s in ("val", "test"):
        if s in res:
            v = res[s]
            console.print(f"{s}: {v['file']}: {v['format'] or '?'}, {v['rows']:,} rows ({v['invalid']} invalid)")
    _invalid(console, res["invalid_rows"])
    if res["token_stats"]:
        _lengths(console, res)
    if res["duplicates"] is not None:
        _content(console, res)
    if res["estimate"]:
        _estimate(console, res["estimate"])
    if res.get("fix") and res["fix"].get("error"):
        console.print(f"fix: {res['fix']['error']}")
    elif res.get("fix"):
        f = res["fix"]
        why = ", ".join(f"{n} {k}" for k, n in f["removed"].items()) or "nothing to remove"
        console.print(
            f"fix: wrote {f['output']}: {f['rows_out']:,} of {f['rows_in']:,} rows ({why}); "
            f"each change in {f['log']}; the input is unchanged"
        )
    if res["invalid_rows"]:
        console.print(f"[bold red]{res['errors']} error(s)[/]: training would stop on these rows")
    else:
        console.print(
            "[bold green]no errors[/]"
            + (f"; {len(res['warnings'])} warning(s), which do not fail the check" if res["warnings"] else "")
        )


def _invalid(console, rows):
    from rich.table import Table

    if not rows:
        return
    t = Table(title=f"invalid rows ({len(rows)})", title_justify="left")
    for c in ("where", "field", "problem"):
        t.add_column(c, overflow="fold")
    for e in rows[:SHOWN_INVALID]:
        t.add_row(_where(e), e.get("field") or "", e["problem"])
    console.print(t)
    if len(rows) > SHOWN_INVALID:
        console.print(f"... and {len(rows) - SHOWN_INVALID} more (--json lists them all)")


def _lengths(console, res):
    from rich.table import Table

    ts = res["token_stats"]
    t = Table(
        title=f"tokens per row ({res['model']} tokenizer{' and chat template' if res['chat'] else ''})",
        title_justify="left",
    )
    for c in ("min", "median", "p95", "max", "mean", f"over max_seq_len {ts['max_seq_len']}"):
        t.add_column(c, justify="right")
    over = f"{ts['truncated']} truncated, {ts['dropped']} dropped"
    if res["packed"]:
        over = "packed into blocks (nothing cut)"
    t.add_row(*(f"{ts[k]:g}" for k in ("min", "median", "p95", "max", "mean")), over)
    console.print(t)
    top = max(b["count"] for b in ts["histogram"])
    for b in ts["histogram"]:
        mark = " [red](over max_seq_len)[/]" if b["from"] >= ts["max_seq_len"] else ""
        bar = "#" * max(1 if b["count"] else 0, round(BAR * b["count"] / top))
        console.print(f"  {b['from']:>6}-{b['to'] - 1:<6} {bar:<{BAR}} {b['count']:,}{mark}", highlight=False)


def _content(console, res):
    from rich.table import Table

    t = Table(title="duplicates, leakage, conflicts", title_justify="left")
    t.add_column("check")
    t.add_column("rows", justify="right")
    t.add_column("examples", overflow="fold")
    t.add_row("exact duplicates (extra copies)", str(res["duplicates"]), _examples(res["duplicate_groups"]))
    t.add_row(
        f"near duplicates (normalised text, or word 3-gram Jaccard >= {res['near_threshold']})",
        str(res["near_duplicates"]),
        _examples(res["near_duplicate_groups"]),
    )
    for s, n in res["leakage"].items():
        if n is not None:
            t.add_row(f"{s} rows also in training", str(n), ", ".join(res["leakage_examples"].get(s, [])[:3]))
    t.add_row("same input, different output", str(res["conflicts"]), _examples(res["conflict_groups"]))
    console.print(t)
    bal = res.get("class_balance")
    if bal and bal["labels"]:
        total = sum(bal["labels"].values())
        b = Table(title=f"class balance (max/min {bal['max_to_min']})", title_justify="left")
        for c in ("label", bal["unit"], "share"):
            b.add_column(c, justify="left" if c == "label" else "right")
        for name, n in list(bal["labels"].items())[:20]:
            b.add_row(str(name), f"{n:,}", f"{n / total:.1%}")
        console.print(b)
        for u in bal["unseen_in_training"][:5]:
            console.print(f"tag not seen in training: {u}")
    if any(res["pii"].values()):
        p = Table(title="likely personal data (a warning: nothing is changed, --fix included)", title_justify="left")
        for c in ("kind", "hits", "examples"):
            p.add_column(c)
        for kind, n in res["pii"].items():
            ex = ", ".join(f"{e['file']}:{e['line']} ({e['match']})" for e in res["pii_examples"][kind])
            p.add_row(kind, str(n), ex)
        console.print(p)


def _estimate(console, e):
    epochs = (
        f"up to {e['epochs']:g} epochs (auto cap; stops earlier when validation stops improving)"
        if e["epochs_auto"]
        else f"{e['epochs']:g} epochs"
    )
    console.print(
        f"estimate: {e['train_rows']:,} training items, {epochs}, batch {e['batch_size']}"
        f"{' x accum ' + str(e['grad_accum']) if e['grad_accum'] > 1 else ''}: "
        f"{e['steps']:,} steps, {e['tokens']:,} tokens"
    )
    cal = e.get("calibration")
    if cal and "error" in cal:
        console.print(f"  time not measured: {cal['error']}")
    elif cal:
        console.print(
            f"  measured here: {cal['tokens_per_s']:,.0f} tokens/s ({e['method']}, batch of "
            f"{cal['batch_rows']} median-length rows = {cal['batch_tokens']:,} tokens, "
            f"{cal['step_seconds']:.2f} s/step over {cal['steps_timed']} steps after a warm-up) "
            f"-> about [bold]{_duration(e['seconds'])}[/] of training, validation passes not included"
        )
    else:
        console.print("  time not measured (--no-estimate)")
