"""Shared fixtures: the real SmolLM2 tokenizer, and tiny random Llama models built from a config."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset {path} not present (expected ../shared/data next to the repo)")
    return path


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    from tunesmith.models.registry import resolve_model

    return Path(resolve_model("smollm2-135m"))


@pytest.fixture(scope="session")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smol_dir, tokenizer) -> Path:
    """A 2-layer, hidden-64 Llama with SmolLM2's tokenizer and chat template, saved as a local HF folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      initializer_range=0.3,  # large enough that LoRA alone can move the logits
                      tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def qa_rows(n: int, start: int = 0):
    """Deterministic Q/A chats a tiny model can memorise: the answer is a fixed word per question id."""
    words = ["apple", "river", "stone", "cloud", "maple", "ember", "frost", "cedar"]
    return [{"messages": [{"role": "user", "content": f"code {i}?"},
                          {"role": "assistant", "content": f"The code is {words[i % len(words)]}."}]}
            for i in range(start, start + n)]
