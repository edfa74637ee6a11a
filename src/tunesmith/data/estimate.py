"""Token lengths with the model's own tokenizer and chat template, and a training-time estimate from a
short measured calibration (a tokens/s constant would be wrong on the next machine, model or method)."""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .formats import with_system
from .load import KINDS
from .tokenize import IGNORE, Encoded, assistant_spans, label_spans

TEXT_TASKS = ("clm", "mlm")
WARMUP_STEPS, TIMED_STEPS = 1, 2


@dataclass
class Lengths:
    full: list[int] = field(default_factory=list)  # per valid row: its tokens before any cut
    kept: list[int] = field(default_factory=list)  # tokens training would use; 0 when the row is dropped
    items: dict = field(default_factory=dict)  # sft: row index -> Encoded, as training builds it
    truncated: int = 0
    dropped: int = 0


def _sft(tokenizer, cfg, records, out: Lengths):
    """As tokenize.encode_examples, except that all rows are tokenized in one batched call (10x faster)."""
    texts, spans = [], []
    for r in records:
        ex = r.item
        if ex.messages is None:  # a plain-text row in an SFT file: learn all of it, then stop
            texts.append(ex.text)
            spans.append(None)
            continue
        try:
            full, sp = assistant_spans(tokenizer, with_system(ex.messages, cfg.system_prompt))
        except ValueError as e:  # a template that cannot be rendered prefix by prefix: train stops too
            raise DataError(r.file, r.line, str(e)) from None
        texts.append(full)
        spans.append(sp)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    for i, (r, sp) in enumerate(zip(records, spans)):
        if sp is None:
            ids = enc["input_ids"][i] + [tokenizer.eos_token_id]
            labels = list(ids)
        else:
            ids, labels = label_spans(tokenizer, enc["input_ids"][i], enc["offset_mapping"][i], sp,
                                      train_on=cfg.train_on)
        out.full.append(len(ids))
        cut = len(ids) > cfg.max_seq_len  # the same rules, in the same order, as encode_examples
        if cut and cfg.overlong == "drop":
            out.dropped += 1
            out.kept.append(0)
            continue
        out.truncated += cut
        ids, labels = ids[:cfg.max_seq_len], labels[:cfg.max_seq_len]
        if all(label == IGNORE for label in labels[1:]):
            out.dropped += 1
            out.kept.append(0)
            continue
        out.kept.append(len(ids))
        out.items[i] = Encoded(ids, labels, r.item.line, cut)


def _pair_texts(tokenizer, rows):
    texts = [r.text for r in rows]
    pairs = [r.pair for r in rows] if rows and rows[0].pair is not None else None
    if pairs is not None and tokenizer.sep_token is None:  # as tasks.classify.encode does for decoders
        return [f"{t}\n{p}" for t, p in zip(texts, pairs)], None
    return texts, pairs


def lengths(task: str, cfg, tokenizer, records) -> Lengths:
    """Per valid row of the training file: tokens as training would build them, and what max_seq_len cuts.
    A chat template that cannot be rendered prefix by prefix raises DataError, as in training."""
    out = Lengths()
    if task == "sft":
        _sft(tokenizer, cfg, records, out)
        return out
    items = [r.item for r in records]
    if task == "classify":
        ids = tokenizer(*_pair_texts(tokenizer, items))["input_ids"] if items else []
    elif task == "tokens":
        ids = tokenizer([s.words for s in items], is_split_into_words=True)["input_ids"] if items else []
    else:  # documents, packed into blocks afterwards: nothing is cut
        ids = tokenizer([x.text for x in items], add_special_tokens=False)["input_ids"] if items else []
    # clm puts an EOS after each document, but not between the paragraphs of one .txt file (tasks.clm)
    txt = bool(records) and KINDS.get(Path(records[0].file).suffix.lower()) == "txt"
    extra = 1 if task == "clm" and not txt else 0
    for x in ids:
        n = len(x) + extra
        out.full.append(n)
        cut = task not in TEXT_TASKS and n > cfg.max_seq_len
        out.truncated += cut
        out.kept.append(min(n, cfg.max_seq_len) if cut else n)
    return out


