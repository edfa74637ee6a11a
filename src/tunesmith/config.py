"""One pydantic object describes a run: loaded from YAML, overridden by flags, saved resolved."""

from __future__ import annotations

import difflib
import textwrap
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import TunesmithError


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Unset = the task's own (tasks.base.Task.DEFAULTS, docs/training.md "Per-task defaults"): a rank chosen
    # on chat facts made classifiers collapse to one class (issue 28), so no single number serves every task.
    r: int | None = Field(None, ge=1, description="rank: the adapter's inner dimension; unset = the task's default")
    alpha: float | None = Field(
        None,
        gt=0,
        description="scale: updates are multiplied by alpha/r; unset = the task's default, or r times the "
        "task's alpha/r when only r is given",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input in training")
    target_modules: str | list[str] = Field(
        "all-linear",
        description="layers that get an adapter: 'all-linear' or a list (a comma list as a flag: q_proj,v_proj)",
    )
    variant: Literal["lora", "rslora", "dora"] = Field(
        "lora", description="rslora: scale alpha/sqrt(r) instead of alpha/r; dora: weight-decomposed LoRA (PEFT)"
    )


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Where each setting given to build_config came from ("your flag" | "config file"), by dotted key; the plan
    # names it beside the task defaults and auto choices (train/defaults.py). Not saved: not a setting.
    _origin: dict[str, str] = PrivateAttr(default_factory=dict)

    model: str = Field(
        "smollm2-135m", description="alias (smollm2-135m, minilm-l6), a local Hugging Face folder, or a hub id"
    )
    data: str = Field(
        description="training file: JSONL/JSON/CSV/Parquet/TXT (CoNLL for tokens): messages, "
        "prompt/completion, alpaca, ShareGPT, text, or text and label"
    )
    val_data: str | None = Field(None, description="validation file; unset = hold out a deterministic slice of `data`")
    output: str = Field("runs/latest", description="the run folder: config, metrics, weights, plots, summary")
    task: str = Field(
        "sft",
        description="sft (chat) | clm (raw text) | classify | tokens (NER) | mlm (encoders), "
        "or any task registered with tunesmith.tasks.register",
    )
    method: Literal["lora", "full"] = Field("lora", description="lora: train a small adapter; full: every weight")
    lora: LoraConfig = Field(LoraConfig(), description="the adapter, for method lora")

    # Data shaping
    columns: dict[str, str] = Field(
        default_factory=dict, description="your column name -> the expected one (a flag: yours=expected, repeatable)"
    )
    system_prompt: str | None = Field(None, description="added to conversations without one, in training and use")
    max_seq_len: int = Field(512, ge=8, description="tokens per example at most")
    overlong: Literal["truncate", "drop"] = Field("truncate", description="examples over max_seq_len: cut, or left out")
    train_on: Literal["assistant", "all"] = Field("assistant", description="sft: the tokens that carry the loss")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of `data` held out when val_data is unset")
    val_max_rows: int = Field(200, ge=1, description="held-out validation rows at most")

    # classify / tokens / mlm
    label_column: str = Field("label", description="classify: the column holding the label(s)")
    text_pair_column: str | None = Field(None, description="classify: a second text for pair tasks")
    multi_label: bool = Field(False, description="classify: several labels per row (a list, or 'a,b' in CSV)")
    threshold: float = Field(0.5, gt=0, lt=1, description="classify multi-label: probability to predict a label")
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="classify: balanced weighs the loss against imbalanced labels"
    )
    label_subwords: Literal["first", "all"] = Field("first", description="tokens: which sub-tokens carry a label")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="mlm: share of tokens masked")
    whole_word_mask: bool = Field(False, description="mlm: mask all sub-tokens of a word together")

    # Optimisation; None means "auto": chosen from the dataset size and method
    epochs: float | None = Field(
        None,
        gt=0,
        description="passes over the data; unset (with max_steps unset) = "
        "until validation stops improving, at most 10 epochs, "
        "fewer for big datasets",
    )
    max_steps: int | None = Field(None, ge=1, description="optimizer steps, instead of epochs")
    lr: float | None = Field(None, gt=0, description="peak learning rate; unset = chosen from the method and task")
    batch_size: int = Field(8, ge=1, description="examples per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    scheduler: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="learning-rate decay after warm-up"
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of the steps that warm the learning rate up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float | None = Field(1.0, gt=0, description="clip gradients to this norm; unset = no clipping")
    seed: int = Field(42, description="seed for the held-out slice, data order and new weights")
    neftune_alpha: float | None = Field(
        None,
        gt=0,
        description="sft/clm: NEFTune noise on the input embeddings "
        "in training (TRL's neftune_noise_alpha; 5 is common)",
    )

    attention_dropout: float | None = Field(
        0.0,
        ge=0,
        lt=1,
        description="dropout on attention weights in training; 0 lets PyTorch run its fused attention (any "
        "attention dropout makes it keep every attention matrix: for minilm-l6 mlm at 512 tokens, 1.8x slower "
        "steps and over twice the memory); null in YAML = the model's own (BERT's is 0.1)",
    )

    # Speed and memory (docs/speed.md); each was measured, none changes what is computed
    padding_free: bool = Field(
        True, description="sft/clm: concatenate each batch into one row, attention isolated per example, no pad tokens"
    )
    compile: bool = Field(
        False, description="torch.compile each decoder layer: faster steps, about a minute of compiling first"
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward: less memory, slower steps"
    )
    liger: bool = Field(
        False, description="Liger's Triton kernels for RMSNorm, SwiGLU and RoPE; CUDA and liger-kernel only"
    )

    # Precision (docs/training.md, "Precision and quantization")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="precision of the forward pass (and of a LoRA run's frozen base); trainable weights stay "
        "fp32. auto = bf16 on a CUDA GPU that has it, else fp32 (always fp32 on CPU); the run saves what it chose",
    )
    quantize: Literal["4bit", "8bit"] | None = Field(
        None, description="load the base in 4 bits (QLoRA, NF4) or 8 bits; method lora, CUDA and bitsandbytes only"
    )

    # Evaluation and stopping
    eval_every: int | None = Field(
        None, ge=1, description="optimizer steps between evaluations; unset = about 5 times a run"
    )
    early_stopping_patience: int | None = Field(
        3, ge=1, description="evaluations without a better `select_by` score before stopping"
    )
    select_by: str | None = Field(
        None,
        description="validation metric that picks the kept weights and stops "
        "training: loss, or a task metric (sft: contains | token_f1; "
        "classify: accuracy | macro_f1; tokens: entity_f1); "
        "unset = the task's own",
    )
    val_generate_rows: int = Field(
        64, ge=1, description="sft: validation rows answered (greedy) at each evaluation to score contains / token_f1"
    )
    general: str | None = Field(
        "default",
        description="sft/clm: the general-ability probe, scored at step 0, at every evaluation and by eval, to "
        "show forgetting: default = the shipped one (40 questions and a text), a file of chat rows with "
        "must_contain and/or text rows, or none (off); encoder tasks never score it",
    )
    max_forgetting: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="sft/clm: the largest relative fall of the probe's contains score below step 0's that a kept "
        "evaluation may show (0.1 = 10%); the first evaluation over it stops the run; unset = no limit",
    )
    tensorboard: bool = Field(True, description="write TensorBoard logs to the run's tensorboard/")

    # Checkpoints and failures (docs/training.md)
    save_steps: int | None = Field(
        None, ge=1, description="optimizer steps between resumable checkpoints; unset = at every evaluation"
    )
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept in the run's checkpoints/")
    resume: Literal["auto"] | None = Field(
        None, description="auto: continue an interrupted run in `output` from its newest checkpoint, else start fresh"
    )
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="a NaN/inf loss or gradient: stop the run, or skip that step"
    )

    trust_remote_code: bool = Field(
        False, description="run Python code shipped with the model (Hugging Face trust_remote_code)"
    )
    allow_pickle: bool = Field(
        False,
        description="load a base model's .bin (pickle) weights, with "
        "torch.load(weights_only=True); safetensors only otherwise",
    )

    def __eq__(self, other: object) -> bool:  # the same settings are the same config, wherever they came from
        return isinstance(other, RunConfig) and self.model_dump() == other.model_dump()

    @field_validator("task")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from .tasks import task_names

        if name not in task_names():
            raise ValueError(f"unknown task '{name}' (known: {', '.join(task_names())})")
        return name

    @model_validator(mode="after")
    def _check(self):
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("give epochs or max_steps, not both")
        if self.quantize is not None and self.method != "lora":
            raise ValueError(
                f"quantize {self.quantize} needs method lora (QLoRA): 4-/8-bit weights cannot be trained in full"
            )
        if self.max_forgetting is not None and (self.general is None or self.general.strip().lower() == "none"):
            raise ValueError("max_forgetting needs the general-ability probe; general is none")
        return self


