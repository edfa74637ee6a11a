"""Token statistics, the training plan, and a training-time estimate from a short measured calibration (a
tokens/s constant would be wrong on the next machine, model or method). Each task counts its own tokens
(`Task.measure`), as training would build them."""

from __future__ import annotations

import gc
import math
import statistics
import time

WARMUP_STEPS, TIMED_STEPS = 1, 2


def stats(full: list[int], max_seq_len: int, truncated: int, dropped: int) -> dict:
    """min/median/p95/max (nearest rank), and a histogram in round-numbered bins."""
    s = sorted(full)
    if not s:
        return {
            "min": None,
            "median": None,
            "p95": None,
            "max": None,
            "mean": None,
            "total": 0,
            "truncated": truncated,
            "dropped": dropped,
            "max_seq_len": max_seq_len,
            "histogram": [],
        }
    step = next(m * 10**k for k in range(12) for m in (1, 2, 5) if m * 10**k * 12 >= s[-1] - s[0] + 1)
    lo = s[0] // step * step
    bins = [0] * ((s[-1] - lo) // step + 1)
    for n in s:
        bins[(n - lo) // step] += 1
    return {
        "min": s[0],
        "median": statistics.median(s),
        "p95": s[math.ceil(0.95 * len(s)) - 1],
        "max": s[-1],
        "mean": round(sum(s) / len(s), 1),
        "total": sum(s),
        "truncated": truncated,
        "dropped": dropped,
        "max_seq_len": max_seq_len,
        "histogram": [{"from": lo + i * step, "to": lo + (i + 1) * step, "count": c} for i, c in enumerate(bins)],
    }


def plan(task, cfg, lens, has_val: bool) -> dict:
    """Training items, epochs (train's auto rule when not given), optimizer steps and tokens."""
    from ..train.defaults import auto_settings

    n = len(lens.full)
    idx = list(range(n)) if has_val else task.holdout_indices(cfg, n)
    sizes = task.item_sizes(cfg, lens, idx)
    auto = auto_settings(cfg, len(sizes), task)
    epochs = auto.get("epochs", cfg.epochs)
    per_epoch = max(1, math.ceil(len(sizes) / cfg.batch_size) // cfg.grad_accum)
    steps = cfg.max_steps or max(1, math.ceil(epochs * per_epoch))
    return {
        "train_rows": len(sizes),
        "tokens_per_epoch": sum(sizes),
        "epochs": round(steps / per_epoch, 3),
        "epochs_auto": "epochs" in auto,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "steps": steps,
        "tokens": round(sum(sizes) * steps / per_epoch),
        "_train_idx": idx,
    }


def calibrate(task, cfg, tokenizer, items: list, meta: dict, log=lambda m: None) -> dict:
    """Build the model as `train` does (train.setup), take one warm-up step and time the next ones."""
    import torch

    from ..data.batch import real_tokens
    from ..train.perf import tune_malloc
    from ..train.setup import setup_model

    tune_malloc()  # training runs with it; measuring without it would understate the speed
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    s = setup_model(cfg, task, tokenizer, meta, log, lr=1e-6)  # a tiny lr keeps the timed steps tame
    load_s = time.perf_counter() - t0
    s.loss_mod.train()
    batch = s.collate(items)
    times = []
    for _ in range(WARMUP_STEPS + TIMED_STEPS):
        t = time.perf_counter()
        if s.neftune is not None:
            s.neftune.set_batch(batch)
        with s.mixed.autocast():
            loss_sum, n, _ = s.loss_mod(**batch)
        (loss_sum / max(n, 1)).backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(s.params, cfg.max_grad_norm)
        s.optimizer.step()
        s.optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    timed = sum(times[WARMUP_STEPS:])
    tokens = real_tokens(batch)
    del s, batch
    gc.collect()
    return {
        "tokens_per_s": round(tokens * TIMED_STEPS / timed, 1),
        "batch_rows": len(items),
        "batch_tokens": tokens,
        "step_seconds": round(timed / TIMED_STEPS, 3),
        "warmup_seconds": round(times[0], 3),
        "load_seconds": round(load_s, 2),
        "steps_timed": TIMED_STEPS,
        "method": cfg.method,
    }
