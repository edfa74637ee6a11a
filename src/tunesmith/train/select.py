"""Which weights to keep and when to stop: the `select_by` validation score, and how long "auto" trains.

The selection metric is what the user cares about (the task's own: fact accuracy of generated answers for
SFT rows that carry `must_contain`, accuracy for classification, entity F1 for tagging); loss breaks ties,
so a small validation set whose score moves in coarse steps still keeps the best-fitting weights.
"""

from __future__ import annotations

import math

from ..errors import TunesmithError
from ..eval.compare import pct

# Auto length: train until validation stops improving, under a cap. Small datasets get more passes
# (each fact is seen more often), large ones fewer; the example budget bounds the run's time.
AUTO_MAX_EPOCHS = 10
AUTO_EXAMPLE_BUDGET = 20_000
AUTO_MIN_EXAMPLES = 100  # a tiny set still sees this many examples (up to 25 passes)


EVAL_SHARE = 0.15  # the default schedule keeps evaluations to about this share of a run's time (issue 29)


def eval_due(step: int, *, last: int, every: int, total: int, fixed: bool, eval_cost: float, step_seconds: float):
    """Whether to evaluate after optimizer step `step` (`last`: the step of the last evaluation). The final step
    always. A `fixed` schedule (the user's eval_every) every `every` steps. The default one waits at least
    `every` steps, and long enough that one more evaluation (`eval_cost` seconds, as the last ones took) costs
    at most EVAL_SHARE of the time since the last; it skips one that would come within half a gap of the
    final evaluation. Costs not yet known (0) leave the gap at `every`."""
    if step >= total:
        return True
    if fixed:
        return step % every == 0
    gap = every
    if eval_cost > 0 and step_seconds > 0:
        gap = max(gap, math.ceil(eval_cost * (1 - EVAL_SHARE) / (EVAL_SHARE * step_seconds)))
    return step - last >= gap and total - step >= gap / 2


