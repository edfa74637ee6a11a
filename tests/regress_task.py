"""A task that lives outside src/: text regression, one number per text. `test_task_plugin.py` runs it through
train, eval, predict and check, to show that a new task is one module and no edit anywhere else.

Targets are standardised with the training mean and standard deviation (kept in task.json); the loss is the
squared error in those units; `base` in an evaluation is the training mean predicted for every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tunesmith.data.batch import holdout_split, pad
from tunesmith.data.load import load_rows
from tunesmith.errors import DataError
from tunesmith.models.load import load_pretrained
from tunesmith.tasks import Prepared, Task, load_settings, register
from tunesmith.tasks.base import cut_lengths, median_rows


@dataclass
class Row:
    line: int
    text: str
    target: float


@dataclass
class Item:
    input_ids: list[int]
    target: float | None
    line: int = 0


def parse_row(path, line, row: dict) -> Row:
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line, "field 'text' is empty or missing")
    try:
        target = float(row.get("target"))
    except (TypeError, ValueError):
        raise DataError(path, line, f"field 'target' must be a number, got {row.get('target')!r}") from None
    if not math.isfinite(target):
        raise DataError(path, line, f"field 'target' must be a finite number, got {target}")
    return Row(line, text, target)


def read(path, cfg) -> list[Row]:
    return [parse_row(path, line, row) for line, row in load_rows(path, cfg.columns)]


def encode(tokenizer, texts: list[str], targets, max_len: int, lines=None) -> list[Item]:
    ids = tokenizer(texts, truncation=True, max_length=max_len)["input_ids"] if texts else []
    lines = lines or [0] * len(texts)
    return [Item(x, t, ln) for x, t, ln in zip(ids, targets, lines)]


class SquaredError(nn.Module):
    def __init__(self, model, meta):
        super().__init__()
        self.model, self.mean, self.std = model, meta["mean"], meta["std"]

    def forward(self, input_ids, attention_mask, labels):
        pred = self.model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1).float()
        err = (pred - (labels - self.mean) / self.std) ** 2
        return err.sum(), labels.numel(), (err < 0.25).sum()  # "correct": within half a standard deviation


@torch.no_grad()
def values(model, tokenizer, items, meta) -> list[float]:
    model.eval()
    batch = Regress.collate_batch(items, tokenizer)
    batch.pop("labels", None)
    return (model(**batch).logits.squeeze(-1).float() * meta["std"] + meta["mean"]).tolist()


def errors(pred: list[float], true: list[float]) -> dict:
    n = max(len(true), 1)
    return {
        "rmse": math.sqrt(sum((p - t) ** 2 for p, t in zip(pred, true)) / n),
        "mae": sum(abs(p - t) for p, t in zip(pred, true)) / n,
    }


@register
class Regress(Task):
    NAME = "regress"
    DESCRIPTION = "text regression: one number per text (a test task)"
    PEFT_TASK = "SEQ_CLS"
    AUTO_CLASS = "AutoModelForSequenceClassification"
    HEAD = ("classifier", "score")
    ROW_FORMAT = "scored"
    ACCURACY_NAME = "within_half_sd"

    def prepare(self, cfg, tokenizer, log):
        rows = read(cfg.data, cfg)
        val_rows = read(cfg.val_data, cfg) if cfg.val_data else None
        if val_rows is None:
            rows, val_rows = holdout_split(rows, cfg.val_fraction, cfg.val_max_rows, cfg.seed)
        ts = [r.target for r in rows]
        mean = sum(ts) / len(ts)
        std = math.sqrt(sum((t - mean) ** 2 for t in ts) / len(ts)) or 1.0
        log(f"data: {cfg.data}: {len(rows)} training rows, target mean {mean:.3g}, sd {std:.3g}")
        enc = lambda rs: encode(
            tokenizer, [r.text for r in rs], [r.target for r in rs], cfg.max_seq_len, [r.line for r in rs]
        )
        return Prepared(
            enc(rows), enc(val_rows), {"train_rows": len(rows), "val_rows": len(val_rows)}, {"mean": mean, "std": std}
        )

    def load_model(self, cfg, tokenizer, meta, source=None):
        return load_pretrained(
            "AutoModelForSequenceClassification",
            source or cfg.model,
            **load_settings(cfg),
            num_labels=1,
            problem_type="regression",
            pad_token_id=tokenizer.pad_token_id,
        )

    def loss_module(self, model, meta):
        return SquaredError(model, meta)

    @staticmethod
    def collate_batch(items, tokenizer):
        batch = {
            "input_ids": pad([x.input_ids for x in items], tokenizer.pad_token_id),
            "attention_mask": pad([[1] * len(x.input_ids) for x in items], 0),
        }
        if items[0].target is not None:
            batch["labels"] = torch.tensor([x.target for x in items], dtype=torch.float32)
        return batch

    def evaluate(self, run, path, *, base=True, **kw):
        rows = read(path, run.config)
        items = encode(run.tokenizer, [r.text for r in rows], [r.target for r in rows], run.config.max_seq_len)
        true = [r.target for r in rows]
        result = {
            "rows": len(rows),
            "tuned": errors(values(run.model, run.tokenizer, items, run.meta), true),
            "base": None,
        }
        if base:
            result["base"] = errors([run.meta["mean"]] * len(rows), true)
        return result

    def predict(self, run, inputs):
        texts = [x["text"] if isinstance(x, dict) else x for x in inputs]
        items = encode(run.tokenizer, texts, [None] * len(texts), run.config.max_seq_len)
        return [{"value": round(v, 4)} for v in values(run.model, run.tokenizer, items, run.meta)]

    def read_row(self, path, line, row, cfg, fmt):
        return parse_row(path, line, row)

    def measure(self, cfg, tokenizer, records):
        return cut_lengths(tokenizer([r.item.text for r in records])["input_ids"] if records else [], cfg.max_seq_len)

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        rows = [records[i].item for i in median_rows(lengths, idx, cfg.batch_size)]
        return encode(tokenizer, [r.text for r in rows], [r.target for r in rows], cfg.max_seq_len), {
            "mean": 0.0,
            "std": 1.0,
        }

    def row_content(self, item):
        return item.text, f"{item.target:g}"
