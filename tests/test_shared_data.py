"""The loaders on the real public datasets in ../shared/data (skipped with a message when absent)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_data

import tunesmith
from tunesmith.data.formats import read_examples
from tunesmith.data.load import load_rows

pytestmark = pytest.mark.e2e  # slices of the real datasets in ../shared/data: not in make test-fast


def test_support_bitext_is_chat_messages():
    fmt, ex = read_examples(shared_data("support_bitext", "validation.jsonl"))
    assert fmt == "messages" and len(ex) == 454
    assert [m["role"] for m in ex[0].messages] == ["user", "assistant"]


def test_gpteacher_is_alpaca_with_response_field():
    fmt, ex = read_examples(shared_data("instructions_gpteacher", "validation.jsonl"))
    assert fmt == "alpaca" and len(ex) == 645
    assert all(e.messages[-1]["role"] == "assistant" and e.messages[-1]["content"] for e in ex)


def test_tinyshakespeare_paragraphs_restore_the_file():
    path = shared_data("tinyshakespeare", "validation.txt")
    rows = load_rows(path)
    assert "".join(r["text"] for _, r in rows) == path.read_text()
    assert len(rows) > 700


def test_clm_on_tinyshakespeare_lowers_validation_loss(tiny_llama, tmp_path):
    path = shared_data("tinyshakespeare", "validation.txt")
    run = tunesmith.train(
        {
            "model": str(tiny_llama),
            "data": str(path),
            "task": "clm",
            "method": "full",
            "max_seq_len": 128,
            "max_steps": 30,
            "lr": 3e-3,
            "eval_every": 15,
            "batch_size": 8,
            "val_max_rows": 16,
            "output": str(tmp_path / "run"),
            "tensorboard": False,
        }
    )
    evals = [
        json.loads(x)["eval_loss"] for x in (run.path / "metrics.jsonl").read_text().splitlines() if "eval_loss" in x
    ]
    assert evals[-1] < evals[0] - 1.0
