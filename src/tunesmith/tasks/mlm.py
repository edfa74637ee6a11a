"""Masked-LM continued pre-training for encoders: packed blocks, dynamic 80/10/10 masking.

Training blocks are masked afresh at every batch; validation blocks are masked once, with a fixed seed,
so every evaluation scores the same masked positions.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batch import pad
from ..data.tokenize import IGNORE
from ..errors import TunesmithError
from ..eval.evaluate import evaluate_run
from ..models.load import load_pretrained
from .base import Prepared, Task, load_settings, register
from .clm import _texts, documents_for, tail_holdout, text_lengths

VAL_MASK_SEED = 1234


@dataclass
class Item:
    input_ids: list[int]
    word_start: list[bool]
    prob: float
    whole_word: bool
    masked: tuple[list[int], list[int]] | None = None  # fixed (inputs, labels), for validation
    line: int = 0


def mask_tokens(
    ids, word_start, special: set, mask_id: int, vocab: int, prob: float, whole_word: bool, rng
) -> tuple[list[int], list[int]]:
    """Pick ~prob of the tokens (or of whole words); of those 80% -> [MASK], 10% -> random, 10% kept."""
    inputs, labels = list(ids), [IGNORE] * len(ids)
    chosen = [False] * len(ids)
    if whole_word:
        pick = False
        for i, tok in enumerate(ids):
            if tok in special:
                continue
            if word_start[i]:
                pick = rng.random() < prob
            chosen[i] = pick
    else:
        chosen = [tok not in special and rng.random() < prob for tok in ids]
    for i, c in enumerate(chosen):
        if not c:
            continue
        labels[i] = ids[i]
        r = rng.random()
        if r < 0.8:
            inputs[i] = mask_id
        elif r < 0.9:
            inputs[i] = rng.randrange(vocab)
    return inputs, labels


def pack(tokenizer, texts, block: int, prob: float, whole_word: bool) -> list[Item]:
    """[CLS] + block-2 tokens + [SEP] per item, documents running on across blocks."""
    if tokenizer.mask_token_id is None:
        raise TunesmithError(
            f"{tokenizer.name_or_path}: tokenizer has no mask token; task mlm needs an encoder (BERT/RoBERTa family)"
        )
    ids, starts = [], []
    for t in texts:
        enc = tokenizer(t, add_special_tokens=False)
        prev = None
        for tok, w in zip(enc["input_ids"], enc.word_ids()):
            ids.append(tok)
            starts.append(w is None or w != prev)
            prev = w
    n = block - 2
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    out = []
    for s in range(0, len(ids), n):
        if len(ids) - s < n // 4 and out:  # a short tail teaches little; drop it
            break
        out.append(
            Item([cls] + ids[s : s + n] + [sep], [True] + starts[s : s + n] + [True], prob, whole_word, line=1 + s // n)
        )
    return out


def _special(tokenizer) -> set:
    return set(tokenizer.all_special_ids)


def _fixed(tokenizer, items: list[Item], seed: int) -> list[Item]:
    rng, special = random.Random(seed), _special(tokenizer)
    for x in items:
        x.masked = mask_tokens(
            x.input_ids, x.word_start, special, tokenizer.mask_token_id, len(tokenizer), x.prob, x.whole_word, rng
        )
    return items


def prepare(cfg, tokenizer, log) -> Prepared:
    said = []  # both files are read before anything is printed: a bad one gives a single error line
    texts, _ = _texts(cfg.data, cfg.columns, said.append, "data", task="mlm")
    if cfg.val_data:
        val_texts, _ = _texts(cfg.val_data, cfg.columns, said.append, "validation", task="mlm")
    for msg in said:
        log(msg)
    if not cfg.val_data:
        n_val = max(1, round(len(texts) * cfg.val_fraction)) if len(texts) > 1 else 0
        texts, val_texts = texts[: len(texts) - n_val], texts[len(texts) - n_val :]
        log(f"validation: held out the last {n_val} documents")
    kw = dict(block=cfg.max_seq_len, prob=cfg.mlm_probability, whole_word=cfg.whole_word_mask)
    train = pack(tokenizer, texts, **kw)
    val = _fixed(tokenizer, pack(tokenizer, val_texts, **kw)[: cfg.val_max_rows], VAL_MASK_SEED)
    log(
        f"packed into {len(train)} training and {len(val)} validation blocks of {cfg.max_seq_len} tokens; "
        f"masking {cfg.mlm_probability:.0%} of {'words' if cfg.whole_word_mask else 'tokens'} (80/10/10)"
    )
    return Prepared(train, val, {"format": "text", "train_rows": len(train), "val_rows": len(val)})


def _build_head(model, missing: list[str]) -> bool:
    """Give a checkpoint without an MLM head (e.g. a sentence-embedding MiniLM) a deterministic one:
    identity transform, unit LayerNorm, zero bias; the decoder stays tied to the word embeddings."""
    params = dict(model.named_parameters())
    built = False
    with torch.no_grad():
        for key in missing:
            p = params.get(key)
            if p is None:
                continue
            built = True
            if p.dim() == 2 and p.shape[0] == p.shape[1]:
                p.copy_(torch.eye(p.shape[0]))
            elif "norm" in key.lower() and key.endswith("weight"):
                p.fill_(1.0)
            elif key.endswith("bias"):
                p.zero_()
    return built


def load_model(cfg, tokenizer, meta=None, source=None):
    model, info = load_pretrained(
        "AutoModelForMaskedLM", source or cfg.model, **load_settings(cfg), output_loading_info=True
    )
    missing = [k for k in info.get("missing_keys", []) if "decoder.weight" not in k]
    if missing and _build_head(model, missing) and source is None:
        print(
            f"note: {cfg.model} has no pre-trained MLM head; built one (identity transform, decoder tied to "
            "the word embeddings) that training will fit",
            file=sys.stderr,
        )
    return model


HEAD_ROWS = 256  # the head's row count is rounded up to a multiple of this (see MaskedLMLoss)


class MaskedLMLoss(nn.Module):
    """Cross-entropy at masked positions only: the 30k-wide vocabulary projection runs on ~15% of tokens.

    The number of masked positions differs at every batch, and a new row count at every step made memory
    grow without bound: minilm-l6 at the defaults climbed 20-25 MB a step (4.2 GB after 40 steps, 6.5 GB after
    300), and stayed flat at 2.9 GB once the count was rounded up to a multiple of HEAD_ROWS with unmasked
    positions (labelled IGNORE, so they add nothing to the loss). Rounding costs at most 255 extra head rows."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        head = next((getattr(lm, n) for n in ("cls", "lm_head") if hasattr(lm, n)), None)
        keep = labels != IGNORE
        if head is None:  # unknown layout: full logits
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[keep]
        else:
            short = -int(keep.sum()) % HEAD_ROWS
            if short:
                spare = (~keep).flatten().nonzero().flatten()[:short]
                keep = keep.flatten().index_fill(0, spare, True).view_as(keep)
            hidden = lm.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
            logits = head(hidden[keep])
        y = labels[keep]
        logits = logits.float()
        real = y != IGNORE
        loss = F.cross_entropy(logits, y, reduction="sum", ignore_index=IGNORE)
        return loss, int(real.sum()), ((logits.argmax(-1) == y) & real).sum()


