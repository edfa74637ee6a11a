"""One pydantic object describes a run: loaded from YAML, overridden by flags, saved resolved."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import TunesmithError


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    variant: Literal["lora", "rslora", "dora"] = Field(
        "lora", description="rslora: scale alpha/sqrt(r) instead of alpha/r; dora: weight-decomposed LoRA (PEFT)")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "smollm2-135m"
    data: str
    val_data: str | None = None
    output: str = "runs/latest"
    task: Literal["sft", "clm", "classify", "tokens", "mlm"] = "sft"
    method: Literal["lora", "full"] = "lora"
    lora: LoraConfig = LoraConfig()

    # Data shaping
    columns: dict[str, str] = Field(default_factory=dict, description="your column -> expected name")
    system_prompt: str | None = Field(None, description="added to conversations without one, in training and use")
    max_seq_len: int = Field(512, ge=8)
    overlong: Literal["truncate", "drop"] = "truncate"
    train_on: Literal["assistant", "all"] = "assistant"
    val_fraction: float = Field(0.1, gt=0, lt=1)
    val_max_rows: int = Field(200, ge=1)

    # classify / tokens / mlm
    label_column: str = Field("label", description="classify: the column holding the label(s)")
    text_pair_column: str | None = Field(None, description="classify: a second text for pair tasks")
    multi_label: bool = Field(False, description="classify: several labels per row (a list, or 'a,b' in CSV)")
    threshold: float = Field(0.5, gt=0, lt=1, description="classify multi-label: probability to predict a label")
    class_weight: Literal["none", "balanced"] = "none"
    label_subwords: Literal["first", "all"] = Field("first", description="tokens: which sub-tokens carry a label")
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_mask: bool = False

    # Optimisation; None means "auto": chosen from the dataset size and method
    epochs: float | None = Field(None, gt=0)
    max_steps: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: int = 42
    neftune_alpha: float | None = Field(None, gt=0, description="sft/clm: NEFTune noise on the input embeddings "
                                                                "in training (TRL's neftune_noise_alpha; 5 is common)")

    # Speed and memory (README, "Speed"); each was measured, none changes what is computed
    padding_free: bool = Field(True, description="sft/clm: concatenate each batch into one row, "
                                                 "attention isolated per example, no pad tokens")
    compile: bool = Field(False, description="torch.compile each decoder layer: faster steps, "
                                             "about a minute of compiling first")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: "
                                                            "less memory, slower steps")

    # Evaluation and stopping
    eval_every: int | None = Field(None, ge=1, description="optimizer steps; None = about 5 times a run")
    early_stopping_patience: int | None = Field(3, ge=1, description="evaluations without a better `select_by` "
                                                                     "score before stopping")
    select_by: str | None = Field(None, description="validation metric that picks the kept weights and stops "
                                                    "training: loss, or a task metric (sft: contains | token_f1; "
                                                    "classify: accuracy | macro_f1; tokens: entity_f1); "
                                                    "None = the task's own")
    val_generate_rows: int = Field(64, ge=1, description="sft: validation rows answered (greedy) at each "
                                                         "evaluation to score contains / token_f1")
    tensorboard: bool = True

    # Checkpoints and failures (README, "Reliability")
    save_steps: int | None = Field(None, ge=1, description="optimizer steps between resumable checkpoints; "
                                                          "None = at every evaluation")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept in the run's checkpoints/")
    resume: Literal["auto"] | None = Field(None, description="auto: continue an interrupted run in `output` "
                                                             "from its newest checkpoint, else start fresh")
    on_nonfinite: Literal["stop", "skip"] = Field("stop", description="a NaN/inf loss or gradient: stop the "
                                                                      "run, or skip that step")

    trust_remote_code: bool = False
    allow_pickle: bool = Field(False, description="load a base model's .bin (pickle) weights, with "
                                                  "torch.load(weights_only=True); safetensors only otherwise")

    @model_validator(mode="after")
    def _check(self):
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("give epochs or max_steps, not both")
        return self


# Settings as transformers' TrainingArguments and its example scripts name them -> ours.
HF_NAMES = {"learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
            "gradient_accumulation_steps": "grad_accum", "max_seq_length": "max_seq_len", "max_length": "max_seq_len",
            "model_name_or_path": "model", "output_dir": "output", "train_file": "data",
            "validation_file": "val_data"}


def _flatten_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "config"
        hint = ""
        if e["type"] == "extra_forbidden":  # a misspelt or foreign key: name the closest real one
            model = LoraConfig if len(e["loc"]) > 1 and e["loc"][0] == "lora" else RunConfig
            key = str(e["loc"][-1])
            close = [HF_NAMES[key]] if key in HF_NAMES and model is RunConfig else \
                difflib.get_close_matches(key, list(model.model_fields), n=1)
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
    for key, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):  # an empty YAML section reads as null
                node[p] = {}
            node = node[p]
        node[leaf] = value
    try:
        return RunConfig(**raw)
    except ValidationError as e:
        src = f"{yaml_path}: " if yaml_path else ""
        raise TunesmithError(f"{src}invalid config: {_flatten_errors(e)}") from None


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def load_saved_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise TunesmithError(f"{run_dir}: not a tunesmith run folder (no config.yaml)")
    return RunConfig(**yaml.safe_load(path.read_text()))


STARTER = """\
# tunesmith run configuration. Every key can also be given as a CLI flag,
# and flags win over this file: `tunesmith train --config {name} --lr 3e-4`.

