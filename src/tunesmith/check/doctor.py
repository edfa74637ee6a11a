"""`tunesmith check`: the data doctor. Everything training would object to, and what it would cost,
before any compute is spent. Errors (rows training would refuse) make it fail; the rest are warnings.

    from tunesmith.check import check
    report = check("train.jsonl", val="val.jsonl", model="smollm2-135m")   # the same dict as --json
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from ..config import RunConfig, build_config
from ..data import validate
from ..data.formats import describe
from ..data.validate import summary
from ..errors import TunesmithError
from ..tasks import get_task
from . import dedup, pii
from . import estimate as est
from . import fix as fixer

SPLITS = ("val", "test")


def invalid_rows(path, task: str = "sft", cfg: RunConfig | None = None) -> list[dict]:
    """Every problem in one file as {file, line, field, problem}; [] when training would accept it. No
    tokenizer or model is loaded (the task module is imported, and with it torch)."""
    return validate.parse(path, get_task(task), cfg or RunConfig(data=str(path), task=task)).invalid()


def _config(data, val, model, task, cfg):
    given = {"data": str(data), "val_data": None if val is None else str(val), "model": model, "task": task}
    given = {k: v for k, v in given.items() if v is not None}
    if cfg is None:
        return build_config(None, **given)
    if isinstance(cfg, dict):
        return build_config(None, **{**cfg, **given})
    return RunConfig(**{**cfg.model_dump(), **given})  # validated again: task/model may have changed


@contextmanager
def _status(message: str, show: bool):
    """A spinner on a terminal, one plain line elsewhere (CI logs), nothing for API callers."""
    if show and sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
        return
    if show:
        print(message, file=sys.stderr, flush=True)
    yield


def _format_name(task, p) -> str | None:
    """The task's own row layout by the name it gives; a detected chat/text layout as formats describes it."""
    if p.fmt is None or p.fmt == task.ROW_FORMAT:
        return task.ROW_FORMAT_NAME or p.fmt
    return describe(p.fmt)


def _unseen(task, cfg, train, others) -> tuple[list, dict | None]:
    """Label counts for the class balance, problems training would refuse in them (classify: one label),
    and val/test targets training never saw: errors or warnings, as the task says."""
    if not task.LABELS or train.error:
        return [], None
    items = [r.item for r in train.valid]
    counts: dict = {}
    for it in items:
        for lab in task.row_labels(it):
            counts[lab] = counts.get(lab, 0) + 1
    problems = (
        [validate.entry(train.path, None, msg, fld) for msg, fld in task.label_problems(counts, cfg)] if items else []
    )
    known = {t for it in items for t in task.row_targets(it)}
    unseen = []
    for p in others.values():
        for r in p.valid:
            new = [x for x in task.row_targets(r.item) if x not in known]
            error = task.unseen_problem(new[0], cfg) if new else None
            if error:
                r.problem, r.field = error
            elif new:
                unseen.append(f"{r.file}:{r.line}: {', '.join(sorted(set(new)))}")
    ordered = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    ratio = round(max(counts.values()) / min(counts.values()), 2) if counts else None
    return problems, {
        "labels": ordered,
        "max_to_min": ratio,
        "unseen_in_training": unseen,
        "unit": "rows" if task.LABELS == "labels" else "entities",
    }


def _empty_result(cfg, train) -> dict:
    task = get_task(cfg.task)
    return {
        "file": str(train.path),
        "task": cfg.task,
        "chat": task.CHAT,
        "packed": task.PACKED,
        "model": cfg.model,
        "format": train.fmt,
        "format_description": _format_name(task, train),
        "file_kind": train.kind,
        "rows": len(train.records),
        "valid_rows": len(train.valid),
        "invalid_rows": [],
        "errors": 0,
        "ok": True,
        "token_stats": None,
        "duplicates": None,
        "near_duplicates": None,
        "leakage": {s: None for s in SPLITS},
        "conflicts": None,
        "class_balance": None,
        "pii": None,
        "estimate": None,
        "warnings": [],
    }


