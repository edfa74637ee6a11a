"""A new task is one new module: `regress_task.py`, defined here in tests/ and registered with
`tunesmith.tasks.register`, goes through train, eval --json, predict --json and check from the command line
(loaded through TUNESMITH_TASKS) with no edit to src/."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl

pytestmark = pytest.mark.e2e  # commands run as real processes: not in make test-fast

TESTS = Path(__file__).parent


def tunesmith(*args):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TUNESMITH_TASKS": "regress_task",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "tunesmith", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def scored_rows(n: int, seed: int) -> list[dict]:
    """The target is the number of 'good' in the text: learnable from the words alone."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        k = rng.randint(0, 4)
        words = ["good"] * k + rng.sample(["plain", "item", "box", "shop", "day", "bad", "late"], 4)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "target": k})
    return rows


def test_a_task_defined_in_tests_runs_through_the_cli(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", scored_rows(240, seed=0))
    test = write_jsonl(tmp_path / "test.jsonl", scored_rows(60, seed=1))
    out = tmp_path / "run"

    r = tunesmith(
        "train",
        "--task",
        "regress",
        "--model",
        tiny_bert,
        "--data",
        train,
        "--method",
        "full",
        "--max-steps",
        200,
        "--lr",
        3e-3,
        "--batch-size",
        16,
        "--output",
        out,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "task.json").read_text())["std"] > 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "regress" and summary["select_by"] == "loss"  # the base class's default

    r = tunesmith("eval", out, "--data", test, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["task"] == "regress" and res["rows"] == 60
    assert set(res["tuned"]) == {"rmse", "mae"} and set(res["base"]) == {"rmse", "mae"}
    assert res["tuned"]["rmse"] < 0.6 * res["base"]["rmse"], res  # learnt, not just the mean

    r = tunesmith(
        "predict", out, "--text", "good good good good box day plain item", "--text", "bad late box day", "--json"
    )
    assert r.returncode == 0, r.stderr
    many, none = (json.loads(x)["value"] for x in r.stdout.splitlines())
    assert many > none + 1.5

    bad = write_jsonl(tmp_path / "bad.jsonl", scored_rows(6, seed=2) + [{"text": "good", "target": "lots"}])
    r = tunesmith("check", bad, "--task", "regress", "--model", tiny_bert, "--json", "--no-estimate")
    assert r.returncode == 2
    report = json.loads(r.stdout)
    assert [(e["line"], e["field"]) for e in report["invalid_rows"]] == [(7, "target")]
    assert report["task"] == "regress" and report["token_stats"]["max"] > 0

    r = tunesmith("train", "--task", "no-such-task", "--data", train, "--output", tmp_path / "x")
    assert r.returncode == 2 and "unknown task 'no-such-task'" in r.stderr and "regress" in r.stderr