model: smollm2-135m        # alias (smollm2-135m, minilm-l6), a local HF folder, or a hub id
data: train.jsonl          # JSONL/JSON/CSV/Parquet/TXT: messages, prompt/completion, alpaca, ShareGPT or text
val_data: null             # null = hold out a deterministic slice of `data`
output: runs/my-run        # the run folder: config, metrics, adapter/weights, plots
task: sft                  # sft (chat) | clm (raw text) | classify | tokens (NER) | mlm (encoders)
method: lora               # lora | full

lora:
  r: 16
  alpha: 32
  dropout: 0.0
  target_modules: all-linear
  variant: lora            # lora | rslora (alpha/sqrt(r) scaling) | dora (weight-decomposed)

# columns: {{question: prompt, answer: completion}}   # map your column names to the expected ones
system_prompt: null        # added to every conversation without a system turn, in training, eval and chat
max_seq_len: 512
overlong: truncate         # truncate | drop examples longer than max_seq_len
train_on: assistant        # assistant (default) | all tokens

# task classify: label_column: label, text_pair_column: null, multi_label: false, class_weight: none|balanced
# task tokens:   label_subwords: first|all   (CoNLL files or JSONL {{tokens, ner_tags}})
# task mlm:      mlm_probability: 0.15, whole_word_mask: false

# null = auto: epochs null and max_steps null train until validation stops improving (at most 10
# epochs, fewer for big datasets); the plan printed at the start says which cap applies and why
epochs: null
max_steps: null
lr: null
batch_size: 8
grad_accum: 1
scheduler: cosine          # cosine | linear | constant
warmup_ratio: 0.05
max_grad_norm: 1.0
seed: 42
neftune_alpha: null        # sft/clm: NEFTune embedding noise in training (e.g. 5); null = off

eval_every: null           # optimizer steps between evaluations; null = about 5 per run
early_stopping_patience: 3 # evaluations without a better select_by score before stopping
select_by: null            # null = the task's metric (sft: contains if rows carry must_contain, else token_f1;
                           # classify: accuracy; tokens: entity_f1; clm/mlm: loss) | loss | macro_f1 | ...
val_generate_rows: 64      # sft: validation rows answered at each evaluation for contains / token_f1

save_steps: null           # optimizer steps between resumable checkpoints; null = at every evaluation
keep_checkpoints: 2        # newest checkpoints kept in <output>/checkpoints
resume: null               # auto = continue an interrupted run in `output` (or: tunesmith train --resume DIR)
on_nonfinite: stop         # stop | skip a step whose loss or gradient is NaN/inf
"""
