"""The settings a run leaves unset, filled in one place, each with where its value came from.

Three sources, named in the plan so a user sees why a run trains as it does: the task's own defaults
(tasks.base.Task.DEFAULTS: LoRA rank and scale, learning rate), the auto length (train.select.auto_epochs),
and what the user gave ("your flag", "config file"; config.build_config records which).
"""

from __future__ import annotations

from ..config import RunConfig
from ..tasks.base import task_lora
from .select import auto_epochs


def auto_settings(cfg: RunConfig, n_train: int, task) -> dict:
    """Values for the unset settings, by dotted key: epochs (a cap: the run stops earlier once validation stops
    improving, so a fixed guess such as OpenAI's "3 epochs" cannot cut learning short), lr, lora.r, lora.alpha."""
    chosen = {}
    if cfg.epochs is None and cfg.max_steps is None:
        chosen["epochs"] = auto_epochs(n_train)[0]
    if cfg.lr is None:
        chosen["lr"] = task.DEFAULTS[f"lr.{cfg.method}"]
    if cfg.method == "lora":
        lora = task_lora(cfg.lora, task)
        for key in ("r", "alpha"):
            if getattr(cfg.lora, key) is None:
                chosen[f"lora.{key}"] = getattr(lora, key)
    return chosen


def apply(cfg: RunConfig, chosen: dict) -> RunConfig:
    """`cfg` with the `auto_settings` values set (nested lora keys included); the private origin is kept."""
    top = {k: v for k, v in chosen.items() if "." not in k}
    lora = {k[5:]: v for k, v in chosen.items() if k.startswith("lora.")}
    if lora:
        top["lora"] = cfg.lora.model_copy(update=lora)
    return cfg.model_copy(update=top) if top else cfg


def settings_line(cfg: RunConfig, chosen: dict, task_name: str, auto_why: str | None) -> str:
    """For the plan: 'settings: lr 0.0005 (classify default), lora r 16 (classify default), ...'."""
    keys = ["lr", "epochs"] + (["lora.r", "lora.alpha"] if cfg.method == "lora" else [])
    parts = []
    for key in keys:
        value = cfg.lora.r if key == "lora.r" else cfg.lora.alpha if key == "lora.alpha" else getattr(cfg, key)
        if key == "epochs" and value is None:
            continue  # max_steps sets the length; the length line says so
        if key not in chosen:
            source = cfg._origin.get(key, "given")
        elif key == "epochs":
            source = f"auto: {auto_why}" if auto_why else "auto"
        elif key == "lora.alpha" and "lora.r" not in chosen:
            source = f"{task_name} default alpha/r x your r"
        else:
            source = f"{task_name} default"
        parts.append(f"{key.replace('.', ' ')} {value:g} ({source})")
    return "settings: " + ", ".join(parts)
