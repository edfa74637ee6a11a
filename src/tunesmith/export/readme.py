"""The README.md written into every export folder: what it holds and the few lines that load it, no tunesmith."""

from __future__ import annotations

from ..models.registry import ALIASES


def _labels_kw(run) -> str:
    names = (run.meta or {}).get("labels")
    if not run.task.LABELS or not names:
        return ""
    id2label = {i: str(n) for i, n in enumerate(names)}
    return f", num_labels={len(names)}, id2label={id2label!r}"


def render(run, *, adapter: bool, merged: bool, gguf_name: str | None, base: str) -> str:
    auto = run.task.AUTO_CLASS  # the class a plain user loads the model with
    causal = run.task.CAUSAL
    lines = [
        f"# Export of the tunesmith run `{run.path.name}`",
        "",
        f"Task `{run.config.task}`, method `{run.config.method}`, base model `{run.config.model}`.",
        "",
    ]
    if adapter:
        lines += [
            "## LoRA adapter (PEFT)",
            "",
            "`adapter_model.safetensors` and `adapter_config.json` are the trained adapter, unchanged; the "
            "config's `base_model_name_or_path` is the base model it was trained on:",
            "",
            f"    {base}",
            "",
        ]
        if base.startswith("/"):
            lines += [
                "That is a folder on the machine that exported this adapter"
                + (f" (where tunesmith keeps the alias `{run.config.model}`)" if run.config.model in ALIASES else "")
                + "; elsewhere, load a copy of it instead (and edit `base_model_name_or_path` for "
                "`AutoPeftModel...` loaders).",
                "",
            ]
        lines += [
            "The tokenizer files (with the chat template, if any) are the ones used in training.",
            "",
            "```python",
            f"from transformers import AutoTokenizer, {auto}",
            "from peft import PeftModel",
            "",
            f'base = {auto}.from_pretrained("{base}"{_labels_kw(run)})',
            'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
            "",
        ]
        if run.task.HEAD:
            lines += [
                "The task head was trained in full and is stored in the adapter (`modules_to_save`); "
                "the base must be loaded with the same head class and label count, as above.",
                "",
            ]
    if merged:
        lines += [
            "## Merged model",
            "",
            "A standalone Hugging Face model folder (safetensors weights, config, tokenizer"
            + (", chat template" if causal else ", label names in `config.id2label`")
            + "): "
            + (
                "the LoRA weights are folded into the base weights, so no PEFT is needed."
                if run.is_adapter
                else "the fully fine-tuned weights."
            ),
            "",
            "```python",
            f"from transformers import AutoTokenizer, {auto}",
            "",
            f'model = {auto}.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
            "",
        ]
    if gguf_name:
        lines += [
            "## GGUF",
            "",
            f"`{gguf_name}` holds the merged weights and the tokenizer (vocabulary, merges, special tokens, chat "
            "template) for llama.cpp and the runtimes built on it:",
            "",
            "```bash",
            f"llama-cli -m {gguf_name} -cnv            # or: llama-server -m {gguf_name}",
            "```",
            "",
            "```python",
            "from llama_cpp import Llama                 # pip install llama-cpp-python",
            f'llm = Llama(model_path="{gguf_name}")',
            'llm.create_chat_completion(messages=[{"role": "user", "content": "Hello"}])',
            "",
            "from transformers import AutoModelForCausalLM, AutoTokenizer   # transformers reads it too",
            f'model = AutoModelForCausalLM.from_pretrained(".", gguf_file="{gguf_name}")',
            f'tokenizer = AutoTokenizer.from_pretrained(".", gguf_file="{gguf_name}")',
            "```",
            "",
            "Norm weights are float32 in every variant; `q8_0` quantizes the 2-D weights whose rows are a "
            "multiple of 32 values and keeps any other 2-D weight in float16.",
            "",
        ]
    return "\n".join(lines)