def stats(full: list[int], max_seq_len: int, truncated: int, dropped: int) -> dict:
    """min/median/p95/max (nearest rank), and a histogram in round-numbered bins."""
    s = sorted(full)
    if not s:
        return {"min": None, "median": None, "p95": None, "max": None, "mean": None, "total": 0,
                "truncated": truncated, "dropped": dropped, "max_seq_len": max_seq_len, "histogram": []}
    step = next(m * 10 ** k for k in range(12) for m in (1, 2, 5) if m * 10 ** k * 12 >= s[-1] - s[0] + 1)
    lo = s[0] // step * step
    bins = [0] * ((s[-1] - lo) // step + 1)
    for n in s:
        bins[(n - lo) // step] += 1
    return {"min": s[0], "median": statistics.median(s), "p95": s[math.ceil(0.95 * len(s)) - 1], "max": s[-1],
            "mean": round(sum(s) / len(s), 1), "total": sum(s), "truncated": truncated, "dropped": dropped,
            "max_seq_len": max_seq_len,
            "histogram": [{"from": lo + i * step, "to": lo + (i + 1) * step, "count": c} for i, c in enumerate(bins)]}


def _train_indices(task, cfg, n: int, has_val: bool) -> list[int]:
    """The rows training keeps after holding out its validation slice (same rule, same seed)."""
    from .batch import holdout_split

    if has_val:
        return list(range(n))
    if task in TEXT_TASKS:  # the last documents, contiguous
        n_val = max(1, round(n * cfg.val_fraction)) if n > 1 else 0
        return list(range(n - n_val))
    return holdout_split(list(range(n)), cfg.val_fraction, cfg.val_max_rows, cfg.seed)[0]


def _blocks(task, cfg, stream: int) -> list[int]:
    """Lengths of the packed blocks a token stream becomes (tasks.clm: pack_text, tasks.mlm: pack)."""
    if task == "clm":
        n = stream // cfg.max_seq_len
        return [cfg.max_seq_len] * n if n else ([stream] if stream else [])
    body, out = cfg.max_seq_len - 2, []  # mlm: [CLS] + body + [SEP]; a short tail is dropped
    for s in range(0, stream, body):
        if stream - s < body // 4 and out:
            break
        out.append(min(body, stream - s) + 2)
    return out


def plan(task: str, cfg, lens: Lengths, has_val: bool) -> dict:
    """Training items, epochs (train's auto rule when not given), optimizer steps and tokens."""
    from ..tasks import get_task
    from ..train.loop import auto_settings

    idx = _train_indices(task, cfg, len(lens.full), has_val)
    if task in TEXT_TASKS:
        sizes = _blocks(task, cfg, sum(lens.full[i] for i in idx))
    else:
        sizes = [lens.kept[i] for i in idx if lens.kept[i]]
    auto = auto_settings(cfg, len(sizes), getattr(get_task(task), "AUTO_LR", None))
    epochs = auto.get("epochs", cfg.epochs)
    per_epoch = max(1, math.ceil(len(sizes) / cfg.batch_size) // cfg.grad_accum)
    steps = cfg.max_steps or max(1, math.ceil(epochs * per_epoch))
    return {"train_rows": len(sizes), "tokens_per_epoch": sum(sizes), "epochs": round(steps / per_epoch, 3),
            "epochs_auto": "epochs" in auto, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum,
            "steps": steps, "tokens": round(sum(sizes) * steps / per_epoch), "_train_idx": idx}


def calibration_items(task, cfg, tokenizer, records, lens: Lengths, idx: list[int]) -> tuple[list, dict]:
    """One batch of typical training items (the batch_size around the median length) and the task's meta."""
    from ..tasks import get_task

    mod = get_task(task)
    order = sorted((i for i in idx if lens.kept[i]), key=lambda i: lens.kept[i])
    if task in TEXT_TASKS:  # enough documents for one batch of full blocks
        texts, need = [], cfg.batch_size * cfg.max_seq_len
        for i in idx:
            texts.append(records[i].item.text)
            need -= lens.full[i]
            if need <= 0:
                break
        if task == "clm":
            from .tokenize import pack_text

            return pack_text(tokenizer, texts, block_size=cfg.max_seq_len)[:cfg.batch_size], {}
        return mod.pack(tokenizer, texts, cfg.max_seq_len, cfg.mlm_probability,
                        cfg.whole_word_mask)[:cfg.batch_size], {}
    mid = max(0, len(order) // 2 - cfg.batch_size // 2)
    chosen = order[mid:mid + cfg.batch_size]
    if task == "sft":
        return [lens.items[i] for i in chosen], {}
    all_labels = [lab for i in idx for lab in (records[i].item.labels if task == "classify" else records[i].item.tags)]
    if task == "classify":
        from .labelled import label_order

        names = label_order(all_labels)
        meta = {"labels": names, "multi_label": cfg.multi_label, "class_weights": None}
        return mod.encode(tokenizer, [records[i].item for i in chosen], names, cfg.multi_label, cfg.max_seq_len), meta
    names = mod.tag_order(all_labels)
    index = {t: k for k, t in enumerate(names)}
    return mod._encode(tokenizer, [records[i].item for i in chosen], index, cfg), {"labels": names}


def calibrate(task: str, cfg, tokenizer, items: list, meta: dict, log=lambda m: None) -> dict:
    """Build the model as `train` does, take one warm-up step and time the next ones on `items`."""
    import functools

    import torch

    from ..models.attention import use_padding_free
    from ..models.peft_wrap import wrap
    from ..tasks import get_task
    from ..train.perf import speed_setup, tune_malloc
    from .batch import collate_packed, real_tokens

    mod = get_task(task)
    tune_malloc()  # training runs with it; measuring without it would understate the speed
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model = wrap(mod.load_model(cfg, tokenizer, meta), cfg.method, cfg.lora, mod.PEFT_TASK, mod.HEAD)
    loss_mod = mod.loss_module(model, meta)
    collate = functools.partial(mod.collate_batch, tokenizer=tokenizer)
    if cfg.padding_free and getattr(mod, "PADDING_FREE", False) and use_padding_free(model):
        collate = collate_packed
    speed_setup(model, cfg, log)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6, fused=True)  # as train; a tiny lr keeps the steps tame
    load_s = time.perf_counter() - t0
    loss_mod.train()
    batch = collate(items)
    times = []
    for _ in range(WARMUP_STEPS + TIMED_STEPS):
        t = time.perf_counter()
        loss_sum, n, _ = loss_mod(**batch)
        (loss_sum / max(n, 1)).backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    timed = sum(times[WARMUP_STEPS:])
    tokens = real_tokens(batch)
    del model, loss_mod, optimizer, batch
    gc.collect()
    return {"tokens_per_s": round(tokens * TIMED_STEPS / timed, 1), "batch_rows": len(items),
            "batch_tokens": tokens, "step_seconds": round(timed / TIMED_STEPS, 3),
            "warmup_seconds": round(times[0], 3), "load_seconds": round(load_s, 2),
            "steps_timed": TIMED_STEPS, "method": cfg.method}
