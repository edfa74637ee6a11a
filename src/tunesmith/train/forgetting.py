"""The general-ability probe in the training loop, and the `max_forgetting` limit.

At step 0 and at every evaluation the probe (eval/general.py) is scored on the model being trained: its
`contains` score, the perplexity of its text, and the relative fall of `contains` below step 0's (`general_drop`).
With `max_forgetting` set, an evaluation whose fall exceeds the limit is never kept, and it stops the run at once
(forgetting rarely comes back while training goes on, and every further step costs time): the kept weights are
the best `select_by` evaluation among those within the limit. When no evaluation after step 0 stayed within it,
the weights kept are the best by `select_by` alone (step 0's, the base model's, only where nothing beat them),
and the stop reason says plainly that they are over the limit.
"""

from __future__ import annotations

from ..errors import TunesmithError
from ..eval.general import check_limit, pct, probe_for, relative_drop, score_probe

# What the loop's state (and so each checkpoint) carries for the probe.
STATE = {"general_base": None, "general_at": {}, "general_within": False, "general_fell": None}


class Forgetting:
    def __init__(self, cfg, task, tokenizer, has_val: bool = True):
        self.probe = probe_for(task, cfg.general, cfg.system_prompt)  # asked as the run's users ask
        check_limit(cfg.max_forgetting, self.probe, cfg.task, tokenizer)
        if cfg.max_forgetting is not None and not has_val:
            raise TunesmithError("max_forgetting needs evaluations, and so validation data; this run has none")
        self.limit, self.tokenizer = cfg.max_forgetting, tokenizer

    @property
    def active(self) -> bool:
        return self.probe is not None

    def plan(self) -> str | None:
        if self.probe is None:
            return None
        limit = (
            f"; max_forgetting {pct(self.limit)}: an evaluation whose probe score falls more than that below "
            "step 0's is not kept and stops the run"
            if self.limit is not None
            else ""
        )
        return f"general-ability probe at each evaluation: {self.probe.describe()}{limit}"

    def score(self, model, step: int, st: dict) -> dict:
        """The probe's fields for this evaluation's metrics row (general_contains, general_perplexity,
        general_drop, general_seconds); step 0's scores become the base the drop is measured from."""
        s = score_probe(model, self.tokenizer, self.probe)
        if step == 0:
            st["general_base"] = {"contains": s["contains"], "perplexity": s["perplexity"]}
        drop = relative_drop((st.get("general_base") or {}).get("contains"), s["contains"])
        st["general_at"] = {**st.get("general_at", {}), str(step): drop}
        row = {
            "general_contains": s["contains"],
            "general_perplexity": s["perplexity"],
            "general_drop": drop,
            "general_seconds": s["seconds"],
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

    def over(self, row: dict) -> bool:
        drop = row.get("general_drop")
        return self.limit is not None and drop is not None and drop > self.limit + 1e-12

    def judge(self, row: dict, step: int, st: dict) -> str:
        """ "over": this evaluation exceeds the limit (stop now; keep it only if nothing after step 0 was
        within the limit); "ok": it may be kept as usual."""
        if self.over(row):
            st["general_fell"] = [step, row["general_drop"]]
            return "over"
        if step > 0:
            st["general_within"] = True
        return "ok"

    def stop_reason(self, sel, st: dict, usual: str) -> str:
        fell = st.get("general_fell")
        if fell is None:
            return usual
        step, drop = fell
        name = f"validation {sel.metric}"
        head = f"general-ability probe fell {pct(drop, self.limit)} (> {pct(self.limit)}) at step {step}"
        if st.get("general_within"):
            if sel.best_step == 0:
                return f"{head}; kept step 0, the base model's weights: no evaluation within the limit beat its {name}"
            return f"{head}; kept step {sel.best_step}, the best {name} within the limit"
        head += ", the first evaluation after step 0, so no trained weights stayed within the limit"
        hint = "try a lower --lr, or evaluate sooner (--eval-every)"
        if sel.best_step == 0:
            return f"{head}; kept step 0, the base model's weights ({name} never beat them): {hint}"
        return f"{head}; kept step {sel.best_step}, the best {name}, although it is over the limit: {hint}"

    @staticmethod
    def summary(cfg, sel, st: dict, probe_on: bool) -> dict:
        at = st.get("general_at") or {}
        return {
            "general_probe": cfg.general if probe_on else None,
            "general_step0": st.get("general_base"),
            "general_drop": at.get(str(sel.best_step)) if sel.best_step is not None else None,
            "max_forgetting": cfg.max_forgetting,
        }