def auto_epochs(n_train: int) -> tuple[float, str]:
    """The epoch cap for a run given no --epochs/--max-steps, and why."""
    n = max(n_train, 1)
    if n * AUTO_MAX_EPOCHS < AUTO_MIN_EXAMPLES:
        e = min(25, math.ceil(AUTO_MIN_EXAMPLES / n))
        return float(e), f"a tiny set: at least {AUTO_MIN_EXAMPLES} examples seen"
    if n * AUTO_MAX_EPOCHS <= AUTO_EXAMPLE_BUDGET:
        return float(AUTO_MAX_EPOCHS), f"at most {AUTO_MAX_EPOCHS} passes"
    e = max(1, AUTO_EXAMPLE_BUDGET // n)
    return float(e), f"a budget of {AUTO_EXAMPLE_BUDGET:,} examples seen"


def metric_for(task, cfg, prepared) -> str:
    """`cfg.select_by`, checked against what the task can score; None = the task's default."""
    offered = tuple(task.SELECT_METRICS)
    if cfg.select_by is None:
        return task.default_select(prepared) if prepared.val else "loss"
    if cfg.select_by != "loss" and cfg.select_by not in offered:
        raise TunesmithError(
            f"select_by '{cfg.select_by}' is not available for task {cfg.task}; "
            f"choose one of: {', '.join(('loss',) + offered)}"
        )
    if cfg.select_by != "loss":
        task.check_select(cfg.select_by, prepared)  # e.g. contains needs validation rows that carry must_contain
    return cfg.select_by


class Selector:
    """Tracks the best evaluation: higher `metric` wins (lower for loss); equal scores go to the lower loss.
    Patience counts evaluations that did not raise the score: a tie kept for its lower loss counts too, so a
    run whose score has stopped rising stops, whatever its loss does.

    `max_forgetting` (train/forgetting.py): an evaluation whose general-ability probe fell more than that below
    step 0's (its row's `general_drop`) stops the run at once, and is never kept unless no evaluation after
    step 0 stayed within the limit: then the best by `metric` alone is kept.

    Collapse (issue 28; the row's `eval_collapsed`, from Task.val_scores): an evaluation whose predictions
    collapsed to one answer is never kept when an earlier one had not collapsed, and counts against patience;
    an evaluation that has not collapsed replaces a collapsed best whatever its score. Step 0 is neither: a
    new task head has not been trained yet, and often gives every row one class."""

    def __init__(self, metric: str, patience: int | None, state: dict | None = None, max_forgetting=None):
        self.metric, self.patience, self.max_forgetting = metric, patience, max_forgetting
        state = state or {}
        self.best, self.best_loss = state.get("best"), state.get("best_loss")
        self.best_step, self.bad_evals = state.get("best_step"), state.get("bad_evals", 0)
        rose = state.get("rose_at")  # the last evaluation that raised the score (older checkpoints: best_step)
        self.rose_at = self.best_step if rose is None else rose
        self.within = state.get("general_within", False)  # an evaluation after step 0 was within max_forgetting
        self.fell = None  # (step, general_drop) of the evaluation over max_forgetting that stops the run
        self.sound = state.get("sound_seen", False)  # an evaluation whose predictions had not collapsed
        self.best_collapsed = state.get("best_collapsed", False)
        self.collapsed_at = state.get("collapsed_at")  # the first evaluation that collapsed

    def score(self, row: dict) -> float:
        return row["eval_loss"] if self.metric == "loss" else row[f"eval_{self.metric}"]

    def update(self, row: dict, step: int) -> bool:
        """True when this evaluation is the new best (its weights should be kept)."""
        drop = row.get("general_drop")
        if self.max_forgetting is not None and drop is not None and drop > self.max_forgetting + 1e-12:
            self.fell = (step, drop)
            if self.within:
                return False
        elif step > 0:
            self.within = True
        collapsed = bool(row.get("eval_collapsed")) and step > 0
        if collapsed and self.collapsed_at is None:
            self.collapsed_at = step
        if collapsed and self.sound:  # an earlier evaluation had not collapsed: never trade it for this one
            self.bad_evals += 1
            return False
        self.sound = self.sound or (step > 0 and "eval_collapsed" in row and not collapsed)
        score, loss = self.score(row), row["eval_loss"]
        if not (math.isfinite(score) and math.isfinite(loss)):  # a NaN evaluation is never the one to keep
            better = False
        elif self.best is None or (self.best_collapsed and not collapsed):
            better = True
        elif self.metric == "loss":
            better = score < self.best - 1e-6
        else:
            better = score > self.best + 1e-9
            tie = abs(score - self.best) <= 1e-9 and loss < self.best_loss - 1e-6
            if tie:  # the same score at a lower loss: keep these weights, but it is no improvement to wait for
                self.best_loss, self.best_step, self.best_collapsed = loss, step, collapsed
                self.bad_evals += 1
                return True
        if better:
            self.best, self.best_loss, self.best_step, self.bad_evals, self.rose_at = score, loss, step, 0, step
            self.best_collapsed = collapsed
        else:
            self.bad_evals += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.fell is not None or self.patience is not None and self.bad_evals >= self.patience

    def state(self) -> dict:
        return {
            "best": self.best,
            "best_loss": self.best_loss,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "rose_at": self.rose_at,
            "general_within": self.within,
            "sound_seen": self.sound,
            "best_collapsed": self.best_collapsed,
            "collapsed_at": self.collapsed_at,
        }


def stop_reason(
    sel: Selector,
    *,
    stopped_early: bool,
    step: int,
    auto_cap: str | None,
    has_val: bool,
    last_eval_step: int | None,
    collapse: str | None = None,
) -> str:
    """Why the run stopped and which step it kept; `collapse`: the task's note on the first collapsed evaluation."""
    reason = _reason(sel, stopped_early, step, auto_cap, has_val, last_eval_step)
    if sel.collapsed_at is None or not collapse:
        return reason
    what = f"predictions {collapse} at step {sel.collapsed_at}"
    if sel.best_collapsed:
        return f"{what}, and so had the kept step {sel.best_step}: try a lower --lr ({reason})"
    if sel.best_step == 0:
        return f"{what}; no evaluation after step 0 beat it, so its weights are kept: try a lower --lr"
    return f"{reason}; {what}, so step {sel.best_step}, which had not, is kept: try a lower --lr"


def _reason(sel, stopped_early, step, auto_cap, has_val, last_eval_step) -> str:
    if not has_val:
        return f"no validation data: trained all {step} steps and kept the final weights"
    name = f"validation {sel.metric}"
    if sel.fell is not None:
        return _forgetting_reason(sel, name)
    if sel.best_step == 0 and last_eval_step:
        return (
            f"{name} never beat the base model (step 0), so the kept weights are the base's: try a higher "
            f"--lr, more epochs or more data"
        )
    kept = "" if sel.rose_at == sel.best_step else f"; kept step {sel.best_step} (the same score at a lower loss)"
    if stopped_early:
        return (
            f"{name} stopped improving after step {sel.rose_at} (no better score in {sel.patience} evaluations)" + kept
        )
    if auto_cap is None:
        return f"reached the requested {step} steps; best {name} at step {sel.rose_at}{kept}"
    if sel.rose_at == last_eval_step and sel.rose_at not in (None, 0):
        return (
            f"cap reached while still improving ({auto_cap}); best {name} at the last evaluation, "
            f"step {sel.rose_at}: more epochs may help (--epochs)"
        )
    return f"cap reached ({auto_cap}); best {name} at step {sel.rose_at}{kept}"


def _forgetting_reason(sel: Selector, name: str) -> str:
    fell_at, drop = sel.fell
    limit = sel.max_forgetting
    head = f"general-ability probe fell {pct(drop, limit)} (> {pct(limit)}) at step {fell_at}"
    if sel.within:
        if sel.best_step == 0:
            return f"{head}; kept step 0, the base model's weights: no evaluation within the limit beat its {name}"
        return f"{head}; kept step {sel.best_step}, the best {name} within the limit"
    head += ", the first evaluation after step 0, so no trained weights stayed within the limit"
    hint = "try a lower --lr, or evaluate sooner (--eval-every)"
    if sel.best_step == 0:
        return f"{head}; kept step 0, the base model's weights ({name} never beat them): {hint}"
    return f"{head}; kept step {sel.best_step}, the best {name}, although it is over the limit: {hint}"
