"""One module per task. Adding a task means adding a module here and a line in TASKS; the loop is shared.

Each task module exposes:
    NAME, PEFT_TASK                                PEFT task type (None for a plain PeftModel)
    CHAT                                           True if the task renders conversations (needs a chat template)
    HEAD                                           module names trained in full under LoRA (a new head)
    prepare(cfg, tokenizer, log) -> Prepared       rows -> encoded train/validation items, plus `meta`
    load_model(cfg, tokenizer, meta, source=None)  the model with the task's head (`source`: a run's own weights)
    loss_module(model, meta)                       nn.Module: batch -> (summed loss, count, correct)
    collate_batch(items, tokenizer)                encoded items -> tensors
    evaluate(run, path, base=True, **kw) -> dict   {"rows", "tuned": metrics, "base": metrics or baselines}
    predict(run, inputs) -> list[dict]             one JSON-able answer per input text (or row dict)
Optional, for `select_by` (train/select.py); a task without them is selected by validation loss:
    SELECT_METRICS                                 metric names val_scores returns, higher is better
    default_select(prepared) -> str                the one used when select_by is not given
    val_scores(model, tokenizer, prepared, cfg)    {name: score} on the validation items, at each evaluation
    GENERATES                                      True if val_scores generates text (its cost is announced)
`meta` is what the task must remember about its data (labels, counts); it is saved as task.json in the run.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

TASKS = {"sft": "sft", "clm": "clm", "classify": "classify", "tokens": "tokens", "mlm": "mlm"}


@dataclass
class Prepared:
    train: list
    val: list
    info: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    val_examples: list = field(default_factory=list)  # the validation rows as read (sft: to generate answers)


def get_task(name: str):
    return importlib.import_module(f"{__name__}.{TASKS[name]}")
