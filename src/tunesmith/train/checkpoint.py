"""Write weights so that a crash mid-save never leaves a half-written model in the run folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_config.json", "model.safetensors",
                "model.safetensors.index.json", "config.json", "generation_config.json")


def save_weights(model, run_dir: Path) -> None:
    """Save into a temporary folder, then move each file into place with an atomic rename."""
    run_dir = Path(run_dir)
    tmp = run_dir / ".weights.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in sorted(tmp.iterdir()):
        os.replace(f, run_dir / f.name)
    shutil.rmtree(tmp, ignore_errors=True)


def clean_run_dir(run_dir: Path) -> None:
    for name in WEIGHT_FILES:
        (run_dir / name).unlink(missing_ok=True)