# Reference GPUs for the cost line of the verdict under `tunesmith eval --baselines` (eval/verdict.py,
# training_cost). That cost is an ESTIMATE, not a measurement: the run's training tokens / (peak FLOP/s x
# utilisation / FLOPs per token) seconds at the hourly price, with FLOPs per token = 6 x parameters for full
# fine-tuning and 4 x parameters for LoRA (frozen weights get no weight gradient).
# - usd_per_hour: the on-demand list price of one GPU on a public cloud as published in 2024; prices change and
#   differ by provider and region, so check yours. A100 40GB: AWS p4d.24xlarge, $32.77/h for 8 GPUs, us-east-1.
#   T4: AWS g4dn.xlarge, $0.526/h, us-east-1.
# - peak_tflops: NVIDIA's datasheet dense tensor-core peak (A100: 312 BF16; T4: 65 FP16).
# - utilisation: the share of that peak a training step is assumed to reach; 0.3 is a common figure for large
#   models. Small models with short rows and small batches usually reach less (not measured by this project),
#   so for them the estimate is a lower bound on GPU time and price.
GPU_PRICES = {
    "a100-40gb": {"name": "NVIDIA A100 40GB", "usd_per_hour": 4.10, "peak_tflops": 312, "utilisation": 0.3},
    "t4": {"name": "NVIDIA T4", "usd_per_hour": 0.526, "peak_tflops": 65, "utilisation": 0.3},
}
REFERENCE_GPU = GPU_PRICES["a100-40gb"]  # the one the verdict prices fine-tuning on


