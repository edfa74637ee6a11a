"""Weights and resumable checkpoints, written so that a crash at any moment leaves the last good one intact.

A checkpoint is a folder `checkpoints/step-N/` holding the trainable weights, the optimizer state (tensors as
safetensors, the rest as JSON: no pickle anywhere), and `state.json` (step, data position, scheduler, RNG
states, best-so-far). It is built in a temporary folder, fsynced and renamed into place, so a folder named
`step-N` is always complete.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
_STEP = re.compile(r"^step-(\d+)$")


def save_weights(model, run_dir: Path) -> None:
    """Save into a temporary folder, then move each file into place with an atomic rename."""
    run_dir = Path(run_dir)
    tmp = run_dir / ".weights.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in sorted(tmp.iterdir()):
        _fsync(f)
        os.replace(f, run_dir / f.name)
    shutil.rmtree(tmp, ignore_errors=True)
    _fsync(run_dir)


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rng_state() -> tuple[dict, dict]:
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {"python": [py[0], list(py[1]), py[2]], "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return meta, tensors


def _set_rng_state(meta: dict, tensors: dict) -> None:
    v, state, gauss = meta["python"]
    random.setstate((v, tuple(state), gauss))
    name, keys, *rest = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _split_optimizer(state_dict: dict) -> tuple[dict, dict]:
    """Optimizer state -> (tensors for safetensors, everything else for JSON)."""
    tensors, rest = {}, {}
    for idx, entry in state_dict["state"].items():
        rest[str(idx)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().contiguous()
            else:
                rest[str(idx)][key] = value
    return tensors, {"state": rest, "param_groups": state_dict["param_groups"]}


def _join_optimizer(tensors: dict, meta: dict) -> dict:
    state = {int(i): dict(v) for i, v in meta["state"].items()}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, step: int, model, optimizer, scheduler, state: dict, keep: int) -> Path:
    """Write `checkpoints/step-<step>` atomically, then drop all but the newest `keep`."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(exist_ok=True)
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), tmp / "weights.safetensors")
    opt_tensors, opt_meta = _split_optimizer(optimizer.state_dict())
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    rng_meta, rng_tensors = _rng_state()
    save_file(rng_tensors, tmp / "rng.safetensors")
    full = {**state, "step": step, "optimizer": opt_meta, "scheduler": scheduler.state_dict(), "rng": rng_meta}
    (tmp / "state.json").write_text(json.dumps(full))
    for f in tmp.iterdir():
        _fsync(f)
    _fsync(tmp)
    if final.exists():  # a checkpoint of this step from an earlier attempt: replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync(root)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of an interrupted save are not listed)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP.match(p.name)) and p.is_dir() and (p / "state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def clean_partial(run_dir: Path) -> None:
    """Remove what an interrupted save left behind; complete checkpoints stay."""
    run_dir = Path(run_dir)
    shutil.rmtree(run_dir / ".weights.tmp", ignore_errors=True)
    root = run_dir / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Restore weights, optimizer, scheduler and RNG states in place; returns the loop's saved state."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    weights = load_file(path / "weights.safetensors")
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing or any(n not in params for n in weights):
        raise ValueError(f"{path}: checkpoint does not match the model (e.g. {(missing or list(weights))[0]})")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(_join_optimizer(load_file(path / "optimizer.safetensors"), state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"], load_file(path / "rng.safetensors"))
    return state
