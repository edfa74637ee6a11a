"""Shared fixtures: the real SmolLM2 tokenizer, and tiny random Llama models built from a config."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Never the user's own base-figure cache: module- and session-scoped fixtures get this session's folder (each
# test then gets its own, below).
os.environ["TUNESMITH_BASE_FIGURES"] = tempfile.mkdtemp(prefix="base-figures-")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _own_base_figures(tmp_path_factory, monkeypatch):
    """Each test its own base-figure cache (eval/basecache.py): a test computes what it scores, unless it shares
    a folder on purpose; subprocesses inherit it."""
    monkeypatch.setenv("TUNESMITH_BASE_FIGURES", str(tmp_path_factory.mktemp("base-figures")))


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
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.3,  # large enough that LoRA alone can move the logits
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
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
    return [
        {
            "messages": [
                {"role": "user", "content": f"code {i}?"},
                {"role": "assistant", "content": f"The code is {words[i % len(words)]}."},
            ]
        }
        for i in range(start, start + n)
    ]


def train_tiny(model: Path, tmp_path: Path, rows, output: str = "run", **settings):
    """A short run of a tiny test model on `rows` (written once to tmp_path/train.jsonl): the settings the
    training tests share (batch 8, 64 tokens, seed 0, no TensorBoard), then the test's own (`log` too)."""
    from tunesmith import build_config
    from tunesmith.train.loop import train

    data = tmp_path / "train.jsonl"
    if not data.exists():
        write_jsonl(data, rows)
    log = settings.pop("log", None)
    common = dict(
        model=str(model),
        data=str(data),
        output=str(tmp_path / output),
        batch_size=8,
        max_seq_len=64,
        seed=0,
        tensorboard=False,
    )
    return train(build_config(None, **{**common, **settings}), **({"log": log} if log else {}))


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`tunesmith ARGS` through its own entry point, in this process (no second torch import): the exit code,
    stdout and stderr; a traceback on stderr fails the test."""
    import sys

    from tunesmith import cli

    monkeypatch.setattr(sys, "argv", ["tunesmith", *map(str, args)])
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from tunesmith.models.registry import resolve_model

    return Path(resolve_model("minilm-l6"))


@pytest.fixture(scope="session")
def bert_tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, bert_tokenizer) -> Path:
    """A 2-layer, hidden-32 BERT with MiniLM's uncased WordPiece tokenizer, saved as a local HF folder."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(bert_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        pad_token_id=bert_tokenizer.pad_token_id,
    )
    out = tmp_path_factory.mktemp("tiny-bert")
    BertModel(cfg).save_pretrained(out)  # no task head, like the embedded MiniLM
    bert_tokenizer.save_pretrained(out)
    return out


def write_csv(path: Path, header: list[str], rows) -> Path:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def sentiment_rows(n: int, seed: int = 0, keyword_last: bool = False):
    """Separable two-class texts: a word list decides the label, filler words vary.

    keyword_last puts the deciding word at the end, where a decoder's classification head reads."""
    import random

    rng = random.Random(seed)
    good, bad = ["great", "lovely", "excellent", "superb"], ["awful", "broken", "terrible", "poor"]
    filler = ["the", "phone", "food", "film", "was", "really", "quite", "service", "today", "and"]
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(filler, 4) + [rng.choice(good if label == "pos" else bad)]
        rng.shuffle(words)
        if keyword_last:
            words = [w for w in words if w in filler] + [w for w in words if w not in filler]
        rows.append({"text": " ".join(words), "label": label})
    return rows
