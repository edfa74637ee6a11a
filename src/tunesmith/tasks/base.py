"""The task contract, and the registry tasks add themselves to.

A task is one class, in one module of this package (or anywhere: a test or a user's own code), that
subclasses `Task` and is decorated with `@register`. Nothing outside `tasks/` tests a task by name: the
training loop, the data doctor, evaluation, serving and export ask the task object instead, through the
members below. A built-in module `tasks/<name>.py` is found without a list (it is imported the first time
its name is asked for), so a new task is one new module. A task of your own, in your own module, reaches
the command line through TUNESMITH_TASKS (comma-separated modules imported before tasks are looked up):
`TUNESMITH_TASKS=my_tasks tunesmith train --task regress ...`.

    @register
    class Regression(Task):
        NAME = "regress"
        ...
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import TunesmithError

Log = Callable[[str], None]


@dataclass
class Prepared:
    """What `Task.prepare` hands the training loop."""

    train: list  # encoded training items, fed to `collate_batch`
    val: list  # encoded validation items
    info: dict = field(default_factory=dict)  # counts for the plan and summary (train_rows, val_rows, ...)
    meta: dict = field(default_factory=dict)  # what the task must remember (labels...), saved as task.json
    val_examples: list = field(default_factory=list)  # the validation rows as read (sft: to generate answers)


@dataclass
class Lengths:
    """Per valid row of a training file, as `Task.measure` counts it for `tunesmith check`."""

    full: list[int] = field(default_factory=list)  # tokens before any cut
    kept: list[int] = field(default_factory=list)  # tokens training would use; 0 when the row is dropped
    items: dict = field(default_factory=dict)  # row index -> encoded item, where the task keeps them
    truncated: int = 0
    dropped: int = 0


class Task:
    """One kind of fine-tuning. Class attributes describe it; methods do its work. Members without a
    default here must be given by every task; the others have the behaviour written on them."""

    NAME: ClassVar[str]  # the value of `task:` in a config and of --task
    DESCRIPTION: ClassVar[str] = ""  # one line, for help texts
    PEFT_TASK: ClassVar[str | None] = None  # PEFT's task_type for LoRA (None: a plain PeftModel)
    HEAD: ClassVar[tuple[str, ...]] = ()  # module names trained in full under LoRA (a new task head)
    AUTO_CLASS: ClassVar[str] = "AutoModel"  # the transformers class that loads an exported model
    CHAT: ClassVar[bool] = False  # rows are conversations: the tokenizer needs a chat template
    CAUSAL: ClassVar[bool] = False  # a causal LM that generates text: chat, serve's /v1/chat, GGUF export
    SERVE_KIND: ClassVar[str | None] = None  # "generate" | "classify" | "tag": serve's endpoint; None: not served
    LABELS: ClassVar[str | None] = None  # what `meta["labels"]` names for export and check: "labels" | "tags"
    PADDING_FREE: ClassVar[bool] = False  # items stand alone, so a batch may be one packed row (sft, clm)
    ROW_FORMAT: ClassVar[str | None] = None  # a fixed row layout ("labelled", "tagged"); None: detected
    ROW_FORMAT_NAME: ClassVar[str | None] = None  # how `check` names ROW_FORMAT ("labelled text")
    TEXT_ONLY: ClassVar[bool] = False  # rows must be raw text (a .txt file or rows with 'text')
    CONLL: ClassVar[bool] = False  # also reads CoNLL column files (.conll, .iob, ...)
    PACKED: ClassVar[bool] = False  # documents are packed into max_seq_len blocks: nothing is cut
    # What this task trains best with where the run leaves a setting unset: "lora.r", "lora.alpha", "lr.lora",
    # "lr.full". Every built-in task states all four beside the validation figure that chose them, so a
    # default changed for one task cannot move another's (issue 28). A task of your own inherits these.
    DEFAULTS: ClassVar[dict[str, float]] = {"lora.r": 16, "lora.alpha": 32, "lr.lora": 1e-3, "lr.full": 5e-5}
    ACCURACY_NAME: ClassVar[str] = "token_acc"  # what the loss module's `correct` counts, in progress lines
    SELECT_METRICS: ClassVar[tuple[str, ...]] = ()  # what `val_scores` returns; higher is better
    GENERATES: ClassVar[bool] = False  # `val_scores` generates text (its cost is announced in the plan)
    BASELINES: ClassVar[tuple[str, ...]] = ()  # what `eval --baselines` may add (eval/baselines.py), passed to evaluate

    # -- training --------------------------------------------------------------------------------------
    def prepare(self, cfg, tokenizer, log: Log) -> Prepared:
        """Read `cfg.data` (and `cfg.val_data`, or hold out a slice), encode both; a bad row raises DataError."""
        raise NotImplementedError

    def load_model(self, cfg, tokenizer, meta: dict | None, source=None):
        """The model with this task's head; `source`: a run folder's own weights instead of `cfg.model`."""
        raise NotImplementedError

    def loss_module(self, model, meta: dict | None):
        """An nn.Module: **batch -> (summed loss, count, correct)."""
        raise NotImplementedError

    def collate_batch(self, items: list, tokenizer) -> dict:
        """Encoded items -> the tensors `loss_module` takes."""
        raise NotImplementedError

    def default_select(self, prepared: Prepared) -> str:
        """The validation metric that picks the kept weights when `select_by` is not given."""
        return "loss"

    def check_select(self, metric: str, prepared: Prepared) -> None:
        """Refuse (TunesmithError) a `select_by` metric this validation data cannot give."""

    def val_scores(self, model, tokenizer, prepared: Prepared, cfg) -> dict[str, float]:
        """{metric: score} for SELECT_METRICS on the validation items, at each evaluation (plus any other
        figures, such as `collapsed`: 1.0 when `collapse_note` has something to say)."""
        return {}

    def val_questions(self, prepared: Prepared, cfg) -> tuple[list, int] | None:
        """For tasks whose `val_scores` generates answers: (the examples it answers, their answer cap). The loop
        then answers them in one decode pass with the general probe's questions and hands the scores to
        `val_scores(..., answered=)`. None (the default): `val_scores` does all its own work."""
        return None

    def collapse_note(self, scores: dict) -> str | None:
        """What is wrong when `scores` (from val_scores, or evaluate's "tuned") show predictions collapsed to one
        answer, e.g. every row one class; None when they did not. The run warns, will not keep a collapsed
        evaluation over an earlier sound one, and `eval` marks it (issue 28)."""
        return None

    # -- using a run -----------------------------------------------------------------------------------
    def evaluate(self, run, path: str, *, base: bool = True, **kw) -> dict:
        """{"rows", "tuned": metrics, "base": metrics or baselines} on a held-out file."""
        raise NotImplementedError

    def eval_items(self, cfg, tokenizer, path: str) -> tuple[int, list, list]:
        """For tasks whose `evaluate` is `eval.evaluate.evaluate_run`: a held-out file as (row count, encoded
        items for the loss, conversations to generate answers for)."""
        raise NotImplementedError

    def predict(self, run, inputs: list) -> list[dict]:
        """One JSON-able answer per input (a text, or a row dict)."""
        raise NotImplementedError

    def read_inputs(self, path: str, cfg) -> list | None:
        """Inputs for `predict --data FILE` in a layout of this task's own (tokens: CoNLL); None: rows
        with 'text'."""
        return None

    # -- reading rows: `train`'s pre-flight and the data doctor (`tunesmith check`) --------------------
    def read_row(self, path: Path, line, row: dict, cfg, fmt: str | None):
        """One row -> the item training reads (DataError on a bad row; None skips an empty row). `fmt` is the
        detected layout, or ROW_FORMAT."""
        from ..data.formats import normalise

        return normalise(path, line, row, fmt)

    def row_content(self, item) -> tuple[str, str]:
        """(input, output) texts of a valid row: what duplicates, leakage and conflicts compare. The default
        reads the chat/text rows of `data.formats`; a task with its own `read_row` gives its own."""
        if getattr(item, "messages", None) is None:
            return str(getattr(item, "text", item)), ""
        *before, last = item.messages
        return "\n".join(f"{m['role']}: {m['content']}" for m in before), last["content"]

    def check_item(self, path: Path, item, conll: bool) -> None:
        """Raise DataError for what a valid item still gets wrong (tokens: BIO order); CoNLL rows included."""

    def row_labels(self, item) -> list:
        """The labels a valid row counts towards the class balance; [] for tasks without labels."""
        return []

    def row_targets(self, item) -> list:
        """What a val/test row needs training to have seen (classify: its labels; tokens: its tags)."""
        return self.row_labels(item)

    def label_problems(self, counts: dict, cfg) -> list[tuple[str, str | None]]:
        """(problem, field) for label counts training would refuse (classify: fewer than two labels)."""
        return []

    def unseen_problem(self, value, cfg) -> tuple[str, str | None] | None:
        """(problem, field) when a val/test target training never saw is an error; None: a warning."""
        return None

    def measure(self, cfg, tokenizer, records: list) -> Lengths | None:
        """Tokens per valid training row, as training would build them, and what max_seq_len cuts; None:
        this task does not count them, and `check` reports no token statistics or estimate."""
        return None

    def holdout_indices(self, cfg, n: int) -> list[int]:
        """The rows training keeps when it holds out its own validation slice (same rule, same seed)."""
        from ..data.batch import holdout_split

        return holdout_split(list(range(n)), cfg.val_fraction, cfg.val_max_rows, cfg.seed)[0]

    def item_sizes(self, cfg, lengths: Lengths, idx: list[int]) -> list[int]:
        """Token counts of the training items those rows become (packing tasks: their blocks)."""
        return [lengths.kept[i] for i in idx if lengths.kept[i]]

    def calibration_items(self, cfg, tokenizer, records: list, lengths: Lengths, idx: list[int]) -> tuple[list, dict]:
        """One batch of typical training items (about the median length) and the meta to build the model."""
        raise TunesmithError(f"task {self.NAME} has no calibration batch (Task.calibration_items); use --no-estimate")


def load_settings(cfg) -> dict:
    """The run's settings for `models.load.load_pretrained`, so every task loads its model the same way:
    `load_pretrained(AUTO_CLASS, source or cfg.model, **load_settings(cfg), <the task's own config keys>)`."""
    return dict(
        trust_remote_code=cfg.trust_remote_code,
        allow_pickle=cfg.allow_pickle,
        dtype=cfg.dtype,
        quantize=cfg.quantize,
        attention_dropout=cfg.attention_dropout,
    )


def task_lora(lora, task: Task):
    """`lora` (config.LoraConfig) with its unset rank and scale filled from the task's DEFAULTS. A rank given
    without alpha keeps the task's alpha/r, so `--lora-r 8` alone changes the size, not the update's scale."""
    d = task.DEFAULTS
    r = lora.r if lora.r is not None else int(d["lora.r"])
    if lora.alpha is not None:
        alpha = lora.alpha
    else:
        alpha = d["lora.alpha"] if lora.r is None else r * d["lora.alpha"] / d["lora.r"]
    return lora.model_copy(update={"r": r, "alpha": float(alpha)})


def cut_lengths(ids: list[list[int]], max_seq_len: int) -> Lengths:
    """Lengths of rows that training truncates at `max_seq_len` (classify, tokens: one item per row)."""
    out = Lengths()
    for x in ids:
        out.full.append(len(x))
        out.truncated += len(x) > max_seq_len
        out.kept.append(min(len(x), max_seq_len))
    return out


def median_rows(lengths: Lengths, idx: list[int], batch_size: int) -> list[int]:
    """`batch_size` kept rows around the median length: a typical batch for timing a training step."""
    order = sorted((i for i in idx if lengths.kept[i]), key=lambda i: lengths.kept[i])
    mid = max(0, len(order) // 2 - batch_size // 2)
    return order[mid : mid + batch_size]


_REGISTRY: dict[str, Task] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its NAME. A second class with the same NAME replaces the
    first; a built-in module imported later for the first time would take its name back, so a plugin should
    use a name of its own."""
    missing = [
        m
        for m in ("prepare", "load_model", "loss_module", "collate_batch", "evaluate", "predict")
        if getattr(cls, m) is getattr(Task, m)
    ]
    if not getattr(cls, "NAME", None) or missing:
        raise TypeError(f"{cls.__name__}: a task needs NAME and {', '.join(missing) or 'nothing else'}")
    _REGISTRY[cls.NAME] = cls()
    return cls


@functools.cache  # the package's files do not change while it runs
def _modules() -> tuple[str, ...]:
    return tuple(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_") and m.name != "base"
    )


def _load_plugins() -> None:
    _import_plugins(os.environ.get("TUNESMITH_TASKS", ""))


@functools.cache  # once per value of TUNESMITH_TASKS; a failed import is not cached and fails again
def _import_plugins(spec: str) -> None:
    for module in filter(None, (m.strip() for m in spec.split(","))):
        try:
            importlib.import_module(module)  # a module already imported is not run again
        except ImportError as e:
            raise TunesmithError(f"TUNESMITH_TASKS: cannot import '{module}' ({e})") from None


def task_names() -> list[str]:
    """Every task known: the modules of this package (by file name, not imported) and any registered."""
    _load_plugins()
    return sorted(set(_modules()) | set(_REGISTRY))


def get_task(name: str) -> Task:
    _load_plugins()
    if name not in _REGISTRY and name in _modules():
        importlib.import_module(f"{__package__}.{name}")
    if name not in _REGISTRY:
        raise TunesmithError(f"unknown task '{name}' (known: {', '.join(task_names())})")
    return _REGISTRY[name]
