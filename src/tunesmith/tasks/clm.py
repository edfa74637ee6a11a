"""Causal-LM continued pre-training on raw text, packed into full blocks of max_seq_len tokens."""
from __future__ import annotations

from pathlib import Path

from ..data.formats import describe, read_examples
from ..data.load import file_kind
from ..data.tokenize import pack_text
from ..errors import TunesmithError
from . import Prepared
from .sft import collate_batch, evaluate, load_model, loss_module  # noqa: F401  (same head and loss as SFT)

NAME = "clm"
PEFT_TASK = "CAUSAL_LM"
CHAT = False
HEAD = ()
PADDING_FREE = True  # examples stand alone: a batch can be one packed row


def _texts(path, columns, log, label, task="clm"):
    fmt, examples = read_examples(path, columns)
    if fmt != "text":
        raise TunesmithError(f"{path}: task {task} needs raw text (a .txt file or rows with 'text'), "
                             f"found {describe(fmt)}" + ("; use --task sft" if task == "clm" else ""))
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
        texts, val_texts, vsep = texts[: len(texts) - n_val], texts[len(texts) - n_val:], sep
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
