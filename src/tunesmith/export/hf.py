"""Hugging Face exports: the PEFT adapter as it is, or the weights merged into one standalone model folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def base_reference(model_name: str) -> str:
    """What `from_pretrained` accepts for the run's base model: an alias becomes its resolved local folder
    (the smollm2-135m GGUF is converted once into a cache), a relative folder an absolute one, a hub id stays."""
    from ..models.registry import resolve_model

    src = resolve_model(model_name)
    return str(Path(src).resolve()) if isinstance(src, Path) else src


def write_adapter(run, dest: Path) -> None:
    """The adapter's own files, byte for byte, with `base_model_name_or_path` pointing at a loadable base."""
    shutil.copy2(run.path / "adapter_model.safetensors", dest / "adapter_model.safetensors")
    cfg = json.loads((run.path / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = base_reference(run.config.model)
    (dest / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    run.tokenizer.save_pretrained(dest)  # tokenizer files and chat template, as trained


def merged_model(run):
    """A fresh model with the LoRA deltas folded into its weights (W + scale * B @ A, in fp32).

    Loaded anew rather than from `run.model`: PEFT's merge_and_unload changes the base model in place, and
    the caller's Run must keep working. A full fine-tuning run's weights are already standalone.
    Always fp32 and unquantized, whatever the run trained in: a LoRA delta far smaller than a weight would be
    rounded away if added in bf16, and a 4-/8-bit run's adapter folds into its full-precision base."""
    cfg = run.config.model_copy(update={"dtype": "fp32", "quantize": None})
    if not run.is_adapter:
        return run.task.load_model(cfg, run.tokenizer, run.meta, source=run.path).eval()
    from peft import PeftModel

    base = run.task.load_model(cfg, run.tokenizer, run.meta)
    # merge_and_unload also swaps a head trained in full (modules_to_save) for its trained copy.
    return PeftModel.from_pretrained(base, run.path).merge_and_unload().eval()


def write_merged(model, run, dest: Path) -> None:
    """A folder plain `from_pretrained` loads: safetensors weights, config (labels included), tokenizer."""
    # Training may switch a copy of the model to tunesmith's own attention kernel; a plain folder must not
    # name it, or transformers without tunesmith refuses to load it.
    if getattr(model.config, "_attn_implementation", None) not in (None, "eager", "sdpa", "flash_attention_2"):
        model.set_attn_implementation("sdpa")
    model.save_pretrained(dest, safe_serialization=True)
    run.tokenizer.save_pretrained(dest)
