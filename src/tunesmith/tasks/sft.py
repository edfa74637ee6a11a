"""Supervised chat fine-tuning: loss on the assistant's tokens, end-of-turn included."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..data.batch import holdout_split
from ..data.formats import describe, read_examples
from ..data.tokenize import encode_examples

NAME = "sft"
MODEL_KIND = "causal"
PEFT_TASK = "CAUSAL_LM"


@dataclass
class Prepared:
    train: list
    val: list
    info: dict = field(default_factory=dict)


def prepare(cfg, tokenizer, log) -> Prepared:
    fmt, examples = read_examples(cfg.data, cfg.columns, cfg.system_prompt)
    log(f"data: {cfg.data}: detected format '{describe(fmt)}', {len(examples)} rows")
    if cfg.val_data:
        vfmt, val_examples = read_examples(cfg.val_data, cfg.columns, cfg.system_prompt)
        log(f"validation: {cfg.val_data}: detected format '{describe(vfmt)}', {len(val_examples)} rows")
    else:
        examples, val_examples = holdout_split(examples, cfg.val_fraction, cfg.val_max_rows, cfg.seed)
        log(f"validation: held out {len(val_examples)} rows (seed {cfg.seed}); training on {len(examples)}")
    kw = dict(max_seq_len=cfg.max_seq_len, overlong=cfg.overlong, train_on=cfg.train_on)
    train, n_trunc, n_drop = encode_examples(tokenizer, examples, path=cfg.data, **kw)
    val, v_trunc, v_drop = encode_examples(tokenizer, val_examples, path=cfg.val_data or cfg.data, **kw)
    if n_trunc or n_drop or v_trunc or v_drop:
        log(f"max_seq_len {cfg.max_seq_len}: truncated {n_trunc + v_trunc}, dropped {n_drop + v_drop} examples "
            f"(overlong={cfg.overlong})")
    if not train:
        from ..errors import TunesmithError

        raise TunesmithError(f"{cfg.data}: no trainable examples left after max_seq_len={cfg.max_seq_len}")
    return Prepared(train, val, {"format": fmt, "truncated": n_trunc + v_trunc, "dropped": n_drop + v_drop,
                                 "train_rows": len(train), "val_rows": len(val)})
