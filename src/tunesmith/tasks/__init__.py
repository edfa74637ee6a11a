"""One module per task. Adding a task means adding a module here and a line in TASKS; the loop is shared.

Each task module exposes:
    NAME, PEFT_TASK
    prepare(cfg, tokenizer, log) -> Prepared      rows -> encoded train/validation items
    load_model(cfg, tokenizer)                     the model with the task's head
    loss_module(model)                             nn.Module: batch -> (summed loss, count, correct)
    collate_batch(items, tokenizer)                encoded items -> tensors
    eval_items(cfg, tokenizer, path)               a held-out file -> (rows, encoded items, chats to answer)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

TASKS = {"sft": "sft", "clm": "clm"}


@dataclass
class Prepared:
    train: list
    val: list
    info: dict = field(default_factory=dict)


def get_task(name: str):
    return importlib.import_module(f"{__name__}.{TASKS[name]}")