# Settings as transformers' TrainingArguments and its example scripts name them -> ours.
HF_NAMES = {
    "learning_rate": "lr",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "max_seq_length": "max_seq_len",
    "max_length": "max_seq_len",
    "model_name_or_path": "model",
    "output_dir": "output",
    "train_file": "data",
    "validation_file": "val_data",
}


def _flatten_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "config"
        hint = ""
        if e["type"] == "extra_forbidden":  # a misspelt or foreign key: name the closest real one
            model = LoraConfig if len(e["loc"]) > 1 and e["loc"][0] == "lora" else RunConfig
            key = str(e["loc"][-1])
            close = (
                [HF_NAMES[key]]
                if key in HF_NAMES and model is RunConfig
                else difflib.get_close_matches(key, list(model.model_fields), n=1)
            )
            hint = f" (did you mean '{close[0]}'?)" if close else ""
        parts.append(f"{loc}: {e['msg']}{hint}")
    return "; ".join(parts)


def build_config(yaml_path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """YAML first, then every override that is not None on top (nested keys use dots: `lora.r`)."""
    raw: dict[str, Any] = {}
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.is_file():
            raise TunesmithError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_bytes().decode("utf-8-sig")) or {}
        except UnicodeDecodeError as e:
            raise TunesmithError(f"{path}: config is not valid UTF-8 (byte {e.object[e.start]:#04x})") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise TunesmithError(f"{path}{line}: invalid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(raw, dict):
            raise TunesmithError(f"{path}: expected a mapping of settings at the top level")
    # A flag for steps beats an epochs value from YAML, and the reverse (both as flags is still an error).
    if overrides.get("max_steps") is not None:
        raw.pop("epochs", None)
    if overrides.get("epochs") is not None:
        raw.pop("max_steps", None)
    origin = {key: "config file" for key in _dotted(raw)}
    for key, value in overrides.items():
        if value is None:
            continue
        origin.update({k: "your flag" for k in _dotted({key: value})})
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):  # an empty YAML section reads as null
                node[p] = {}
            node = node[p]
        node[leaf] = value
    try:
        cfg = RunConfig(**raw)
    except ValidationError as e:
        src = f"{yaml_path}: " if yaml_path else ""
        raise TunesmithError(f"{src}invalid config: {_flatten_errors(e)}") from None
    cfg._origin = origin
    return cfg


