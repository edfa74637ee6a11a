"""The training loop, top to bottom: data -> model -> AdamW steps -> periodic eval -> best weights.

Built on accelerate, so `accelerate launch` / `torchrun` gives data-parallel training unchanged.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from ..config import RunConfig, save_config
from ..data.batch import LengthBucketSampler, ordered_loader, real_tokens
from ..data.validate import invalid_rows
from ..data.validate import summary as problems_line
from ..errors import Interrupted, RunStopped, TunesmithError
from ..eval import basecache
from ..eval.evaluate import evaluate_loss, joint_answer_scores
from ..models.load import load_tokenizer
from ..models.precision import check_quantize, dtype_name
from ..run import Run
from ..tasks import get_task
from .checkpoint import (
    clean_partial,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    save_weights,
    write_json_atomic,
)
from .defaults import apply, auto_settings, settings_line
from .forgetting import Forgetting
from .perf import check_liger, memory_forecast, peak_memory_gb, tune_malloc
from .report import MetricsLog, plot_losses
from .select import EVAL_SHARE, Selector, auto_epochs, eval_due, metric_for, stop_reason
from .setup import setup_model


def _stderr(msg: str):
    print(msg, file=sys.stderr, flush=True)


def _step0_key(cfg: RunConfig, task, data, metric: str) -> str | None:
    """The base-figure cache key (eval/basecache.py) of step 0's validation, where step 0 is the base model itself:
    causal LMs (encoder tasks add a head drawn from the seed). Everything that decides the figures is in it."""
    if not task.CAUSAL or task.HEAD or not data.val:
        return None
    generated = metric != "loss" or not task.GENERATES
    fields = ("messages", "text", "must_contain")
    rows = [[getattr(e, f, None) for f in fields] for e in data.val_examples[: cfg.val_generate_rows]]
    return basecache.key(
        cfg.model,
        "step0",
        cfg.task,
        cfg.method,
        cfg.dtype,
        cfg.quantize,
        metric,
        [[x.input_ids, x.labels] for x in data.val],
        rows if generated else None,
    )


def prepare_run_dir(out: Path, force: bool, check_only: bool = False) -> None:
    if out.exists() and any(out.iterdir()):
        if not force and (out / "config.yaml").exists():
            raise TunesmithError(f"{out}: a run already exists there; choose another --output or pass --force")
        if not force:
            raise TunesmithError(f"{out}: folder is not empty; choose another --output or pass --force")
        if check_only:
            return
        shutil.rmtree(out)
    if not check_only:
        out.mkdir(parents=True, exist_ok=True)


class _Progress:
    """A rich bar on a terminal; a plain line every ~10% elsewhere (CI logs, pipes)."""

    def __init__(self, total: int):
        self.total, self.tty = total, sys.stderr.isatty()
        self.every = max(1, total // 10)
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:.0f} tok/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                transient=False,
            )
            self.task = self.bar.add_task("train", total=total, loss=float("nan"), tps=0.0)
            self.bar.start()

    def update(self, step: int, loss: float, tps: float, elapsed: float):
        if self.tty:
            self.bar.update(self.task, completed=step, loss=loss, tps=tps)
        elif step % self.every == 0 or step == self.total:
            eta = elapsed / step * (self.total - step)
            _stderr(f"step {step}/{self.total}  loss {loss:.4f}  {tps:.0f} tok/s  ETA {eta:.0f}s")

    def log(self, msg: str):
        (self.bar.console.print if self.tty else _stderr)(msg)

    def close(self):
        if self.tty:
            self.bar.stop()


def _resume_point(out: Path, resume: bool, cfg: RunConfig) -> Path | None:
    """The checkpoint to continue from; None to start fresh. Raises when --resume cannot be honoured."""
    interrupted = (out / "config.yaml").is_file() and not (out / "summary.json").is_file()
    if resume and not (out / "config.yaml").is_file():
        raise TunesmithError(f"{out}: not a tunesmith run folder (no config.yaml); nothing to resume")
    if resume and not interrupted:
        raise TunesmithError(f"{out}: this run already finished; nothing to resume")
    if not (resume or (cfg.resume == "auto" and interrupted)):
        return None
    found = list_checkpoints(out)
    return found[-1] if found else out  # `out` alone: interrupted before its first checkpoint


class _Signals:
    """Ctrl-C / SIGTERM ask the loop to checkpoint and stop after the current step; a second Ctrl-C stops now."""

    def __init__(self):
        self.received = None
        self.old = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        _stderr("stopping after this step (checkpoint first); press Ctrl-C again to stop at once")

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def train(cfg: RunConfig, *, force: bool = False, resume: bool = False, log=_stderr):
    """Fine-tune as `cfg` says; returns the finished `Run`.

    `resume` (or `cfg.resume == "auto"`): continue the interrupted run in `cfg.output` from its newest
    checkpoint; with the same config the result equals an uninterrupted run."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    if Path(cfg.model).expanduser().exists():  # so the run folder still finds its base from another cwd
        cfg = cfg.model_copy(update={"model": str(Path(cfg.model).expanduser().resolve())})
    out = Path(cfg.output)
    start_from = _resume_point(out, resume, cfg)
    if start_from is None:
        prepare_run_dir(out, force, check_only=True)  # say so now, not after loading data and model
    task = get_task(cfg.task)
    check_quantize(cfg.quantize)
    check_liger(cfg.liger)
    cfg = cfg.model_copy(update={"dtype": dtype_name(cfg.dtype)})  # the saved config records what "auto" chose
    tune_malloc()
    set_seed(cfg.seed)
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, chat=task.CHAT)
    for path in filter(None, (cfg.data, cfg.val_data)):  # several bad rows: say how many, not just the first
        problems = invalid_rows(path, task, cfg)
        if len(problems) > 1:
            raise TunesmithError(problems_line(problems))
    data = task.prepare(cfg, tokenizer, log)  # bad rows stop us here, before any folder is written

    chosen = auto_settings(cfg, len(data.train), task)
    auto_cap = why = None
    if "epochs" in chosen:
        cap, why = auto_epochs(len(data.train))
        auto_cap = f"{cap:g} epochs: {why}"
    cfg = apply(cfg, chosen)
    log(settings_line(cfg, chosen, task.NAME, why and f"{why}, from {len(data.train):,} training examples"))
    metric = metric_for(task, cfg, data)
    forgetting = Forgetting(cfg, task, tokenizer, bool(data.val))  # a bad probe file stops us here too
    step0_key = _step0_key(cfg, task, data, metric)
    # The model loads before the run folder is written: a refused or broken model leaves no folder behind.
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum)
    setup = setup_model(cfg, task, tokenizer, data.meta, log, device_type=accelerator.device.type)
    loss_mod, optimizer, params, neftune = setup.loss_mod, setup.optimizer, setup.params, setup.neftune
    mixed = setup.mixed
    if start_from is None:
        prepare_run_dir(out, force)
    else:
        clean_partial(out)
    save_config(cfg, out / "config.yaml")
    if data.meta:
        (out / "task.json").write_text(json.dumps(data.meta, indent=2))

    sampler = LengthBucketSampler([len(x.input_ids) for x in data.train], cfg.batch_size, cfg.seed)
    train_dl = torch.utils.data.DataLoader(data.train, batch_sampler=sampler, collate_fn=setup.collate)
    val_dl = ordered_loader(data.val, cfg.batch_size * 2, setup.collate) if data.val else None
    loss_mod, optimizer, train_dl = accelerator.prepare(loss_mod, optimizer, train_dl)
    if val_dl is not None:
        val_dl = accelerator.prepare(val_dl)

    steps_per_epoch = max(1, len(train_dl) // cfg.grad_accum)
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    scheduler = get_scheduler(
        cfg.scheduler if cfg.scheduler != "constant" else "constant_with_warmup",
        optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    # Auto length evaluates once an epoch (the unit in which a small set's facts come round again).
    eval_every = cfg.eval_every or (
        min(steps_per_epoch, total_steps) if auto_cap and cfg.epochs >= 3 else max(1, total_steps // 5)
    )

    # What the loop carries between steps; a checkpoint saves exactly this.
    st = {
        "epoch": 0,
        "batches_in_epoch": 0,
        "tokens": 0,
        "best": None,
        "best_loss": None,
        "best_step": None,
        "bad_evals": 0,
        "rose_at": None,
        "elapsed": 0.0,
        "eval_seconds": 0.0,
        "eval_cost": 0.0,  # seconds the last evaluation took to compute (a cached one: when it was computed)
        "skipped_steps": 0,
        "select_by": metric,
        "auto_cap": auto_cap,
        "eval_every": eval_every,
        "general_base": None,  # the probe's step-0 scores (train/forgetting.py)
        "general_within": False,
        "sound_seen": False,  # collapse (Selector): an evaluation had not collapsed; the first that did, and why
        "best_collapsed": False,
        "collapsed_at": None,
        "collapse_note": None,
    }
    step = 0
    if start_from is not None and start_from != out:
        saved = load_checkpoint(start_from, accelerator.unwrap_model(loss_mod).model, optimizer, scheduler)
        if "select_by" not in saved:  # a checkpoint from before select_by: its "best" is a validation loss
            saved.update(select_by="loss", best_loss=saved.get("best"))
        st, step = {k: saved.get(k, v) for k, v in st.items()}, saved["step"]
        # The saved config has the auto epochs filled in: the cap and evaluation cadence come from the run itself.
        auto_cap, eval_every = st["auto_cap"], cfg.eval_every or st["eval_every"] or eval_every
        if st["select_by"] != metric:
            log(f"select_by changed on resume: {st['select_by']} -> {metric}; the best score starts afresh")
            st.update(select_by=metric, best=None, best_loss=None, bad_evals=0, rose_at=None)
        log(f"resuming from {start_from} (step {step} of {total_steps})")
        if scheduler.base_lrs[0] != cfg.lr:  # `--resume RUN --lr X`, e.g. after a non-finite loss
            log(f"learning rate changed on resume: {scheduler.base_lrs[0]:g} -> {cfg.lr:g}")
            scheduler.base_lrs = [cfg.lr] * len(scheduler.base_lrs)
            for group, fn in zip(optimizer.param_groups, scheduler.lr_lambdas):
                group["initial_lr"], group["lr"] = cfg.lr, cfg.lr * fn(scheduler.last_epoch)
    elif start_from is not None:
        log(f"{out}: interrupted before its first checkpoint; starting it again from step 0")
    save_every = cfg.save_steps or eval_every
    length = f"up to {total_steps} steps" if auto_cap else f"{total_steps} steps"
    # Spaced by cost where evaluations generate answers (sft, or the probe); an encoder's is one forward pass,
    # and spacing it out only made early stopping later (spam, 1,000 rows: 1,250 steps instead of 625).
    fixed_schedule = cfg.eval_every is not None or not (task.GENERATES or forgetting.active)
    schedule = (
        f"eval every {eval_every} steps"
        if fixed_schedule
        else f"eval at most every {eval_every} steps, spaced so evaluations take about {EVAL_SHARE:.0%} of the time"
    )
    saving = f"checkpoint every {cfg.save_steps}" if cfg.save_steps else "checkpoint at each evaluation"
    log(
        f"training: {length} ({total_steps / steps_per_epoch:.2f} epochs), batch {cfg.batch_size}"
        f" x accum {cfg.grad_accum}, lr {cfg.lr:g} {cfg.scheduler}, {schedule}, {saving}"
    )
    if step0_key is not None or forgetting.key is not None:
        hit = basecache.load(step0_key) is not None and (forgetting.key is None or basecache.load(forgetting.key))
        log(f"base-model figures (step 0): {'cached' if hit else 'computing (once; cached for later runs)'}")
    if val_dl is not None:
        stopping = (
            "never stops early"
            if cfg.early_stopping_patience is None
            else f"stops after {cfg.early_stopping_patience} evaluations without a better score"
        )
        cost = (
            f"; each evaluation answers {min(len(data.val), cfg.val_generate_rows)} validation rows greedily"
            if metric != "loss" and task.GENERATES
            else ""
        )
        ties = " (ties: lower loss)" if metric != "loss" else ""
        log(
            f"plan: keep the weights with the best validation {metric}{ties}; {stopping}"
            + (f"; cap {auto_cap}" if auto_cap else "")
            + cost
        )
        if forgetting.active:
            log(forgetting.plan())

    device_type = accelerator.device.type
    mem_before = peak_memory_gb(device_type)
    # padded tokens of the largest batch the sampler can form: a bound for the activations' size
    largest = cfg.batch_size * max((len(x.input_ids) for x in data.train), default=1)
    log(
        f"memory: {mem_before:.1f} GB with the model loaded ({'GPU' if device_type == 'cuda' else 'RSS'}); "
        "the expected peak follows the first step"
    )
    resumed = start_from not in (None, out)
    metrics = MetricsLog(out, cfg.tensorboard, resume_step=step if resumed else None)
    sel = Selector(metric, cfg.early_stopping_patience, st, cfg.max_forgetting)
    stopped_early = False
    last_eval_step = None
    window_tokens, window_loss, window_n = 0, 0.0, 0
    t0 = t_window = t_step = time.perf_counter()
    start_step, train_seconds = step, 0.0  # for the default evaluation schedule: seconds per training step
    bar = _Progress(total_steps)
    loss_mod.train()

    acc_name = task.ACCURACY_NAME
    last_saved = step if resumed else None

    def checkpoint():
        nonlocal last_saved
        if accelerator.is_main_process and last_saved != step:
            now = {**st, **sel.state(), "elapsed": st["elapsed"] + time.perf_counter() - t0}
            save_checkpoint(
                out, step, accelerator.unwrap_model(loss_mod).model, optimizer, scheduler, now, cfg.keep_checkpoints
            )
        last_saved = step

    def answer_all(generate_val: bool) -> tuple[dict | None, dict | None]:
        """One decode pass for every answer this evaluation generates (issue 29): the task's validation rows and
        the general probe's questions step together. (None, None) when there are not two sets to join."""
        val_q = task.val_questions(data, cfg) if generate_val and metric != "loss" else None
        probe_q = forgetting.questions(step)
        if val_q is None or probe_q is None:
            return None, None
        with mixed.autocast():
            val, probe = joint_answer_scores(accelerator.unwrap_model(loss_mod).model, tokenizer, [val_q, probe_q])
        loss_mod.train()
        return val, probe

    def validate(answered: dict | None) -> dict:
        """The validation figures of the model as it is now: loss, and the task's scores."""
        with mixed.autocast():
            row = evaluate_loss(loss_mod, val_dl, lambda t: accelerator.reduce(t, "sum"))
        if metric != "loss" or not task.GENERATES:  # scores that cost no generation also watch for collapse
            model_now = accelerator.unwrap_model(loss_mod).model
            kw = {} if answered is None else {"answered": answered}
            with mixed.autocast():
                row.update({f"eval_{k}": v for k, v in task.val_scores(model_now, tokenizer, data, cfg, **kw).items()})
            loss_mod.train()
        return row

    def run_eval() -> bool:
        nonlocal last_eval_step
        t_eval = time.perf_counter()
        cached = basecache.load(step0_key) if step == 0 else None  # the base's own figures, computed once
        val_answers, probe_answers = answer_all(generate_val=cached is None)
        if cached is None:
            row = {"step": step, **validate(val_answers)}
            if step == 0:
                computed = round(time.perf_counter() - t_eval, 2)
                basecache.save(step0_key, {**row, "step": None, "computed_seconds": computed})
        else:
            row = {**cached, "step": 0, "eval_cached": True}
            cached_cost = row.pop("computed_seconds", 0.0)
        scores = ""
        if metric != "loss" or not task.GENERATES:
            scores = "  " + "  ".join(
                f"{k[5:]} {v:.3f}" for k, v in row.items() if k.startswith("eval_") and k[5:] in task.SELECT_METRICS
            )
        # step 0: a new task head is untrained and often says one class; that is no sign of a bad --lr
        note = step > 0 and task.collapse_note({k[5:]: v for k, v in row.items() if k.startswith("eval_")})
        if forgetting.active:  # the general-ability probe: what the model still knows besides the new data
            with mixed.autocast():
                row.update(forgetting.score(accelerator.unwrap_model(loss_mod).model, step, st, probe_answers))
            loss_mod.train()
            scores += forgetting.line(row)
        spent = time.perf_counter() - t_eval
        st["eval_seconds"] += spent
        # what an evaluation costs when computed, for the default schedule (a cached step 0 says what it took)
        st["eval_cost"] = (
            spent + (cached_cost if cached else 0.0) + (row["general_seconds"] if row.get("general_cached") else 0.0)
        )
        row["eval_seconds"] = round(spent, 2)
        metrics.write(row)
        last_eval_step = step
        bar.log(
            f"step {step}: eval_loss {row['eval_loss']:.4f}  ppl {row['eval_perplexity']:.2f}  "
            f"{acc_name} {row['eval_token_accuracy']:.3f}{scores}"
        )
        if note:
            st["collapse_note"] = st["collapse_note"] or note
            bar.log(f"warning: step {step}: predictions {note}; try a lower --lr")
        if sel.update(row, step) and accelerator.is_main_process:  # new best (or a tie at a lower loss)
            save_weights(accelerator.unwrap_model(loss_mod).model, out)
        return sel.should_stop

    def non_finite(what: str, value: float) -> None:
        kept = list_checkpoints(out)
        raise RunStopped(
            f"step {step + 1}: {what} is {value} (not finite). Likely causes: a learning rate too high "
            f"(lr {cfg.lr:g}), no or weak gradient clipping (max_grad_norm {cfg.max_grad_norm}), or bad "
            f"rows. Last good checkpoint: {kept[-1] if kept else 'none'}; continue with a lower rate: "
            f"tunesmith train --resume {out} --lr {cfg.lr / 10:g} (or set on_nonfinite: skip)"
        )

    try:
        with _Signals() as signals:
            if val_dl is not None and not resumed:  # step 0: the base model's validation figures
                run_eval()
                t_window = t_step = time.perf_counter()  # throughput and the schedule leave evaluations out
            bad_step = False
            first_tokens = None
            while step < total_steps and not stopped_early:
                train_dl.set_epoch(st["epoch"])
                sampler.skip = st["batches_in_epoch"] * accelerator.num_processes
                for batch in train_dl:
                    st["batches_in_epoch"] += 1
                    with accelerator.accumulate(loss_mod):
                        if neftune is not None:
                            neftune.set_batch(batch)
                        with mixed.autocast():
                            loss_sum, n, _ = loss_mod(**batch)
                        loss = loss_sum / max(n, 1)
                        value = loss.item()
                        if not math.isfinite(value):
                            if cfg.on_nonfinite == "stop":
                                non_finite("the training loss", value)
                            bad_step = True
                        accelerator.backward(mixed.scale(loss))
                        if accelerator.sync_gradients:
                            mixed.unscale(optimizer)
                            if cfg.max_grad_norm:
                                norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                                # fp16: an overflow is the loss scaler's to handle (it skips the step, lowers the scale)
                                if not torch.isfinite(norm) and mixed.scaler is None:
                                    if cfg.on_nonfinite == "stop":
                                        non_finite("the gradient norm", float(norm))
                                    bad_step = True
                            mixed.step(optimizer, skip=bad_step)
                            optimizer.zero_grad(set_to_none=True)
                    real = real_tokens(batch)
                    st["tokens"] += real
                    window_tokens += real
                    window_loss += value
                    window_n += 1
                    if not accelerator.sync_gradients:
                        continue
                    scheduler.step()
                    step += 1
                    now = time.perf_counter()
                    tps = window_tokens / max(now - t_window, 1e-9)
                    row = {
                        "step": step,
                        "epoch": round(st["epoch"] + 1e-9, 4),
                        "train_loss": window_loss / window_n,
                        "lr": scheduler.get_last_lr()[0],
                        "tokens_per_s": tps,
                        "tokens": st["tokens"],
                        "elapsed": round(st["elapsed"] + now - t0, 4),
                    }
                    if bad_step:
                        st["skipped_steps"] += 1
                        row["skipped"] = True
                        bar.log(f"step {step}: non-finite loss or gradient; step skipped (on_nonfinite: skip)")
                    metrics.write(row)
                    if first_tokens is None:
                        first_tokens = batch["input_ids"].numel()
                        after = peak_memory_gb(device_type)
                        bar.log(
                            f"memory: {after:.1f} GB peak after the first step ({first_tokens:,} tokens a batch); "
                            f"expect at most about {memory_forecast(mem_before, after, first_tokens, largest):.1f} "
                            f"GB for the largest batch ({largest:,} tokens)"
                        )
                    bar.update(step, window_loss / window_n, tps, now - t0)
                    window_tokens, window_loss, window_n, t_window, bad_step = 0, 0.0, 0, now, False
                    train_seconds += now - t_step
                    evaluated = val_dl is not None and eval_due(
                        step,
                        last=last_eval_step if last_eval_step is not None else start_step,
                        every=eval_every,
                        total=total_steps,
                        fixed=fixed_schedule,
                        eval_cost=st["eval_cost"],
                        step_seconds=train_seconds / max(step - start_step, 1),
                    )
                    if evaluated:
                        stopped_early = run_eval()
                        t_window = time.perf_counter()  # evaluation time is not training throughput
                    done = stopped_early or step >= total_steps
                    # checkpoints: every save_steps, else with each evaluation (without validation: eval_every)
                    due = step % save_every == 0 if cfg.save_steps or val_dl is None else evaluated
                    if due and not done or signals.received is not None:
                        checkpoint()
                        t_window = time.perf_counter()
                    t_step = time.perf_counter()
                    if signals.received is not None:
                        raise Interrupted(
                            f"interrupted at step {step} of {total_steps}; checkpoint saved. "
                            f"Resume with: tunesmith train --resume {out}"
                        )
                    if done:
                        break
                else:
                    st["epoch"] += 1
                    st["batches_in_epoch"] = 0
    finally:
        bar.close()
        metrics.close()

    reason = stop_reason(
        sel,
        stopped_early=stopped_early,
        step=step,
        auto_cap=auto_cap,
        has_val=val_dl is not None,
        last_eval_step=last_eval_step,
        collapse=st["collapse_note"],
    )
    log(f"stopped: {reason}")
    if sel.best_step is None and accelerator.is_main_process:  # no validation data: keep the last weights
        save_weights(accelerator.unwrap_model(loss_mod).model, out)
    elapsed = st["elapsed"] + time.perf_counter() - t0
    if accelerator.is_main_process:
        tokenizer.save_pretrained(out)
        plot_losses(metrics.rows, out / "loss_curve.png")
        summary = {
            "task": cfg.task,
            "method": cfg.method,
            "model": cfg.model,
            "dtype": cfg.dtype,
            "quantize": cfg.quantize,
            "steps": step,
            "epochs": round(step / steps_per_epoch, 3),
            "tokens": st["tokens"],
            "train_seconds": round(elapsed, 1),
            "tokens_per_s": round(st["tokens"] / max(elapsed, 1e-9), 1),
            "best_eval_loss": sel.best_loss,
            "best_step": sel.best_step,
            "select_by": metric,
            f"best_eval_{metric}": sel.best,
            "stopped_early": stopped_early,
            "stop_reason": reason,
            "collapsed": None
            if sel.collapsed_at is None
            else {"step": sel.collapsed_at, "note": st["collapse_note"], "kept_step_collapsed": sel.best_collapsed},
            "eval_seconds": round(st["eval_seconds"], 1),
            "eval_share": round(st["eval_seconds"] / max(elapsed, 1e-9), 3),
            "eval_steps": [r["step"] for r in metrics.rows if "eval_loss" in r],
            **forgetting.summary(sel.best_step, st, metrics.rows),
            "peak_memory_gb": round(peak_memory_gb(device_type), 2),
            "skipped_steps": st["skipped_steps"],
            "resumed": resumed,
            "trainable_params": setup.trainable,
            "total_params": setup.total,
            "data": data.info,
            "auto": chosen,
        }
        write_json_atomic(out / "summary.json", summary)  # written last: its presence marks a finished run
        kept = (
            f"best weights from step {sel.best_step} (validation {metric} {sel.best:.4g})"
            if sel.best_step is not None
            else "final weights"
        )
        log(
            f"done in {elapsed:.0f}s ({st['eval_seconds']:.0f}s of it validation, "
            f"{st['eval_seconds'] / max(elapsed, 1e-9):.0%}): {step} steps, {st['tokens']:,} tokens, peak memory "
            f"{summary['peak_memory_gb']:.1f} GB; "
            f"kept {kept} in {out}"
        )
    return Run(out)
