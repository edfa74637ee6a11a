"""Token classification (NER, tagging): one BIO tag per word, learned on sub-word tokens.

A word's tag goes on its first sub-token; the others are ignored (or, with label_subwords=all, carry the
word's tag with B- turned into I-). Predictions and metrics are per word, read from the first sub-token.
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
from ..data.labelled import CONLL_SUFFIXES, TaggedSentence, check_bio, read_tagged, split_words, tagged_row
from ..data.tokenize import IGNORE
from ..errors import TunesmithError
from ..models.load import load_pretrained
from .base import Prepared, Task, cut_lengths, load_settings, median_rows, register


@dataclass
class Item:
    input_ids: list[int]
    labels: list[int] | None
    first: list[int]  # per word: index of its first sub-token, -1 if it got none (empty, or truncated away)
    line: int | str = 0


def tag_order(tags) -> list[str]:
    """O first, then by entity type, B before I (a readable order for reports)."""
    rest = sorted({t for t in tags if t != "O"}, key=lambda t: (t[2:], t[0]))
    return ["O"] + rest


def _inside(tag: str, index: dict) -> str:
    return "I-" + tag[2:] if tag.startswith("B-") and "I-" + tag[2:] in index else tag


def align(
    tokenizer, words: list[str], tags: list[str] | None, index: dict, max_len: int, label_all: bool = False, line=0
) -> Item:
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_len)
    word_ids = enc.word_ids()
    labels = [IGNORE] * len(word_ids) if tags is not None else None
    first = [-1] * len(words)
    prev = None
    for t, w in enumerate(word_ids):
        if w is not None and w != prev:
            first[w] = t
            if labels is not None:
                labels[t] = index.get(tags[w], IGNORE)
        elif w is not None and label_all and labels is not None:
            labels[t] = index.get(_inside(tags[w], index), IGNORE)
        prev = w
    return Item(enc["input_ids"], labels, first, line)


def _check_tags(path, sents: list[TaggedSentence], index: dict):
    """Tags never seen in training cannot be predicted: they still count as misses, and carry no loss."""
    unseen = sorted({t for s in sents for t in s.tags if t not in index})
    if unseen:
        print(f"note: {path}: tags not in the training data, scored as misses: {', '.join(unseen)}", file=sys.stderr)


def _encode(tokenizer, sents, index, cfg):
    return [
        align(tokenizer, s.words, s.tags, index, cfg.max_seq_len, cfg.label_subwords == "all", s.line) for s in sents
    ]


def prepare(cfg, tokenizer, log) -> Prepared:
    sents = read_tagged(cfg.data, cfg.columns)
    if cfg.val_data:
        val = read_tagged(cfg.val_data, cfg.columns)
    else:
        sents, val = holdout_split(sents, cfg.val_fraction, cfg.val_max_rows, cfg.seed)
    names = tag_order(t for s in sents for t in s.tags)
    index = {t: i for i, t in enumerate(names)}
    _check_tags(cfg.val_data or cfg.data, val, index)
    counts = {t: 0 for t in names}
    for s in sents:
        for t in s.tags:
            counts[t] += 1
    train_items, val_items = _encode(tokenizer, sents, index, cfg), _encode(tokenizer, val, index, cfg)
    cut = sum(f == -1 for x in train_items for f in x.first)
    log(
        f"data: {cfg.data}: {len(sents)} training sentences, {len(val)} validation, {len(names)} tags "
        f"({', '.join(names)})" + (f"; {cut} words got no sub-token (empty or past max_seq_len)" if cut else "")
    )
    if len(names) < 2:
        raise TunesmithError(f"{cfg.data}: every tag is 'O'; there is nothing to learn")
    meta = {"labels": names, "train_counts": [counts[t] for t in names], "train_rows": len(sents)}
    return Prepared(
        train_items, val_items, {"train_rows": len(train_items), "val_rows": len(val_items), "labels": len(names)}, meta
    )


def load_model(cfg, tokenizer, meta, source=None):
    names = meta["labels"]
    return load_pretrained(
        "AutoModelForTokenClassification",
        source or cfg.model,
        **load_settings(cfg),
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        pad_token_id=tokenizer.pad_token_id,
    )


class TokenLoss(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        keep = labels != IGNORE
        lg, y = logits[keep].float(), labels[keep]
        return F.cross_entropy(lg, y, reduction="sum"), y.numel(), (lg.argmax(-1) == y).sum()


def loss_module(model, meta=None):
    return TokenLoss(model)


def collate_batch(items, tokenizer):
    batch = {
        "input_ids": pad([x.input_ids for x in items], tokenizer.pad_token_id),
        "attention_mask": pad([[1] * len(x.input_ids) for x in items], 0),
    }
    if items[0].labels is not None:
        batch["labels"] = pad([x.labels for x in items], IGNORE)
    return batch


def word_predictions(model, tokenizer, items, names, batch_size: int = 64) -> list[list[tuple[str, float]]]:
    """(tag, probability) per word; a word with no sub-token is 'O'."""
    from ..eval.infer import per_item

    probs = per_item(
        model,
        items,
        functools.partial(collate_batch, tokenizer=tokenizer),
        lambda lg: torch.softmax(lg, -1).max(-1),
        batch_size,
    )
    out = []
    for x, (p, i) in zip(items, probs):
        out.append([(names[int(i[t])], float(p[t])) if t >= 0 else ("O", 1.0) for t in x.first])
    return out


def val_scores(model, tokenizer, prepared, cfg) -> dict:
    """Entity F1 (seqeval) on the validation items, over the words that kept a sub-token."""
    from ..eval.classification import entity_metrics, tag_collapse

    names = prepared.meta["labels"]
    preds = word_predictions(model, tokenizer, prepared.val, names)
    true = [[names[x.labels[t]] if t >= 0 and x.labels[t] >= 0 else "O" for t in x.first] for x in prepared.val]
    pred = [[t for t, _ in p] for p in preds]
    return {"entity_f1": entity_metrics(true, pred)["entity_f1"], **tag_collapse(true, pred)}


def evaluate(run, path: str, *, base: bool = True, batch_size: int = 64, log=None, **_) -> dict:
    """Entity-level precision/recall/F1 per type and overall (seqeval, conlleval rules); `base` holds
    the chance (uniform random tags) and majority (all 'O') baselines."""
    from ..eval.classification import entity_metrics, tag_baselines, tag_collapse

    cfg, names = run.config, run.meta["labels"]
    index = {t: i for i, t in enumerate(names)}
    sents = read_tagged(path, cfg.columns)
    _check_tags(path, sents, index)
    items = _encode(run.tokenizer, sents, index, cfg)
    preds = word_predictions(run.model, run.tokenizer, items, names, batch_size)
    true = [s.tags for s in sents]
    pred = [[t for t, _ in p] for p in preds]
    result = {"rows": len(sents), "tuned": {**entity_metrics(true, pred), **tag_collapse(true, pred)}, "base": None}
    if base:
        result["base"] = tag_baselines(true, names)
    return result


def _words(x) -> tuple[str, list[tuple[str, int, int]]]:
    """An input as (text, words with character spans): raw text is split; given tokens are joined by spaces."""
    if isinstance(x, dict) and isinstance(x.get("tokens"), list):
        text, spans, pos = "", [], 0
        for w in x["tokens"]:
            spans.append((w, pos, pos + len(w)))
            pos += len(w) + 1
        return " ".join(x["tokens"]), spans
    text = x["text"] if isinstance(x, dict) else x
    return text, split_words(text)


def predict(run, inputs) -> list[dict]:
    """{"entities": [{"text", "type", "start", "end", "score"}]} per input; start/end are character offsets."""
    from ..eval.classification import entities

    names = run.meta["labels"]
    texts, spans = zip(*[_words(x) for x in inputs]) if inputs else ((), ())
    items = [align(run.tokenizer, [w for w, _, _ in sp] or [""], None, {}, run.config.max_seq_len) for sp in spans]
    preds = word_predictions(run.model, run.tokenizer, items, names)
    out = []
    for text, sp, pred in zip(texts, spans, preds):
        ents = []
        for typ, a, b in entities([t for t, _ in pred][: len(sp)]):
            start, end = sp[a][1], sp[b][2]
            score = sum(p for _, p in pred[a : b + 1]) / (b - a + 1)
            ents.append({"text": text[start:end], "type": typ, "start": start, "end": end, "score": round(score, 4)})
        out.append({"entities": ents})
    return out


@register
class Tokens(Task):
    """Token classification (NER, tagging) with BIO tags, on encoders or decoders."""

    NAME = "tokens"
    DESCRIPTION = "token classification (NER): one BIO tag per word; CoNLL or JSONL {tokens, ner_tags}"
    PEFT_TASK = "TOKEN_CLS"
    AUTO_CLASS = "AutoModelForTokenClassification"
    HEAD = ("classifier", "score")
    SERVE_KIND = "tag"
    LABELS = "tags"
    ROW_FORMAT, ROW_FORMAT_NAME = "tagged", "tagged sentences"
    CONLL = True
    # r 16 / alpha 32 / lr 1e-3: MiniLM on WNUT-17 entity F1 0.426 (held out); r 64 / alpha 128 gave 0.008
    # (issue 28, docs/training.md "Per-task defaults").
    DEFAULTS = {"lora.r": 16, "lora.alpha": 32, "lr.lora": 1e-3, "lr.full": 1e-4}
    SELECT_METRICS = ("entity_f1",)

    prepare = staticmethod(prepare)
    load_model = staticmethod(load_model)
    loss_module = staticmethod(loss_module)
    collate_batch = staticmethod(collate_batch)
    val_scores = staticmethod(val_scores)
    evaluate = staticmethod(evaluate)
    predict = staticmethod(predict)

    def default_select(self, prepared):
        return "entity_f1"

    def collapse_note(self, scores):
        return "collapsed to 'O': no entity found, where the data has some" if scores.get("collapsed") else None

    def read_inputs(self, path, cfg):
        if Path(path).suffix.lower() not in CONLL_SUFFIXES:
            return None
        return [{"tokens": s.words} for s in read_tagged(path, cfg.columns)]

    def read_row(self, path, line, row, cfg, fmt):
        return tagged_row(path, line, row)

    def check_item(self, path, item, conll):
        check_bio(path, item, conll)

    def row_content(self, item):
        return " ".join(item.words), " ".join(item.tags)

    def row_labels(self, item):
        return [t[2:] for t in item.tags if t.startswith("B-")]

    def row_targets(self, item):
        return item.tags

    def measure(self, cfg, tokenizer, records):
        ids = tokenizer([r.item.words for r in records], is_split_into_words=True)["input_ids"] if records else []
        return cut_lengths(ids, cfg.max_seq_len)

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        names = tag_order(t for i in idx for t in records[i].item.tags)
        index = {t: k for k, t in enumerate(names)}
        rows = [records[i].item for i in median_rows(lengths, idx, cfg.batch_size)]
        return _encode(tokenizer, rows, index, cfg), {"labels": names}
