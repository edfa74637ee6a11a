"""`check --fix OUT`: a cleaned copy of the training file and a log of every row it left out.

Only removals that need no judgement: rows with nothing to learn (empty), extra copies of an identical row,
and training rows that also occur in the validation or test file. Everything else is reported, not changed.
Kept rows are written back as they were read (same line text, same CSV quoting), and the input never changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.load import KINDS
from ..errors import TunesmithError

WRITABLE = ("jsonl", "csv", "json")


def log_path(out: Path) -> Path:
    return out.with_name(out.name + ".changes.jsonl")


def refuse(path, out, kind: str, others=()) -> None:
    """Raise before any work when --fix could not write OUT, or would write over one of the inputs."""
    out = Path(out)
    if kind not in WRITABLE:
        raise TunesmithError(
            f"--fix writes JSONL, JSON or CSV; {Path(path).name} is {kind}, which it cannot "
            "rewrite yet (convert it to JSONL first)"
        )
    if KINDS.get(out.suffix.lower()) != kind:
        raise TunesmithError(
            f"--fix {out}: give it the input's extension ({Path(path).suffix}); the copy keeps the input's format"
        )
    for p in (path, *others):
        if p and out.resolve() == Path(p).resolve():
            raise TunesmithError(
                f"--fix {out}: that is an input file, and inputs are never modified; choose another path"
            )


def removals(parsed, copies: dict[int, int], leaked: dict[int, str]) -> dict[int, dict]:
    """Row index -> why it goes: empty first, then a leak into val/test, then an extra identical copy."""
    valid_index = {id(r): i for i, r in enumerate(parsed.valid)}
    out = {}
    for k, r in enumerate(parsed.records):
        v = valid_index.get(id(r))
        if r.empty:
            out[k] = {"reason": "empty", "detail": r.problem}
        elif v is not None and v in leaked:
            out[k] = {"reason": "leak", "detail": f"also in {leaked[v]}"}
        elif v is not None and v in copies:
            first = parsed.valid[copies[v]]
            out[k] = {"reason": "duplicate", "detail": f"same content as line {first.line}"}
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(text)  # surrogateescape: bytes that were not UTF-8 go back out unchanged
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(parsed, out, gone: dict[int, dict]) -> dict:
    """Write the kept rows to `out` and each removed row to OUT.changes.jsonl; returns what was done."""
    out = Path(out)
    kept = [r for k, r in enumerate(parsed.records) if k not in gone]
    if parsed.kind == "jsonl":
        text = "".join(r.raw + "\n" for r in kept)
    elif parsed.kind == "csv":
        text = parsed.head + "".join(r.raw if r.raw.endswith("\n") else r.raw + "\n" for r in kept)
    else:
        original = json.loads(parsed.path.read_text(encoding="utf-8-sig"))
        rows = [r.raw for r in kept]
        obj = {**original, "data": rows} if isinstance(original, dict) else rows
        text = json.dumps(obj, ensure_ascii=False, indent=2) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, text)
    changes = [{"file": str(parsed.path), "line": parsed.records[k].line, **why} for k, why in sorted(gone.items())]
    _atomic_write(log_path(out), "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in changes))
    by_reason = {}
    for c in changes:
        by_reason[c["reason"]] = by_reason.get(c["reason"], 0) + 1
    return {
        "output": str(out),
        "log": str(log_path(out)),
        "rows_in": len(parsed.records),
        "rows_out": len(kept),
        "removed": by_reason,
    }
