"""End to end on the real embedded SmolLM2-135M: LoRA learns a store's facts, then answers from the run folder.

Uses 10 of the demo's facts (140 training phrasings) so it takes about two minutes on 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest

import tunesmith
from tunesmith.demo import demo_file
from tunesmith.eval.metrics import token_f1
from tunesmith.run import Run

pytestmark = pytest.mark.slow


def _rows(name, facts):
    rows = [json.loads(x) for x in demo_file(name).read_text().splitlines() if x.strip()]
    return [r for r in rows if r["fact"] in facts]


@pytest.fixture(scope="module")
def facts():
    all_facts = [json.loads(x) for x in demo_file("facts.jsonl").read_text().splitlines() if x.strip()]
    return {f["id"] for f in all_facts[::5][:10]}


@pytest.fixture(scope="module")
def run(tmp_path_factory, facts):
    tmp = tmp_path_factory.mktemp("e2e")
    train = tmp / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in _rows("train.jsonl", facts)))
    return tunesmith.train(
        {
            "model": "smollm2-135m",
            "data": str(train),
            "output": str(tmp / "run"),
            "epochs": 3,
            "lr": 2e-3,
            "batch_size": 8,
            "val_fraction": 0.1,
            "eval_every": 16,
            "early_stopping_patience": None,
            "seed": 0,
            "tensorboard": False,
        }
    )


def test_loss_falls(run):
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    train = [r["train_loss"] for r in rows if "train_loss" in r]
    evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
    assert sum(train[-3:]) / 3 < 0.5 * sum(train[:3]) / 3
    assert evals[-1] < 0.5 * evals[0]
    # The kept weights are chosen by generated answers (token F1; these training rows carry no must_contain).
    scored = [r for r in rows if "eval_token_f1" in r]
    assert run.summary["select_by"] == "token_f1" and len(scored) == len(evals)
    assert scored[-1]["eval_token_f1"] > scored[0]["eval_token_f1"] + 0.3


def test_held_out_phrasings_beat_the_base_model(run, facts, tmp_path):
    test = tmp_path / "test.jsonl"
    test_rows = _rows("test.jsonl", facts)
    test.write_text("".join(json.dumps(r) + "\n" for r in test_rows))
    res = Run(run.path).evaluate(test, base=True)
    assert res["base"]["contains"] <= 0.1
    assert res["tuned"]["contains"] >= 0.5
    assert res["tuned"]["loss"] < res["base"]["loss"]
    assert res["tuned"]["rouge_l"] > res["base"]["rouge_l"] + 0.2


def test_generation_from_saved_folder_stops_by_itself(run, facts):
    reloaded = Run(run.path)
    row = _rows("train.jsonl", facts)[0]
    answer = reloaded.generate(row["messages"][0]["content"], max_new_tokens=64)
    assert token_f1(answer, row["messages"][1]["content"]) > 0.6, answer
    # It ended on the end-of-turn token, well before the token limit.
    n = len(reloaded.tokenizer(answer)["input_ids"])
    assert n < 40
