"""Write weights so that a crash mid-save never leaves a half-written model in the run folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def save_weights(model, run_dir: Path) -> None:
    """Save into a temporary folder, then move each file into place with an atomic rename."""
    run_dir = Path(run_dir)
    tmp = run_dir / ".weights.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in sorted(tmp.iterdir()):
        os.replace(f, run_dir / f.name)
    shutil.rmtree(tmp, ignore_errors=True)
