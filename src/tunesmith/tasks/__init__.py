"""One module per task. Each exposes: NAME, MODEL_KIND, PEFT_TASK, prepare(cfg, tokenizer, log)."""
from __future__ import annotations

import importlib

TASKS = {"sft": "sft", "clm": "clm"}


def get_task(name: str):
    return importlib.import_module(f"{__name__}.{TASKS[name]}")
