"""The general-ability probe in the training loop.

At step 0 and at every evaluation the probe (eval/general.py) is scored on the model being trained: its
`contains` score, the perplexity of its text, and the relative fall of `contains` below step 0's (`general_drop`).
The `max_forgetting` limit on that fall is the Selector's (train/select.py): an evaluation whose fall exceeds it
is never kept, and it stops the run at once (forgetting rarely comes back while training goes on, and every
further step costs time); the kept weights are the best `select_by` evaluation among those within the limit.
When no evaluation after step 0 stayed within it, the weights kept are the best by `select_by` alone (step 0's,
the base model's, only where nothing beat them), and the stop reason says plainly that they are over the limit.
"""

from __future__ import annotations

from ..errors import TunesmithError
from ..eval import basecache
from ..eval.compare import pct
from ..eval.general import (
    ANSWER_CAP,
    asks,
    base_probe_scores,
    check_limit,
    probe_for,
    probe_key,
    relative_drop,
    score_probe,
)


class Forgetting:
    def __init__(self, cfg, task, tokenizer, has_val: bool = True):
        self.probe = probe_for(task, cfg.general, cfg.system_prompt)  # asked as the run's users ask
        check_limit(cfg.max_forgetting, self.probe, cfg.task, tokenizer)
        if cfg.max_forgetting is not None and not has_val:
            raise TunesmithError("max_forgetting needs evaluations, and so validation data; this run has none")
        self.setting, self.limit, self.tokenizer = cfg.general, cfg.max_forgetting, tokenizer
        # Step 0 scores the base model itself (the probe's tasks add no new head): its figures are cached.
        self.key = probe_key(cfg, self.probe) if self.probe is not None and not task.HEAD else None

    @property
    def active(self) -> bool:
        return self.probe is not None

    def questions(self, step: int) -> tuple[list, int] | None:
        """The probe's questions and answer cap, for an evaluation to answer in its one decode pass; None when
        there are none to ask, or at step 0 when the base's figures are cached."""
        if not self.active or not asks(self.probe, self.tokenizer):
            return None
        if step == 0 and basecache.load(self.key) is not None:
            return None
        return self.probe.questions, ANSWER_CAP

    def plan(self) -> str:
        limit = (
            f"; max_forgetting {pct(self.limit)}: an evaluation whose probe score falls more than that below "
            "step 0's is not kept and stops the run"
            if self.limit is not None
            else ""
        )
        return f"general-ability probe at each evaluation: {self.probe.describe()}{limit}"

    def score(self, model, step: int, st: dict, answered: dict | None = None) -> dict:
        """The probe's fields for this evaluation's metrics row (general_contains, general_perplexity,
        general_drop, general_seconds); step 0's scores become the base the drop is measured from
        (st["general_base"], kept in checkpoints for a resumed run). `answered`: the questions' scores, when the
        evaluation answered them already (`questions`)."""
        if step == 0:
            s = base_probe_scores(self.key, lambda: model, self.tokenizer, self.probe, answered)
        else:
            s = score_probe(model, self.tokenizer, self.probe, answered=answered)
        if step == 0:
            st["general_base"] = {"contains": s["contains"], "perplexity": s["perplexity"]}
        row = {
            "general_contains": s["contains"],
            "general_perplexity": s["perplexity"],
            "general_drop": relative_drop((st["general_base"] or {}).get("contains"), s["contains"]),
            "general_seconds": s["seconds"],
            "general_cached": True if s.get("cached") else None,
        }
        return {k: v for k, v in row.items() if v is not None}

    @staticmethod
    def line(row: dict) -> str:
        """The probe's part of the evaluation's progress line."""
        out = ""
        if "general_contains" in row:
            out += f"  general {row['general_contains']:.3f}"
            if row.get("general_drop"):
                out += f" ({'-' if row['general_drop'] > 0 else '+'}{pct(abs(row['general_drop']))} vs step 0)"
        if "general_perplexity" in row:
            out += f"  general_ppl {row['general_perplexity']:.2f}"
        return out

    def summary(self, best_step: int | None, st: dict, rows: list[dict]) -> dict:
        """The summary's probe fields; the kept evaluation's drop is read from the metrics rows."""
        kept = next((r for r in rows if r["step"] == best_step and "eval_loss" in r), {})
        return {
            "general_probe": self.setting if self.active else None,
            "general_step0": st["general_base"],
            "general_drop": kept.get("general_drop"),
            "max_forgetting": self.limit,
        }
