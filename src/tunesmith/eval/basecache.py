"""Figures of a base model that do not change between runs, computed once and kept under the model cache.

A run's step-0 evaluation scores the base model itself (a LoRA adapter starts at zero, full fine-tuning at
the base's weights), and so does `tunesmith eval`'s base column: the same model on the same rows gives the same
figures, yet each run paid for them again (issue 29: 17 of an 18-second run). Here they are kept as JSON under
`$TUNESMITH_HOME/base-figures/`, keyed by a checksum of everything that decides them: the model folder's files
(weights, tokenizer, chat template), what was scored (the encoded rows, the questions, the probe) and how (the
generation cap, dtype, code version). Any change gives another key, so a stale figure cannot be read back.

Only local model folders are keyed (aliases resolve to one); a hub id that is not a folder here is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..models.registry import home, resolve_model

VERSION = 1  # bump when the way a figure is computed changes (scoring, generation): every key changes with it
_CHUNK = 1 << 20


def _folder() -> Path:
    """$TUNESMITH_BASE_FIGURES, else base-figures/ in the model cache (tests give each test its own)."""
    return Path(os.environ.get("TUNESMITH_BASE_FIGURES") or home() / "base-figures")


def _file_sum(path: Path, memo: dict) -> str:
    """sha256 of a file, remembered by (size, mtime) so a 540 MB weight file is read once, not every run."""
    st = path.stat()
    mark = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    if mark not in memo:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(_CHUNK):
                h.update(block)
        memo[mark] = h.hexdigest()
    return memo[mark]


_SUMS: dict[tuple, str] = {}  # this process's folder checksums: a run keys its step 0 and its probe


def model_checksum(model: str) -> str | None:
    """One checksum over every file of the model's local folder; None when it is not a local folder. File sums
    are remembered in file-sums.json (rewritten only when one was added) and the folder's in this process."""
    src = Path(str(resolve_model(model))).expanduser()
    if not src.is_dir():
        return None
    files = sorted(p for p in src.rglob("*") if p.is_file())
    listing = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if listing not in _SUMS:
        memo_path = _folder() / "file-sums.json"
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
        known = len(memo)
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.relative_to(src)}={_file_sum(f, memo)}\n".encode())
        if len(memo) != known:
            _write(memo_path, memo)
        _SUMS[listing] = h.hexdigest()
    return _SUMS[listing]


def key(model: str, *parts) -> str | None:
    """The cache key of a figure: the model folder's checksum and `parts` (anything JSON can write: settings,
    token ids, texts); None when the model cannot be checksummed (nothing is cached then)."""
    weights = model_checksum(model)
    if weights is None:
        return None
    blob = json.dumps([VERSION, weights, *parts], sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()


def load(k: str | None) -> dict | None:
    if k is None:
        return None
    try:
        return json.loads((_folder() / f"{k}.json").read_text())
    except (OSError, ValueError):
        return None


def save(k: str | None, figures: dict) -> None:
    if k is not None:
        _write(_folder() / f"{k}.json", figures)


def _write(path: Path, value) -> None:
    """Atomic (a temporary file renamed into place), so a reader never sees half a file; a read-only cache
    only loses the saving."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError:
        pass