def loss_module(model, meta=None):
    return MaskedLMLoss(model)


def collate_batch(items, tokenizer):
    special = _special(tokenizer)
    masked = [
        x.masked
        or mask_tokens(
            x.input_ids, x.word_start, special, tokenizer.mask_token_id, len(tokenizer), x.prob, x.whole_word, random
        )
        for x in items
    ]
    return {
        "input_ids": pad([m[0] for m in masked], tokenizer.pad_token_id),
        "attention_mask": pad([[1] * len(x.input_ids) for x in items], 0),
        "labels": pad([m[1] for m in masked], IGNORE),
    }


def eval_items(cfg, tokenizer, path):
    """A held-out text file as (document count, blocks masked with the fixed validation seed, no prompts)."""
    texts, _ = _texts(path, cfg.columns, lambda m: None, "eval", task="mlm")
    items = pack(tokenizer, texts, cfg.max_seq_len, cfg.mlm_probability, cfg.whole_word_mask)
    return len(texts), _fixed(tokenizer, items, VAL_MASK_SEED), []


def predict(run, inputs) -> list[dict]:
    """Fill each [MASK] in the input texts: the top 5 tokens with their probabilities."""
    tok, model = run.tokenizer, run.model
    out = []
    with torch.no_grad():
        for x in inputs:
            text = x["text"] if isinstance(x, dict) else x
            enc = tok(text, return_tensors="pt", truncation=True, max_length=run.config.max_seq_len)
            logits = model(**enc).logits[0]
            fills = []
            for pos in (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist():
                p, i = torch.softmax(logits[pos].float(), -1).topk(5)
                fills.append(
                    [{"token": tok.decode([int(t)]).strip(), "score": round(float(s), 4)} for s, t in zip(p, i)]
                )
            out.append({"masks": fills})
    return out


@register
class MLM(Task):
    """Masked-LM continued pre-training for encoders (BERT, RoBERTa)."""

    NAME = "mlm"
    DESCRIPTION = "masked-LM continued pre-training for encoders, on raw text"
    AUTO_CLASS = "AutoModelForMaskedLM"
    HEAD = ("transform", "lm_head.dense", "lm_head.layer_norm")  # BERT / RoBERTa MLM head layers before the decoder
    TEXT_ONLY = PACKED = True
    # r 64 / alpha 128: MiniLM on tinyshakespeare validation perplexity 38,220 -> 104, against 132 at r 16
    # (issue 28, docs/training.md "Per-task defaults").
    DEFAULTS = {"lora.r": 64, "lora.alpha": 128, "lr.lora": 1e-3, "lr.full": 1e-4}

    prepare = staticmethod(prepare)
    load_model = staticmethod(load_model)
    loss_module = staticmethod(loss_module)
    collate_batch = staticmethod(collate_batch)
    eval_items = staticmethod(eval_items)
    evaluate = staticmethod(evaluate_run)  # masked-token loss and perplexity, vs the base
    predict = staticmethod(predict)

    def measure(self, cfg, tokenizer, records):
        return text_lengths(tokenizer, records, False)

    def holdout_indices(self, cfg, n):
        return tail_holdout(cfg, n)

    def item_sizes(self, cfg, lengths, idx):
        """[CLS] + body + [SEP] blocks, as `pack` cuts them; a short tail is dropped."""
        stream = sum(lengths.full[i] for i in idx)
        body, out = cfg.max_seq_len - 2, []
        for s in range(0, stream, body):
            if stream - s < body // 4 and out:
                break
            out.append(min(body, stream - s) + 2)
        return out

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        texts = documents_for(cfg, records, lengths, idx)
        return pack(tokenizer, texts, cfg.max_seq_len, cfg.mlm_probability, cfg.whole_word_mask)[: cfg.batch_size], {}