def check(
    data,
    val=None,
    test=None,
    model=None,
    task=None,
    cfg=None,
    estimate=True,
    fix=None,
    near=True,
    near_threshold=dedup.NEAR_THRESHOLD,
    show_progress=False,
) -> dict:
    """Check a training file (and optional val/test files) for the model and task of `cfg`.

    `cfg`: a RunConfig or dict (model, task, max_seq_len, batch_size, epochs, method, columns, ...); the
    keyword arguments override it. `estimate=False` skips the calibration (tokens and steps are still given).
    `fix`: write a cleaned copy of `data` there, and OUT.changes.jsonl. Returns the report as a JSON-able dict.
    """
    cfg = _config(data, val, model, task, cfg)
    task, val = get_task(cfg.task), cfg.val_data
    train = validate.parse(data, task, cfg)
    others = {s: validate.parse(p, task, cfg) for s, p in zip(SPLITS, (val, test)) if p}
    if fix and not train.error:
        fixer.refuse(data, fix, train.kind, (val, test))
    extra, balance = _unseen(task, cfg, train, others)
    res = _empty_result(cfg, train)
    for s, p in others.items():
        res[s] = {"file": str(p.path), "format": p.fmt, "rows": len(p.records), "invalid": len(p.invalid())}
    res["invalid_rows"] = train.invalid() + extra + [e for p in others.values() for e in p.invalid()]
    if not train.error and train.valid:
        for r in (*train.valid, *(r for p in others.values() for r in p.valid)):
            r.content = task.row_content(r.item)  # what duplicates, leakage and conflicts compare
        _content(res, train, others, balance, near, near_threshold, fix)
        _tokens(res, cfg, train, bool(val), estimate, show_progress)
    elif fix:
        why = "the training file could not be read" if train.error else "it has no valid rows"
        res["fix"] = {"output": None, "error": f"nothing written: {why}"}
    res["errors"] = len(res["invalid_rows"])
    res["ok"] = not res["invalid_rows"]
    res["warnings"] = _warnings(res)
    return res


def _content(res, train, others, balance, near, threshold, fix):
    rows = train.valid
    dup = dedup.duplicates(rows, threshold, near)
    copies = dup.pop("_copies")
    res.update(dup)
    leaked_idx: dict[int, str] = {}
    res["leakage_examples"] = {}
    for s, p in others.items():
        if p.error:
            continue
        leaked, hit = dedup.leakage(rows, p.valid)
        res["leakage"][s] = len(leaked)
        res["leakage_examples"][s] = [f"{r.file}:{r.line}" for r in leaked[: dedup.SHOWN]]
        leaked_idx.update({i: Path(p.path).name for i in hit})
    res["conflicts"], res["conflict_groups"] = dedup.conflicts(rows)
    res["class_balance"] = balance
    found = pii.scan([r for p in (train, *others.values()) for r in p.records])
    res.update(found)
    if fix:
        gone = fixer.removals(train, copies, leaked_idx)
        res["fix"] = fixer.write(train, fix, gone)


def _tokens(res, cfg, train, has_val, estimate, show_progress):
    from ..models.load import load_tokenizer

    task = get_task(cfg.task)
    with _status(f"tokenizing {len(train.valid):,} rows with {cfg.model}'s tokenizer", show_progress):
        tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, chat=task.CHAT)
        lens = task.measure(cfg, tokenizer, train.valid)
    if lens is None:  # a task that does not count tokens: the rest of the report stands
        return
    res["token_stats"] = est.stats(lens.full, cfg.max_seq_len, lens.truncated, lens.dropped)
    plan = est.plan(task, cfg, lens, has_val)
    idx = plan.pop("_train_idx")
    plan.update({"seconds": None, "tokens_per_s": None, "calibration": None, "model": cfg.model, "method": cfg.method})
    res["estimate"] = plan
    if not estimate or not plan["train_rows"]:
        return
    try:
        items, meta = task.calibration_items(cfg, tokenizer, train.valid, lens, idx)
        msg = (
            f"calibrating: {est.WARMUP_STEPS}+{est.TIMED_STEPS} training steps of {len(items)} median-length "
            f"rows on {cfg.model} ({cfg.method})"
        )
        with _status(msg, show_progress):
            cal = est.calibrate(task, cfg, tokenizer, items, meta)
    except TunesmithError as e:  # e.g. a model with no such head: the rest of the report still stands
        plan["calibration"] = {"error": str(e)}
        return
    plan.update(
        {
            "calibration": cal,
            "tokens_per_s": cal["tokens_per_s"],
            "seconds": round(plan["tokens"] / cal["tokens_per_s"], 1),
        }
    )


def _warnings(res) -> list[str]:
    out = []
    if res.get("duplicates"):
        out.append(f"{res['duplicates']} exact duplicate rows (extra copies)")
    if res.get("near_duplicates"):
        out.append(f"{res['near_duplicates']} near-duplicate rows")
    for s in SPLITS:
        if res["leakage"].get(s):
            out.append(f"{res['leakage'][s]} {s} rows also occur in training")
    if res.get("conflicts"):
        out.append(f"{res['conflicts']} inputs with conflicting outputs")
    found = {k: v for k, v in (res.get("pii") or {}).items() if v}
    if found:
        out.append("likely personal data: " + ", ".join(f"{v} {k}" for k, v in found.items()))
    ts = res.get("token_stats") or {}
    if ts.get("truncated") or ts.get("dropped"):
        out.append(f"max_seq_len {ts['max_seq_len']}: {ts['truncated']} rows truncated, {ts['dropped']} dropped")
    unseen = (res.get("class_balance") or {}).get("unseen_in_training")
    if unseen:
        out.append(f"{len(unseen)} val/test rows have tags never seen in training")
    return out


__all__ = ["check", "invalid_rows", "summary"]
