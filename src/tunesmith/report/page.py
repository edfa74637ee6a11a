"""`tunesmith report RUN`: one self-contained HTML page about a run folder.

It reads only files (config.yaml, summary.json, metrics.jsonl, eval_*.json, confusion_*.png): no model is
loaded and nothing is fetched. Charts are inline SVG, the CSS is inline, there is no script. Every section says
"not measured" when its data is absent. Key numbers carry `data-*` attributes (a table cell of an evaluation:
`data-metric="tuned.contains"` and `data-value`, the number exactly as the JSON has it) so tools and tests can
read the page.
"""

from __future__ import annotations

import base64
import json
import math
import re
from html import escape
from pathlib import Path

import yaml

from ..errors import TunesmithError
from ..eval.compare import LOWER_BETTER
from ..train.curve import main_metric
from ..train.report import is_num, loss_points, read_metrics
from .charts import line_chart

# Systems an evaluation may hold, in the order a table shows them: base-model baselines, then the run.
SYSTEMS = {
    "chance": "chance",
    "majority": "majority class",
    "linear_probe": "linear probe",
    "base": "base model",
    "few_shot": "few-shot (base)",
    "rag": "RAG (base + retrieval)",
    "tuned": "fine-tuned",
    "tuned_rag": "fine-tuned + RAG",
}
SHOWN_ELSEWHERE = {"rows", "verdict", "retrieval", "general", "confusion_matrix", *SYSTEMS}
VAL_METRICS = ("contains", "token_f1", "accuracy", "macro_f1", "entity_f1")
MAX_SAMPLES = 10

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:0 0 12px}h3{font-size:16px;margin:18px 0 8px}
.sub{color:#555;margin:0 0 14px}
nav{display:flex;flex-wrap:wrap;gap:6px 14px;margin:10px 0 18px;font-size:14px}
nav a{color:#0b5cad;text-decoration:none}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 18px;margin:0 0 16px}
table{border-collapse:collapse;margin:4px 0 8px;font-size:14px}
th,td{border:1px solid #e1e4e8;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.missing{color:#8a6d00;background:#fff8e1;display:inline-block;padding:2px 8px;border-radius:4px;margin:2px 0}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #e1e4e8;border-radius:8px;padding:8px 14px;min-width:150px}
.kpi b{display:block;font-size:22px}.kpi span{color:#555;font-size:13px}
.verdict{border-left:4px solid #2ca02c;background:#f1f9f1;padding:8px 12px;margin:8px 0}
.samples td{max-width:260px;white-space:pre-wrap;word-break:break-word}
.chart{max-width:100%;height:auto;display:block;margin:6px 0}
.chart .tick{font-size:11px;fill:#555}.chart .axis{font-size:12px;fill:#333}
.chart .legend{font-size:12px;fill:#333}.chart .marker-label{font-size:11px;fill:#2ca02c}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:13px;border-radius:6px}
details{margin:6px 0}
img.png{max-width:100%}
dl.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:0 22px;margin:4px 0 8px}
dl.grid div{display:flex;justify-content:space-between;border-bottom:1px solid #eef0f2;padding:3px 0;font-size:14px}
dl.grid dt{font-weight:600;color:#333}dl.grid dd{margin:0 0 0 12px;text-align:right;word-break:break-word}
.kpi.main{border-color:#1f77b4;background:#f2f8fd}
"""


# -- reading the run folder --------------------------------------------------------------------------------


def _json_file(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_run(run_path: str | Path) -> dict:
    """Everything the report shows, as read from the folder; absent files give None / []."""
    path = Path(run_path)
    if not path.is_dir():
        raise TunesmithError(f"{path}: no such run folder")
    cfg_file = path / "config.yaml"
    if not cfg_file.is_file():
        raise TunesmithError(f"{path}: not a tunesmith run folder (no config.yaml)")
    config_text = cfg_file.read_text(encoding="utf-8", errors="replace")
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError:
        config = None
    summary = _json_file(path / "summary.json")
    evals, slugs = [], set()
    for f in sorted(path.glob("eval_*.json")):
        data = _json_file(f)
        if isinstance(data, dict):
            name = f.stem[len("eval_") :]
            slug = _slug(name)
            while slug in slugs:  # "dev set" and "dev-set": element ids stay unique
                slug += "-2"
            slugs.add(slug)
            evals.append(
                {
                    "name": name,
                    "slug": slug,
                    "file": f.name,
                    "mtime": f.stat().st_mtime,
                    "result": data,
                    "systems": _systems(data),
                }
            )
    return {
        "path": path,
        "config_text": config_text,
        "config": config if isinstance(config, dict) else None,
        "summary": summary if isinstance(summary, dict) else None,
        "metrics": read_metrics(path / "metrics.jsonl"),
        "evals": evals,
    }


# -- formatting --------------------------------------------------------------------------------------------


def e(value) -> str:
    return escape(str(value), quote=True)


def fmt(v) -> str:
    """A value for a person (escaped)."""
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return e(f"{v:.4g}") if math.isfinite(v) else e(v)
    if isinstance(v, (dict, list)):
        return e(json.dumps(v, ensure_ascii=False))
    return e(v)


def data_value(v) -> str:
    """A number exactly as the JSON holds it, for a data-value attribute."""
    return e(json.dumps(v)) if is_num(v) else ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def missing(what: str, why: str = "not measured") -> str:
    return f'<p class="missing" data-missing="{e(what)}">{e(why)}</p>'


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, f"{key}.")
        else:
            out.append((key, v))
    return out


def kv_table(d: dict, attr: str, table_id: str | None = None) -> str:
    """A nested dict as a two-column table; each value cell has data-<attr>="dotted.key" (and data-value)."""
    rows = []
    for key, v in _flatten(d):
        cls = ' class="num"' if is_num(v) else ""
        rows.append(
            f'<tr><th scope="row">{e(key)}</th><td{cls} data-{attr}="{e(key)}" data-value="{data_value(v)}">'
            f"{fmt(v)}</td></tr>"
        )
    ident = f' id="{e(table_id)}"' if table_id else ""
    return f"<table{ident}>{''.join(rows)}</table>"


def kv_grid(d: dict, attr: str, grid_id: str) -> str:
    """Like kv_table, in columns: for long lists of settings."""
    items = "".join(
        f'<div><dt>{e(key)}</dt><dd data-{attr}="{e(key)}" data-value="{data_value(v)}">{fmt(v)}</dd></div>'
        for key, v in _flatten(d)
    )
    return f'<dl class="grid" id="{e(grid_id)}">{items}</dl>'


# -- sections ----------------------------------------------------------------------------------------------


def _systems(result: dict) -> dict[str, dict]:
    """{system: metrics} in table order; a base holding baselines (classify, tokens) gives those instead."""
    found = {}
    for name in SYSTEMS:
        value = result.get(name)
        if name == "base" and isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for sub, metrics in value.items():  # {"chance": {...}, "majority": {...}}
                found.setdefault(sub, metrics)
        elif isinstance(value, dict):
            found[name] = value
    return {k: found[k] for k in sorted(found, key=lambda k: list(SYSTEMS).index(k) if k in SYSTEMS else 99)}


def _scalar_keys(systems: dict[str, dict]) -> list[str]:
    keys = []
    for metrics in [systems.get("tuned", {}), *systems.values()]:
        keys += [k for k, v in metrics.items() if is_num(v) and not k.startswith("_") and k not in keys]
    for metrics in systems.values():  # a metric the JSON holds as null ("contains" without must_contain rows)
        keys += [k for k, v in metrics.items() if v is None and not k.startswith("_") and k not in keys]
    return keys


def _verdict_html(verdict, ident: str, detail: bool = True) -> str:
    """The verdict's text (eval --baselines writes {"text", "metric", "margin", "cost", ...}); with `detail`,
    its figures too."""
    if not isinstance(verdict, dict):
        return ""
    text = verdict.get("text")
    head = f'<p class="verdict" id="{e(ident)}" data-verdict="text">{e(text)}</p>' if text else ""
    rest = {k: v for k, v in verdict.items() if k != "text"}
    if not (rest and detail):
        return head
    return head + f"<details><summary>the verdict's figures</summary>{kv_table(rest, 'verdict')}</details>"


def _embed_png(run: Path, value) -> str:
    """A PNG the evaluation wrote into the run folder, as a data URI; nothing for a path outside it."""
    if not isinstance(value, str):
        return ""
    root = run.resolve()
    for candidate in (Path(value), run / Path(value).name):
        try:
            f = candidate.resolve()
        except OSError:
            continue
        if f.suffix.lower() == ".png" and root in f.parents and f.is_file() and f.stat().st_size < 5_000_000:
            data = base64.b64encode(f.read_bytes()).decode()
            return f'<img class="png" alt="confusion matrix" src="data:image/png;base64,{data}">'
    return ""


def _per_class(title: str, per: dict, attr: str) -> str:
    cols = ("precision", "recall", "f1", "support")
    rows = []
    for name, m in per.items():
        if not isinstance(m, dict):
            continue
        cells = "".join(
            f'<td class="num" data-{attr}="{e(name)}.{c}" data-value="{data_value(m.get(c))}">{fmt(m.get(c))}</td>'
            for c in cols
        )
        rows.append(f"<tr><th scope='row'>{e(name)}</th>{cells}</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("name", *cols))
    return f"<h3>{e(title)}</h3><table><tr>{head}</tr>{''.join(rows)}</table>" if rows else ""


def eval_section(run: dict) -> str:
    if not run["evals"]:
        return missing(
            "evaluation", "not measured: no eval_*.json in the run folder (run tunesmith eval RUN --data FILE)"
        )
    parts = []
    for ev in run["evals"]:
        result, name, slug, systems = ev["result"], ev["name"], ev["slug"], ev["systems"]
        parts.append(
            f'<h3 id="eval-{slug}-title">{e(ev["file"])}: {fmt(result.get("rows"))} rows</h3>'
            if is_num(result.get("rows"))
            else f'<h3 id="eval-{slug}-title">{e(ev["file"])}</h3>'
        )
        if systems:
            keys = _scalar_keys(systems)
            head = "".join(f'<th data-system="{e(s)}">{e(SYSTEMS.get(s, s))}</th>' for s in systems)
            body = []
            for key in keys:
                better = "lower is better" if key in LOWER_BETTER else ""
                cells = "".join(
                    f'<td class="num" data-metric="{e(s)}.{e(key)}" data-value="{data_value(m.get(key))}">'
                    f"{fmt(m.get(key))}</td>"
                    for s, m in systems.items()
                )
                body.append(f'<tr><th scope="row" title="{better}">{e(key)}</th>{cells}</tr>')
            parts.append(
                f'<table class="eval" id="eval-{slug}" data-eval="{e(name)}"><tr><th>metric</th>{head}</tr>'
                f"{''.join(body)}</table>"
            )
        else:
            parts.append(missing(f"eval-{slug}", "not measured: this file holds no system's metrics"))
        parts.append(_verdict_html(result.get("verdict"), f"verdict-{slug}"))
        tuned = systems.get("tuned", {})
        for key, title in (("per_class", "per class (fine-tuned)"), ("per_type", "per entity type (fine-tuned)")):
            if isinstance(tuned.get(key), dict):
                parts.append(_per_class(title, tuned[key], key.replace("_", "-")))
        png = _embed_png(run["path"], result.get("confusion_matrix"))
        if png:
            parts.append(f"<h3>confusion matrix</h3>{png}")
        if isinstance(result.get("retrieval"), dict):
            parts.append("<h3>retrieval</h3>" + kv_table(result["retrieval"], "retrieval", f"retrieval-{slug}"))
        elif result.get("retrieval") is not None:
            parts.append(f"<h3>retrieval</h3><p data-retrieval>{fmt(result['retrieval'])}</p>")
        other = {k: v for k, v in result.items() if k not in SHOWN_ELSEWHERE and not k.startswith("_")}
        if other:
            parts.append(
                "<details><summary>other fields in this file</summary>"
                f"<pre>{e(json.dumps(other, indent=2, ensure_ascii=False))}</pre></details>"
            )
    return "".join(parts)


def headline(run: dict) -> str:
    """The newest evaluation's main metric, base against fine-tuned, and its verdict."""
    cards, verdict = [], ""
    summary = run["summary"] or {}
    if run["evals"]:
        ev = max(run["evals"], key=lambda x: x["mtime"])
        systems = ev["systems"]
        metric = main_metric(systems.get("tuned", {}))
        verdict = _verdict_html(ev["result"].get("verdict"), "verdict", detail=False)
        if metric:
            for s, m in systems.items():
                v = m.get(metric)
                cards.append(
                    f'<div class="kpi{" main" if s == "tuned" else ""}" id="kpi-{e(s)}" data-metric="{e(s)}.{e(metric)}" data-value="{data_value(v)}">'
                    f"<b>{fmt(v)}</b><span>{e(SYSTEMS.get(s, s))}: {e(metric)} on {e(ev['file'])}</span></div>"
                )
    if is_num(summary.get("best_step")):
        cards.append(
            f'<div class="kpi" id="kpi-best-step" data-value="{data_value(summary["best_step"])}">'
            f"<b>step {summary['best_step']}</b><span>kept checkpoint ({e(summary.get('select_by', ''))})</span></div>"
        )
    if is_num(summary.get("train_seconds")):
        cards.append(
            f'<div class="kpi" id="kpi-train-seconds" data-value="{data_value(summary["train_seconds"])}">'
            f"<b>{summary['train_seconds'] / 60:.1f} min</b><span>training time</span></div>"
        )
    if not cards and not verdict:
        return missing("headline")
    return f'<div class="kpis">{"".join(cards)}</div>{verdict}'


def config_section(run: dict) -> str:
    if run["config"] is None:
        return missing("config", "not measured: config.yaml is not a mapping") + f"<pre>{e(run['config_text'])}</pre>"
    return (
        kv_grid(run["config"], "config", "config-table")
        + f"<details><summary>config.yaml as saved</summary><pre>{e(run['config_text'])}</pre></details>"
    )


def data_section(run: dict) -> str:
    cfg = run["config"] or {}
    files = {k: cfg.get(k) for k in ("data", "val_data") if k in cfg}
    info = (run["summary"] or {}).get("data")
    if isinstance(info, dict) and info:
        return kv_table({**files, **info}, "data", "data-table")
    return (kv_table(files, "data", "data-table") if files else "") + missing("data")


def _kept_marker(run: dict) -> tuple[float, str] | None:
    """The kept checkpoint's step, as a chart marker."""
    best = (run["summary"] or {}).get("best_step")
    return (best, f"kept: step {best}") if is_num(best) else None


def training_section(run: dict) -> str:
    rows, summary = run["metrics"], run["summary"] or {}
    marker = _kept_marker(run)
    train, val = loss_points(rows)
    parts = []
    chart = line_chart(
        [{"name": "train loss", "points": train}, {"name": "validation loss", "points": val, "dots": True}],
        chart_id="loss",
        x_label="optimizer step",
        y_label="loss (nats/token)",
        marker=marker,
    )
    parts.append(chart or missing("loss-curve"))
    scores = [
        {
            "name": f"validation {m}",
            "points": [(r["step"], r[f"eval_{m}"]) for r in rows if is_num(r.get(f"eval_{m}"))],
            "dots": True,
        }
        for m in VAL_METRICS
    ]
    score_chart = line_chart(
        [s for s in scores if s["points"]],
        chart_id="val-scores",
        x_label="optimizer step",
        y_label="validation score",
        marker=marker,
    )
    if score_chart:
        parts.append("<h3>validation scores</h3>" + score_chart)
    facts = {
        k: summary.get(k)
        for k in (
            "steps",
            "epochs",
            "best_step",
            "select_by",
            f"best_eval_{summary.get('select_by')}",
            "best_eval_loss",
            "stopped_early",
            "stop_reason",
        )
        if k in summary
    }
    if facts:
        parts.append(kv_table(facts, "summary", "training-table"))
    elif not summary:
        parts.append(missing("training-summary", "not measured: no summary.json (the run did not finish)"))
    return "".join(parts)


GENERAL = {  # metrics.jsonl's general-ability fields (train/forgetting.py): data attribute of their table cells
    "contains": "general-step",
    "perplexity": "general-perplexity-step",
    "drop": "general-drop-step",
}


def forgetting_section(run: dict) -> str:
    rows = [(r["step"], {k: r.get(f"general_{k}") for k in GENERAL}) for r in run["metrics"]]
    rows = [(step, g) for step, g in rows if is_num(g["contains"]) or is_num(g["perplexity"])]
    parts = []
    if rows:
        marker = _kept_marker(run)
        for key, chart_id, y_label in (
            ("contains", "forgetting", "general-knowledge contains"),
            ("perplexity", "forgetting-perplexity", "general-text perplexity"),
        ):
            points = [(step, g[key]) for step, g in rows if is_num(g[key])]
            series = [{"name": f"general {key}", "points": points, "dots": True}]
            parts.append(
                line_chart(series, chart_id=chart_id, x_label="optimizer step", y_label=y_label, marker=marker)
            )
        body = "".join(
            f'<tr><td class="num">{step}</td>'
            + "".join(
                f'<td class="num" data-{attr}="{step}" data-value="{data_value(g[k])}">{fmt(g[k])}</td>'
                for k, attr in GENERAL.items()
            )
            + "</tr>"
            for step, g in rows
        )
        parts.append(
            '<table id="forgetting-table"><tr><th>step</th><th>general contains</th><th>general perplexity</th>'
            f"<th>drop from step 0 (relative)</th></tr>{body}</table>"
        )
    for ev in run["evals"]:
        general = ev["result"].get("general")
        if isinstance(general, dict):
            parts.append(f"<h3>{e(ev['file'])}: general-ability probe</h3>" + _general_block(general, ev["slug"]))
    return "".join(parts) or missing("forgetting")


def _general_block(general: dict, slug: str) -> str:
    """`tunesmith eval`'s "general" block: {"probe", "questions", "base", "tuned", "drop"}, base beside tuned."""
    systems = {k: general[k] for k in ("base", "tuned") if isinstance(general.get(k), dict)}
    if not systems:
        return kv_table(general, "general", f"general-{slug}")
    keys = _scalar_keys(systems)
    head = "".join(f"<th>{e(SYSTEMS[s])}</th>" for s in systems)
    body = "".join(
        f"<tr><th scope='row'>{e(k)}</th>"
        + "".join(
            f'<td class="num" data-general="{s}.{e(k)}" data-value="{data_value(m.get(k))}">{fmt(m.get(k))}</td>'
            for s, m in systems.items()
        )
        + "</tr>"
        for k in keys
    )
    rest = {k: v for k, v in general.items() if k not in systems}
    return f'<table id="general-{slug}"><tr><th>metric</th>{head}</tr>{body}</table>' + (
        kv_table(rest, "general") if rest else ""
    )


def samples_section(run: dict) -> str:
    parts = []
    for ev in run["evals"]:
        systems = {s: m for s, m in ev["systems"].items() if isinstance(m.get("samples"), list) and m["samples"]}
        if not systems:
            continue
        cols = list(systems)  # in table order
        first = systems.get("tuned", systems[cols[0]])
        n = min(MAX_SAMPLES, max(len(m["samples"]) for m in systems.values()))
        head = "<th>#</th><th>question</th><th>reference</th>" + "".join(
            f'<th data-system="{e(s)}">{e(SYSTEMS.get(s, s))}</th>' for s in cols
        )
        body = []
        for i in range(n):
            ref_row = first["samples"][i] if i < len(first["samples"]) else {}
            if not isinstance(ref_row, dict):
                ref_row = {}
            cells = []
            for s in cols:
                row = systems[s]["samples"][i] if i < len(systems[s]["samples"]) else None
                answer = row.get("answer") if isinstance(row, dict) else None
                cells.append(f'<td data-system="{e(s)}">{fmt(answer)}</td>')
            body.append(
                f'<tr data-sample="{i}"><td class="num">{i + 1}</td><td data-field="question">{fmt(ref_row.get("prompt"))}</td>'
                f'<td data-field="reference">{fmt(ref_row.get("reference"))}</td>{"".join(cells)}</tr>'
            )
        parts.append(
            f"<h3>{e(ev['file'])}</h3>"
            f'<table class="samples" id="samples-{ev["slug"]}" data-samples="{e(ev["name"])}"><tr>{head}</tr>'
            f"{''.join(body)}</table>"
        )
    return "".join(parts) or missing("samples")


def _usd(x: float) -> str:
    return "under $0.01" if x < 0.01 else f"${x:,.2f}"


def cost_section(run: dict) -> str:
    summary = run["summary"] or {}
    keys = (
        "train_seconds",
        "eval_seconds",
        "tokens",
        "tokens_per_s",
        "peak_memory_gb",
        "trainable_params",
        "total_params",
        "dtype",
        "quantize",
    )
    facts = {k: summary[k] for k in keys if k in summary}
    parts = [kv_table(facts, "summary", "cost-table")] if facts else [missing("timing")]
    # The estimate `tunesmith eval --baselines` puts in its verdict: the newest evaluation that has one.
    costs = [
        (ev["mtime"], ev["file"], v["cost"])
        for ev in run["evals"]
        if isinstance(v := ev["result"].get("verdict"), dict) and isinstance(v.get("cost"), dict)
    ]
    if not costs:
        parts.append('<p>cost: <span class="missing" data-missing="cost">not measured</span></p>')
        return "".join(parts)
    _, source, cost = max(costs, key=lambda c: c[0])
    usd = cost.get("estimated_usd")
    line = (
        f'<p>estimated cost: <b id="cost-value" data-value="{data_value(usd)}">{_usd(usd)}</b> '
        f"(an estimate, from {e(source)})</p>"
        if is_num(usd)
        else f"<p>cost, from {e(source)}: no price estimate</p>"
    )
    parts.append(line + kv_table(cost, "cost", "cost-detail"))
    return "".join(parts)


SECTIONS = (
    ("headline", "At a glance", headline),
    ("config", "Config", config_section),
    ("data", "Data", data_section),
    ("training", "Training: loss and the kept checkpoint", training_section),
    ("evaluation", "Evaluation", eval_section),
    ("forgetting", "Forgetting: general knowledge during training", forgetting_section),
    ("samples", "Sample answers", samples_section),
    ("cost", "Time, tokens and cost", cost_section),
)


def render_report(run_path: str | Path) -> str:
    """The report page for a run folder, as an HTML string."""
    run = read_run(run_path)
    cfg, summary = run["config"] or {}, run["summary"]
    title = f"tunesmith run: {run['path'].resolve().name}"
    sub = " &middot; ".join(
        f"{k} <b>{fmt(cfg.get(k))}</b>" for k in ("task", "model", "method") if cfg.get(k) is not None
    )
    state = "finished" if summary is not None else "did not finish (no summary.json): interrupted or still running"
    nav = "".join(f'<a href="#{sid}">{e(name)}</a>' for sid, name, _ in SECTIONS)
    body = "".join(f'<section id="{sid}"><h2>{e(name)}</h2>{fn(run)}</section>' for sid, name, fn in SECTIONS)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{e(title)}</h1><p class="sub">{sub} &middot; <span id="run-state">{e(state)}</span> &middot; '
        f"{e(run['path'])}</p><nav>{nav}</nav>{body}"
        '<p class="sub">Written by <code>tunesmith report</code> from the run folder\'s files.</p>'
        "</main></body></html>\n"
    )


def write_report(run_path: str | Path, out: str | Path | None = None) -> Path:
    """Write the report page for `run_path` to `out` (default: <run>/report.html); returns the path written."""
    html = render_report(run_path)
    dest = Path(out) if out is not None else Path(run_path) / "report.html"
    if dest.is_dir():
        raise TunesmithError(f"{dest}: is a folder; give --out a file name such as report.html")
    if not dest.parent.is_dir():
        raise TunesmithError(f"{dest.parent}: folder not found for --out")
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(dest)
    return dest
