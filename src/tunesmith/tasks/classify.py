"""Text classification: one label per row (softmax) or several (a sigmoid per label), optional text pair.

Encoders (BERT/RoBERTa family) and decoders (a classification head on the last real token) alike.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batch import holdout_split, pad
from ..data.labelled import check_known, label_order, labelled_row, read_labelled
from ..errors import TunesmithError
from ..models.load import load_pretrained
from .base import Prepared, Task, cut_lengths, load_settings, median_rows, register


@dataclass
class Item:
    input_ids: list[int]
    token_type_ids: list[int] | None
    target: int | list[float] | None
    line: int | str = 0


def _read(cfg, path, labelled=True):
    return read_labelled(path, cfg.columns, cfg.label_column, cfg.text_pair_column, cfg.multi_label, labelled)


def _texts(tokenizer, rows) -> tuple[list[str], list[str] | None]:
    texts = [r.text for r in rows]
    pairs = [r.pair for r in rows] if rows and rows[0].pair is not None else None
    if pairs is not None and tokenizer.sep_token is None:  # decoders have no pair template: one text, a newline
        texts, pairs = [f"{t}\n{p}" for t, p in zip(texts, pairs)], None
    return texts, pairs


def encode(tokenizer, rows, names, multi_label: bool, max_len: int) -> list[Item]:
    texts, pairs = _texts(tokenizer, rows)
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_len) if rows else {"input_ids": []}
    index = {n: i for i, n in enumerate(names)}
    items = []
    for j, r in enumerate(rows):
        if not r.labels and not multi_label:
            target = None
        elif multi_label:
            target = [1.0 if n in r.labels else 0.0 for n in names]
        else:
            target = index[r.labels[0]]
        tt = enc["token_type_ids"][j] if "token_type_ids" in enc else None
        items.append(Item(enc["input_ids"][j], tt, target, r.line))
    return items


def prepare(cfg, tokenizer, log) -> Prepared:
    rows = _read(cfg, cfg.data)
    if cfg.val_data:
        val_rows = _read(cfg, cfg.val_data)
    else:
        rows, val_rows = holdout_split(rows, cfg.val_fraction, cfg.val_max_rows, cfg.seed)
    names = label_order(lab for r in rows for lab in r.labels)
    if len(names) < 2:
        raise TunesmithError(
            f"{cfg.data}: classification needs at least two different labels, found "
            f"{names or 'none'} in column '{cfg.label_column}'"
        )
    check_known(cfg.val_data or cfg.data, val_rows, names)
    counts = [sum(n in r.labels for r in rows) for n in names]
    weights = None
    if cfg.class_weight == "balanced":
        if cfg.multi_label:  # positives of a rare label count as much as its negatives
            weights = [(len(rows) - c) / max(c, 1) for c in counts]
        else:  # N / (K * n_c): the mean weight over the training rows stays 1
            weights = [len(rows) / (len(names) * max(c, 1)) for c in counts]
    shown = ", ".join(f"{n}: {c}" for n, c in list(zip(names, counts))[:12])
    log(
        f"data: {cfg.data}: {len(rows)} training rows, {len(val_rows)} validation rows, {len(names)} labels "
        f"({shown}{', ...' if len(names) > 12 else ''})" + ("; multi-label" if cfg.multi_label else "")
    )
    if weights:
        log("class weights: " + ", ".join(f"{n}: {w:.2f}" for n, w in zip(names, weights)))
    train = encode(tokenizer, rows, names, cfg.multi_label, cfg.max_seq_len)
    val = encode(tokenizer, val_rows, names, cfg.multi_label, cfg.max_seq_len)
    meta = {
        "labels": names,
        "multi_label": cfg.multi_label,
        "train_counts": counts,
        "train_rows": len(rows),
        "class_weights": weights,
    }
    return Prepared(train, val, {"train_rows": len(train), "val_rows": len(val), "labels": len(names)}, meta)


def load_model(cfg, tokenizer, meta, source=None):
    names = meta["labels"]
    model = load_pretrained(
        "AutoModelForSequenceClassification",
        source or cfg.model,
        **load_settings(cfg),
        num_labels=len(names),
        id2label={i: str(n) for i, n in enumerate(names)},
        label2id={str(n): i for i, n in enumerate(names)},
        pad_token_id=tokenizer.pad_token_id,
        problem_type="multi_label_classification" if meta["multi_label"] else "single_label_classification",
    )
    return model


class ClassifyLoss(nn.Module):
    """Cross-entropy (or per-label BCE), class-weighted when asked; returns (sum, count, correct)."""

    def __init__(self, model, meta):
        super().__init__()
        self.model, self.multi = model, meta["multi_label"]
        w = meta.get("class_weights")
        self.register_buffer("weight", torch.tensor(w, dtype=torch.float32) if w else None, persistent=False)

    def forward(self, input_ids, attention_mask, labels, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits.float()
        if self.multi:
            loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=self.weight, reduction="sum")
            return loss, labels.numel(), ((logits > 0) == (labels > 0.5)).sum()
        loss = F.cross_entropy(logits, labels, reduction="none")
        if self.weight is not None:
            loss = loss * self.weight[labels]
        return loss.sum(), labels.numel(), (logits.argmax(-1) == labels).sum()


def loss_module(model, meta):
    return ClassifyLoss(model, meta)


def collate_batch(items, tokenizer):
    batch = {
        "input_ids": pad([x.input_ids for x in items], tokenizer.pad_token_id),
        "attention_mask": pad([[1] * len(x.input_ids) for x in items], 0),
    }
    if items[0].token_type_ids is not None:
        batch["token_type_ids"] = pad([x.token_type_ids for x in items], 0)
    if items[0].target is not None:
        batch["labels"] = torch.tensor(
            [x.target for x in items], dtype=torch.float32 if isinstance(items[0].target, list) else torch.long
        )
    return batch


def probabilities(model, tokenizer, items, multi_label: bool, batch_size: int = 64) -> list[list[float]]:
    from ..eval.infer import per_item

    act = torch.sigmoid if multi_label else functools.partial(torch.softmax, dim=-1)
    return per_item(
        model, items, functools.partial(collate_batch, tokenizer=tokenizer), lambda lg: act(lg).tolist(), batch_size
    )


def _truth_and_predictions(items, probs, multi: bool, threshold: float) -> tuple[list, list]:
    if multi:
        return ([[int(t) for t in x.target] for x in items], [[int(p >= threshold) for p in ps] for ps in probs])
    return [x.target for x in items], [max(range(len(ps)), key=ps.__getitem__) for ps in probs]


def val_scores(model, tokenizer, prepared, cfg) -> dict:
    from ..eval.classification import class_collapse, class_metrics

    items, names, multi = prepared.val, prepared.meta["labels"], prepared.meta["multi_label"]
    y_true, y_pred = _truth_and_predictions(items, probabilities(model, tokenizer, items, multi), multi, cfg.threshold)
    m = class_metrics(y_true, y_pred, names, multi)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], **class_collapse(y_true, y_pred)}


def evaluate(
    run,
    path: str,
    *,
    base: bool = True,
    batch_size: int = 64,
    log=None,
    baselines=None,
    train_path=None,
    gpu: dict | None = None,
    **_,
) -> dict:
    """Accuracy, macro/micro F1 and per-class figures; `base` holds chance and majority-class baselines,
    since an untrained head is no base model worth the name. `baselines` ["linear-probe"] (checked by
    Run.evaluate, which also defaults `train_path` to the run's training file) adds base["linear_probe"]
    (eval/baselines.py, fitted on `train_path`) and a "verdict"; `gpu`: the reference GPU of its cost estimate."""
    from ..eval.classification import class_baselines, class_collapse, class_metrics, confusion_png

    cfg, meta = run.config, run.meta
    names, multi = meta["labels"], meta["multi_label"]
    rows = _read(cfg, path)
    check_known(path, rows, names)
    items = encode(run.tokenizer, rows, names, multi, cfg.max_seq_len)
    probs = probabilities(run.model, run.tokenizer, items, multi, batch_size)
    y_true, y_pred = _truth_and_predictions(items, probs, multi, cfg.threshold)
    tuned = {**class_metrics(y_true, y_pred, names, multi), **class_collapse(y_true, y_pred)}
    result = {"rows": len(rows), "tuned": tuned, "base": None}
    if not multi:
        png = confusion_png(
            y_true,
            y_pred,
            names,
            run.path / f"confusion_{Path(path).stem}.png",
            f"{run.path.name} on {Path(path).name}",
        )
        result["confusion_matrix"] = str(png)
    if base:
        result["base"] = class_baselines(y_true, names, meta["train_counts"], meta["train_rows"], multi)
    if baselines:
        _linear_probe(run, result, items, y_true, y_pred, train_path, gpu, batch_size, log)
    return result


def _linear_probe(run, result, items, y_true, y_pred, train_path, gpu, batch_size, log):
    """base["linear_probe"]: logistic regression on the frozen base model's mean-pooled embeddings of the
    training file; then the verdict against it and the majority class."""
    from ..eval import baselines as bl
    from ..eval.classification import class_metrics, majority_prediction
    from ..eval.verdict import training_cost, verdict

    cfg, meta = run.config, run.meta
    names, multi = meta["labels"], meta["multi_label"]
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    bl.require_train_file(train_path, "linear-probe")
    rows = [r for r in _read(cfg, train_path) if all(lab in names for lab in r.labels) and (multi or r.labels)]
    train_items = encode(run.tokenizer, rows, names, multi, cfg.max_seq_len)
    collate = functools.partial(collate_batch, tokenizer=run.tokenizer)
    log(f"linear-probe: embedding {len(train_items)} training and {len(items)} test rows with the base model...")
    with run.base_model() as model:
        x_train = bl.pooled(model, train_items, collate, batch_size)
        x_test = bl.pooled(model, items, collate, batch_size)
    probe = bl.linear_probe(
        x_train, [x.target for x in train_items], x_test, multi_label=multi, threshold=cfg.threshold, seed=cfg.seed
    )
    result["base"] = result["base"] or {}
    result["base"]["linear_probe"] = class_metrics(y_true, probe, names, multi)
    majority = [majority_prediction(meta["train_counts"], meta["train_rows"], multi)] * len(y_true)
    right = {"majority": bl.correct(y_true, majority), "linear_probe": bl.correct(y_true, probe)}
    cost = training_cost(run.summary, gpu, cfg.method)
    result["verdict"] = verdict(bl.correct(y_true, y_pred), right, "accuracy", cost=cost)


def predict(run, inputs) -> list[dict]:
    """{"label", "scores"} per input (multi-label: {"labels", "scores"}); inputs are texts or row dicts."""
    from ..data.labelled import LabelledText

    cfg, meta = run.config, run.meta
    names, multi = meta["labels"], meta["multi_label"]
    rows = []
    for i, x in enumerate(inputs, start=1):
        if isinstance(x, str):
            rows.append(LabelledText(i, x, None))
        else:
            rows.append(LabelledText(i, x["text"], x.get(cfg.text_pair_column) if cfg.text_pair_column else None))
    if cfg.text_pair_column and any(r.pair is None for r in rows):
        print(
            f"note: this run was trained on text pairs ('{cfg.text_pair_column}'); inputs without one are "
            "scored as single texts",
            file=sys.stderr,
        )
        for r in rows:
            r.pair = r.pair or ""
    items = encode(run.tokenizer, rows, names, multi, cfg.max_seq_len)
    out = []
    for ps in probabilities(run.model, run.tokenizer, items, multi):
        scores = {str(n): round(p, 6) for n, p in zip(names, ps)}
        if multi:
            out.append({"labels": [n for n, p in zip(names, ps) if p >= cfg.threshold], "scores": scores})
        else:
            out.append({"label": names[max(range(len(ps)), key=ps.__getitem__)], "scores": scores})
    return out


@register
class Classify(Task):
    """Text classification, single- or multi-label, optionally on text pairs."""

    NAME = "classify"
    DESCRIPTION = "text classification: one label per row, or several (multi_label)"
    PEFT_TASK = "SEQ_CLS"
    AUTO_CLASS = "AutoModelForSequenceClassification"
    HEAD = ("classifier", "score")  # BERT-style and decoder-style head names
    SERVE_KIND = "classify"
    LABELS = "labels"
    ROW_FORMAT, ROW_FORMAT_NAME = "labelled", "labelled text"
    # r 16 / alpha 32 / lr 5e-4: MiniLM on sentiment_sentences validation 0.926 accuracy, where r 64 / alpha 128
    # collapsed to one class (0.50) and sms_spam to all-"ham" (spam F1 0.000); issue 28, docs/training.md.
    DEFAULTS = {"lora.r": 16, "lora.alpha": 32, "lr.lora": 5e-4, "lr.full": 5e-5}
    ACCURACY_NAME = "acc"  # per row, not per token
    SELECT_METRICS = ("accuracy", "macro_f1")
    BASELINES = ("linear-probe",)

    prepare = staticmethod(prepare)
    load_model = staticmethod(load_model)
    loss_module = staticmethod(loss_module)
    collate_batch = staticmethod(collate_batch)
    val_scores = staticmethod(val_scores)
    evaluate = staticmethod(evaluate)
    predict = staticmethod(predict)

    def default_select(self, prepared):
        return "accuracy"

    def collapse_note(self, scores):
        if not scores.get("collapsed"):
            return None
        return f"collapsed to one class: {scores['top_share']:.0%} of rows get the same answer, more than the data has"

    def read_row(self, path, line, row, cfg, fmt):
        return labelled_row(path, line, row, cfg.label_column, cfg.text_pair_column, cfg.multi_label)

    def row_content(self, item):
        return item.text + ("" if item.pair is None else "\n" + item.pair), ",".join(map(str, item.labels))

    def row_labels(self, item):
        return item.labels

    def label_problems(self, counts, cfg):
        if len(counts) >= 2:
            return []
        return [
            (
                f"classification needs at least two different labels, found {sorted(counts, key=str) or 'none'}",
                cfg.label_column,
            )
        ]

    def unseen_problem(self, value, cfg):
        return f"label {value!r} does not occur in the training data", cfg.label_column

    def measure(self, cfg, tokenizer, records):
        rows = [r.item for r in records]
        return cut_lengths(tokenizer(*_texts(tokenizer, rows))["input_ids"] if rows else [], cfg.max_seq_len)

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        names = label_order(lab for i in idx for lab in records[i].item.labels)
        rows = [records[i].item for i in median_rows(lengths, idx, cfg.batch_size)]
        meta = {"labels": names, "multi_label": cfg.multi_label, "class_weights": None}
        return encode(tokenizer, rows, names, cfg.multi_label, cfg.max_seq_len), meta
