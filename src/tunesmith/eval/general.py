"""The general-ability probe: does fine-tuning make a model forget what it knew before?

A fixed set of general questions (each with the string its answer must contain) is answered greedily and
scored with `contains`, and a general text is scored for perplexity. Training scores it at step 0 and at every
evaluation (`general_contains`, `general_perplexity`, `general_drop` in metrics.jsonl), so a run can keep only
weights that stay within `max_forgetting` of step 0; `tunesmith eval` scores it for the base model and the
tuned one. It applies to tasks that generate text (sft, clm), not to encoder tasks.

The shipped probe (`demo_data/general.jsonl` and `general.txt`, written for this project) has 40 short
questions that the base SmolLM2-135M-Instruct answers almost all right (docs/evaluation.md, "Forgetting"). Its
cost is bounded: answers are capped at 32 new tokens (less when the references are short) and generated in one
batch; the text (810 words, 946 SmolLM2 tokens) is scored in blocks of 256 tokens, 8 blocks a batch.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..data.batch import collate, ordered_loader
from ..data.formats import Example, detect_format, normalise, with_system
from ..data.load import load_rows
from ..data.tokenize import Encoded
from ..errors import DataError, TunesmithError
from . import basecache
from .evaluate import answer_scores, evaluate_loss

SHIPPED = "default"  # the `general` setting that means the probe shipped in demo_data/
OFF = "none"  # the `general` setting that turns the probe off (YAML null too)
ANSWER_CAP = 32  # new tokens at most per answer
TEXT_BLOCK = 256  # tokens per perplexity block
BATCH = 64  # questions generated together (the shipped 40 in one batch)


def shipped_files() -> tuple[Path, Path]:
    base = resources.files("tunesmith") / "demo_data"
    return Path(str(base / "general.jsonl")), Path(str(base / "general.txt"))


def is_off(setting: str | None) -> bool:
    return setting is None or setting.strip().lower() == OFF


@dataclass
class Probe:
    source: str  # "default" or the file it was read from
    questions: list[Example] = field(default_factory=list)  # chat rows, each with must_contain
    text: str = ""  # the general text scored for perplexity ("" = none)
    _blocks: list[Encoded] | None = field(default=None, repr=False, compare=False)

    def blocks(self, tokenizer) -> list[Encoded]:
        """The text in blocks of TEXT_BLOCK tokens, tokenized on the first call only (a run scores the probe at
        every evaluation with one tokenizer)."""
        if self._blocks is None:
            ids = tokenizer(self.text, add_special_tokens=False)["input_ids"]
            blocks = (ids[i : i + TEXT_BLOCK] for i in range(0, len(ids), TEXT_BLOCK))
            self._blocks = [Encoded(b, b, 1) for b in blocks if len(b) > 1]  # a 1-token tail predicts nothing
        return self._blocks

    def describe(self) -> str:
        parts = []
        if self.questions:
            parts.append(f"{len(self.questions)} questions (answers capped at {ANSWER_CAP} tokens)")
        if self.text:
            parts.append(f"{len(self.text.split()):,} words of text for perplexity")
        where = "the shipped probe" if self.source == SHIPPED else self.source
        return f"{where}: " + " + ".join(parts)


def _read(path: Path, probe: Probe) -> None:
    """Chat rows (each with must_contain) are questions; text rows (or a .txt file's paragraphs) the text."""
    texts = []
    for line, row in load_rows(path):
        fmt = detect_format(path, [(line, row)])
        ex = normalise(path, line, row, fmt)
        if ex.messages is None:
            texts.append(ex.text)
        elif not ex.must_contain:
            raise DataError(
                path, line, "a general-ability probe question needs 'must_contain' (the string its answer must hold)"
            )
        else:
            probe.questions.append(ex)
    probe.text = "\n\n".join(filter(None, [probe.text, *texts]))


def load_probe(setting: str | None, system_prompt: str | None = None) -> Probe | None:
    """The probe a `general` setting names: None when off, the shipped one for "default", else a file of chat
    rows with must_contain (questions) and/or text rows (perplexity); a bad row raises `file:line: problem`.
    `system_prompt`: the run's, put before questions that have none, as the run's users will ask them."""
    if is_off(setting):
        return None
    if setting.strip().lower() == SHIPPED:
        probe = Probe(SHIPPED)
        for path in shipped_files():
            _read(path, probe)
    else:
        path = Path(setting).expanduser()
        if not path.is_file():
            raise DataError(path, None, f"general-ability probe file not found (give a file, '{SHIPPED}' or '{OFF}')")
        probe = Probe(str(path))
        _read(path, probe)
        if not probe.questions and not probe.text:
            raise DataError(path, None, "the general-ability probe has no questions and no text")
    for q in probe.questions:
        q.messages = with_system(q.messages, system_prompt)
    return probe


def has_chat(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def asks(probe: Probe, tokenizer) -> bool:
    """The probe has questions this tokenizer can ask (a chat template)."""
    return bool(probe.questions) and has_chat(tokenizer)


def score_probe(model, tokenizer, probe: Probe, *, batch_size: int = BATCH, answered: dict | None = None) -> dict:
    """{"contains", "perplexity", "seconds"} of `model` on the probe (contains: None without questions or
    without a chat template to ask them with; perplexity: None without text). `answered`: the questions' scores
    when they were answered already (eval.evaluate.joint_answer_scores, with ANSWER_CAP). Leaves the model in
    eval mode."""
    from ..models.heads import CausalLMLoss

    t0 = time.perf_counter()
    out = {"contains": None, "perplexity": None}
    model.eval()
    if answered is not None:
        out["contains"] = answered.get("contains")
    elif asks(probe, tokenizer):
        out["contains"] = answer_scores(model, tokenizer, probe.questions, batch_size, cap=ANSWER_CAP).get("contains")
    if probe.text:
        loader = ordered_loader(probe.blocks(tokenizer), 8, functools.partial(collate, pad_id=tokenizer.pad_token_id))
        out["perplexity"] = evaluate_loss(CausalLMLoss(model).eval(), loader)["eval_perplexity"]
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def probe_key(cfg, probe: Probe) -> str | None:
    """The base-figure cache key (eval/basecache.py) of `probe` scored on `cfg.model` as `cfg` loads it: shared by
    a training run's step 0 and `tunesmith eval`'s base column, which score the same model on the same probe."""
    questions = [[q.messages, q.must_contain] for q in probe.questions]
    return basecache.key(
        cfg.model, "probe", cfg.dtype, cfg.quantize, questions, probe.text, ANSWER_CAP, TEXT_BLOCK, BATCH
    )


def base_probe_scores(key: str | None, model_fn, tokenizer, probe: Probe, answered: dict | None = None) -> dict:
    """score_probe on the base model, or the figures a run scored before under `key`; `model_fn()` gives the
    model (or a context manager over it) only when they must be computed (`answered`: as score_probe). Cached
    figures carry "cached": True and "seconds": the time the first computation took."""
    hit = basecache.load(key)
    if hit is not None:
        return {**hit, "cached": True}
    model = model_fn()
    if hasattr(model, "__enter__"):
        with model as m:
            scores = score_probe(m, tokenizer, probe, answered=answered)
    else:
        scores = score_probe(model, tokenizer, probe, answered=answered)
    basecache.save(key, scores)
    return scores


def relative_drop(base: float | None, now: float | None) -> float | None:
    """How far the probe's contains score fell from `base`, as a fraction of it (negative: it rose). A base of
    0 has nothing to lose: 0."""
    if base is None or now is None:
        return None
    return 0.0 if base <= 0 else (base - now) / base


def probe_for(task, setting: str | None, system_prompt: str | None = None) -> Probe | None:
    """The probe to score for a run of `task`: None for tasks that do not generate text (encoders)."""
    return load_probe(setting, system_prompt) if getattr(task, "CAUSAL", False) else None


def general_block(run, setting: str | None = None, base: bool = True, log=None) -> dict | None:
    """`tunesmith eval`'s "general" block for a finished run: the probe scored on the tuned model and (with
    `base`) on the base, and the relative drop of its contains score; None when the probe is off or the task
    does not generate text. `setting`: a probe file, "default" or "none"; unset = the run's own `general`."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    setting = run.config.general if setting is None else setting
    probe = probe_for(run.task, setting, run.config.system_prompt)
    if probe is None:
        return None
    log(f"general-ability probe: {probe.describe()}")
    tuned = score_probe(run.model, run.tokenizer, probe)
    before = None
    if base:  # the base's figures are those its training run scored at step 0, where they match
        before = base_probe_scores(probe_key(run.config, probe), run.base_model, run.tokenizer, probe)
        before.pop("cached", None)
    return {
        "probe": probe.source,
        "questions": len(probe.questions),
        "base": before,
        "tuned": tuned,
        "drop": relative_drop((before or {}).get("contains"), tuned["contains"]),
    }


def check_limit(max_forgetting: float | None, probe: Probe | None, task_name: str, tokenizer) -> None:
    """Refuse a `max_forgetting` that cannot be measured (no probe questions, or no chat template)."""
    if max_forgetting is None:
        return
    if probe is None:
        raise TunesmithError(
            f"max_forgetting needs the general-ability probe, which is off for task {task_name} "
            "(on for tasks that generate text: sft, clm) or with general: none"
        )
    if not probe.questions or not has_chat(tokenizer):
        raise TunesmithError(
            f"max_forgetting needs general-ability probe questions answered through a chat template; "
            f"{probe.source} has {len(probe.questions)} questions"
            + ("" if has_chat(tokenizer) else " and the tokenizer has no chat template")
        )
