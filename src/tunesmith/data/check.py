"""`tunesmith check`: the data doctor. Everything training would object to, and what it would cost,
before any compute is spent. Errors (rows training would refuse) make it fail; the rest are warnings.

    from tunesmith.data.check import check
    report = check("train.jsonl", val="val.jsonl", model="smollm2-135m")   # the same dict as --json
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import TunesmithError
from . import dedup, pii, validate
from . import estimate as est
from . import fix as fixer
from .formats import describe
from .validate import invalid_rows, summary  # the cheap pre-flight `train` can call

SPLITS = ("val", "test")


def _config(data, val, model, task, cfg):
    from ..config import RunConfig, build_config

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


def _format_name(p) -> str | None:
    if p.fmt in ("labelled", "tagged"):
        return {"labelled": "labelled text", "tagged": "tagged sentences"}[p.fmt]
    return describe(p.fmt) if p.fmt else None


def _labels(task, item) -> list:
    return item.labels if task == "classify" else [t[2:] for t in item.tags if t.startswith("B-")]


def _unseen(task, cfg, train, others) -> tuple[list, dict | None]:
    """Classify: a val/test label never seen in training is an error (train stops on it). Tokens: a warning
    (train scores such tags as misses). Also: classification needs two labels at least."""
    if task not in ("classify", "tokens") or train.error:
        return [], None
    items = [r.item for r in train.valid]
    counts: dict = {}
    for it in items:
        for lab in _labels(task, it):
            counts[lab] = counts.get(lab, 0) + 1
    problems, unseen = [], []
    if task == "classify" and items and len(counts) < 2:
        problems.append(validate.entry(train.path, None, "classification needs at least two different labels, "
                                       f"found {sorted(counts, key=str) or 'none'}", cfg.label_column))
    known = set(counts) if task == "classify" else {t for it in items for t in it.tags}
    for p in others.values():
        for r in p.valid:
            new = [x for x in (r.item.labels if task == "classify" else r.item.tags) if x not in known]
            if new and task == "classify":
                r.problem, r.field = f"label {new[0]!r} does not occur in the training data", cfg.label_column
            elif new:
                unseen.append(f"{r.file}:{r.line}: {', '.join(sorted(set(new)))}")
    ordered = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    ratio = round(max(counts.values()) / min(counts.values()), 2) if counts else None
    return problems, {"labels": ordered, "max_to_min": ratio, "unseen_in_training": unseen}


def _empty_result(cfg, train) -> dict:
    return {"file": str(train.path), "task": cfg.task, "model": cfg.model, "format": train.fmt,
            "format_description": _format_name(train), "file_kind": train.kind, "rows": len(train.records),
            "valid_rows": len(train.valid), "invalid_rows": [], "errors": 0, "ok": True, "token_stats": None,
            "duplicates": None, "near_duplicates": None, "leakage": {s: None for s in SPLITS}, "conflicts": None,
            "class_balance": None, "pii": None, "estimate": None, "warnings": []}


def check(data, val=None, test=None, model=None, task=None, cfg=None, estimate=True, fix=None,
          near=True, near_threshold=dedup.NEAR_THRESHOLD, show_progress=False) -> dict:
    """Check a training file (and optional val/test files) for the model and task of `cfg`.

    `cfg`: a RunConfig or dict (model, task, max_seq_len, batch_size, epochs, method, columns, ...); the
    keyword arguments override it. `estimate=False` skips the calibration (tokens and steps are still given).
    `fix`: write a cleaned copy of `data` there, and OUT.changes.jsonl. Returns the report as a JSON-able dict.
    """
    cfg = _config(data, val, model, task, cfg)
    task, val = cfg.task, cfg.val_data
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
        res["leakage_examples"][s] = [f"{r.file}:{r.line}" for r in leaked[:dedup.SHOWN]]
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
    from ..tasks import get_task

    task = cfg.task
    with _status(f"tokenizing {len(train.valid):,} rows with {cfg.model}'s tokenizer", show_progress):
        tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, chat=get_task(task).CHAT)
        lens = est.lengths(task, cfg, tokenizer, train.valid)
    res["token_stats"] = est.stats(lens.full, cfg.max_seq_len, lens.truncated, lens.dropped)
    plan = est.plan(task, cfg, lens, has_val)
    idx = plan.pop("_train_idx")
    plan.update({"seconds": None, "tokens_per_s": None, "calibration": None, "model": cfg.model,
                 "method": cfg.method})
    res["estimate"] = plan
    if not estimate or not plan["train_rows"]:
        return
    try:
        items, meta = est.calibration_items(task, cfg, tokenizer, train.valid, lens, idx)
        msg = (f"calibrating: {est.WARMUP_STEPS}+{est.TIMED_STEPS} training steps of {len(items)} median-length "
               f"rows on {cfg.model} ({cfg.method})")
        with _status(msg, show_progress):
            cal = est.calibrate(task, cfg, tokenizer, items, meta)
    except TunesmithError as e:  # e.g. a model with no such head: the rest of the report still stands
        plan["calibration"] = {"error": str(e)}
        return
    plan.update({"calibration": cal, "tokens_per_s": cal["tokens_per_s"],
                 "seconds": round(plan["tokens"] / cal["tokens_per_s"], 1)})


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
