"""Causal-LM continued pre-training on raw text, packed into full blocks of max_seq_len tokens."""

from __future__ import annotations

from pathlib import Path

from ..data.formats import describe, read_examples
from ..data.load import KINDS, file_kind
from ..data.tokenize import pack_text
from ..errors import TunesmithError
from .base import Lengths, Prepared, register
from .sft import SFT


def _texts(path, columns, log, label, task="clm"):
    fmt, examples = read_examples(path, columns)
    if fmt != "text":
        raise TunesmithError(
            f"{path}: task {task} needs raw text (a .txt file or rows with 'text'), "
            f"found {describe(fmt)}" + ("; use --task sft" if task == "clm" else "")
        )
    log(f"{label}: {path}: detected format 'plain text', {len(examples)} documents")
    # Paragraphs of one .txt file are slices of a single document, not separate documents.
    return [e.text for e in examples], file_kind(Path(path)) != "txt"


def prepare(cfg, tokenizer, log) -> Prepared:
    said = []  # both files are read before anything is printed: a bad one gives a single error line
    texts, sep = _texts(cfg.data, cfg.columns, said.append, "data")
    if cfg.val_data:
        val_texts, vsep = _texts(cfg.val_data, cfg.columns, said.append, "validation")
    for msg in said:
        log(msg)
    if not cfg.val_data:
        # Hold out whole trailing documents (contiguous, so no context leaks across the split).
        n_val = max(1, round(len(texts) * cfg.val_fraction)) if len(texts) > 1 else 0
        texts, val_texts, vsep = texts[: len(texts) - n_val], texts[len(texts) - n_val :], sep
        log(f"validation: held out the last {n_val} documents")
    train = pack_text(tokenizer, texts, block_size=cfg.max_seq_len, separator_eos=sep)
    val = pack_text(tokenizer, val_texts, block_size=cfg.max_seq_len, separator_eos=vsep)[: cfg.val_max_rows]
    log(f"packed into {len(train)} training and {len(val)} validation blocks of {cfg.max_seq_len} tokens")
    return Prepared(train, val, {"format": "text", "train_rows": len(train), "val_rows": len(val)})


def eval_items(cfg, tokenizer, path):
    """A held-out text file as (document count, packed blocks, no conversations to generate for)."""
    texts, sep = _texts(path, cfg.columns, lambda m: None, "eval")
    return len(texts), pack_text(tokenizer, texts, block_size=cfg.max_seq_len, separator_eos=sep), []


def predict(run, inputs) -> list[dict]:
    """Continuations of each text."""
    from ..eval.generate import generate_batch

    texts = [x["text"] if isinstance(x, dict) else x for x in inputs]
    return [{"continuation": c} for c in generate_batch(run.model, run.tokenizer, texts, max_new_tokens=128)]


def text_lengths(tokenizer, records, eos_after_each: bool) -> Lengths:
    """Tokens per document; packed into blocks afterwards, so nothing is cut."""
    ids = tokenizer([r.item.text for r in records], add_special_tokens=False)["input_ids"] if records else []
    out = Lengths()
    for x in ids:
        out.full.append(len(x) + eos_after_each)
        out.kept.append(len(x) + eos_after_each)
    return out


def tail_holdout(cfg, n: int) -> list[int]:
    """The rows kept when the last documents are held out (contiguous, so no context leaks across)."""
    n_val = max(1, round(n * cfg.val_fraction)) if n > 1 else 0
    return list(range(n - n_val))


def documents_for(cfg, records, lengths: Lengths, idx: list[int]) -> list[str]:
    """Enough training documents for one batch of full blocks."""
    texts, need = [], cfg.batch_size * cfg.max_seq_len
    for i in idx:
        texts.append(records[i].item.text)
        need -= lengths.full[i]
        if need <= 0:
            break
    return texts


@register
class CLM(SFT):
    """Causal-LM continued pre-training on raw text: the same model, head and loss as SFT."""

    NAME = "clm"
    DESCRIPTION = "continued pre-training on raw text, packed into blocks"
    CHAT = False
    TEXT_ONLY = PACKED = True
    GENERATES = False
    SELECT_METRICS = ()
    BASELINES = ()
    # Its own copy, not SFT's by inheritance, so a change to chat's defaults cannot move this task's. These are
    # the values clm trained with before defaults were per task; they were not chosen on clm's own validation.
    DEFAULTS = {"lora.r": 64, "lora.alpha": 128, "lr.lora": 1e-3, "lr.full": 5e-5}

    prepare = staticmethod(prepare)
    eval_items = staticmethod(eval_items)
    predict = staticmethod(predict)

    def default_select(self, prepared):
        return "loss"

    def check_select(self, metric, prepared):
        pass

    def val_questions(self, prepared, cfg):
        return None  # raw text: nothing to answer

    def val_scores(self, model, tokenizer, prepared, cfg):
        return {}

    def measure(self, cfg, tokenizer, records):
        # an EOS after each document, but not between the paragraphs of one .txt file (see _texts)
        txt = bool(records) and KINDS.get(Path(records[0].file).suffix.lower()) == "txt"
        return text_lengths(tokenizer, records, not txt)

    def holdout_indices(self, cfg, n):
        return tail_holdout(cfg, n)

    def item_sizes(self, cfg, lengths, idx):
        n = sum(lengths.full[i] for i in idx)
        blocks = n // cfg.max_seq_len
        return [cfg.max_seq_len] * blocks if blocks else ([n] if n else [])

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        texts = documents_for(cfg, records, lengths, idx)
        return pack_text(tokenizer, texts, block_size=cfg.max_seq_len)[: cfg.batch_size], {}