def _dotted(raw: dict, prefix: str = "") -> list[str]:
    """The keys of a settings mapping, nested ones dotted (lora.r); a dotted key is kept as it is."""
    keys = []
    for key, value in raw.items():
        if isinstance(value, dict) and key == "lora":
            keys += _dotted(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def load_saved_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise TunesmithError(f"{run_dir}: not a tunesmith run folder (no config.yaml)")
    try:
        return RunConfig(**yaml.safe_load(path.read_text()))
    except ValidationError as e:
        hint = (
            " (a task of your own: set TUNESMITH_TASKS to the module that registers it)"
            if any(err["loc"] == ("task",) for err in e.errors())
            else ""
        )
        raise TunesmithError(f"{path}: invalid saved config: {_flatten_errors(e)}{hint}") from None


def yaml_value(value: Any) -> str:
    """A value as a YAML file writes it: null, true, 0.05, all-linear, {a: b}."""
    return yaml.safe_dump({"k": value}, default_flow_style=True, width=10**6, sort_keys=False).strip()[4:-1]


def literal_choices(annotation: Any) -> tuple | None:
    """The values a Literal field takes; None for any other type."""
    return get_args(annotation) if get_origin(annotation) is Literal else None


# The starter file (`tunesmith init`) is written from the fields above, in their order: these are its
# headings (each before the field it starts with), the values it shows instead of the default (data has
# none), and the keys it shows only as a commented-out example.
SECTIONS = {
    "columns": "Data shaping",
    "label_column": "classify / tokens / mlm",
    "epochs": "Optimisation; null = auto: chosen from the dataset size and method",
    "padding_free": "Speed and memory; none of these changes what is computed",
    "dtype": "Precision and quantization",
    "eval_every": "Evaluation and stopping",
    "save_steps": "Checkpoints and failures",
    "trust_remote_code": "Loading the base model",
}
STARTER_VALUES = {"data": "train.jsonl", "output": "runs/my-run"}
STARTER_COMMENTED = {"columns": {"question": "prompt", "answer": "completion"}}


def _starter_lines(model: type[BaseModel], prefix: str = "") -> list[str]:
    lines, indent = [], "  " * prefix.count(".")
    for key, f in model.model_fields.items():
        path = prefix + key
        if path in SECTIONS:
            lines += ["", f"# {SECTIONS[path]}"]
        note = (f.description or "") + (
            f" [{'|'.join(literal_choices(f.annotation))}]" if literal_choices(f.annotation) else ""
        )
        nested = isinstance(f.default, BaseModel)
        if nested:
            head = f"{indent}{key}:"
        elif path in STARTER_COMMENTED:
            head = f"{indent}# {key}: {yaml_value(STARTER_COMMENTED[path])}"
        else:
            head = f"{indent}{key}: {yaml_value(STARTER_VALUES.get(path, f.get_default(call_default_factory=True)))}"
        col = max(30, len(head) + 1)
        wrapped = textwrap.wrap(note, max(40, 110 - col - 2)) or [""]
        lines += ([""] if nested else []) + [f"{head.ljust(col)}# {wrapped[0]}".rstrip()]
        lines += [f"{' ' * col}# {w}" for w in wrapped[1:]]
        if nested:
            lines += _starter_lines(type(f.default), f"{path}.")
    return lines


def starter_yaml() -> str:
    """The commented starter config, every setting at its default; a format string with `{name}`, its file name."""
    body = "\n".join(_starter_lines(RunConfig)).replace("{", "{{").replace("}", "}}")
    return (
        "# tunesmith run configuration. Every key can also be given as a CLI flag,\n"
        "# and flags win over this file: `tunesmith train --config {name} --lr 3e-4`.\n"
        "# Every value below but data and output is the default (null = unset).\n"
        f"{body}\n"
    )


STARTER = starter_yaml()


def write_starter(path: str | Path, force: bool = False) -> None:
    """`tunesmith init`: the starter config at `path`, refusing to replace a file unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise TunesmithError(f"{path}: already exists (pass --force to overwrite)")
    path.write_text(STARTER.format(name=path.name))
