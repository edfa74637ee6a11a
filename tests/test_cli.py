"""The `tunesmith` command as a user runs it: exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import qa_rows, write_jsonl

pytestmark = pytest.mark.e2e  # commands run as real processes: not in make test-fast


def tunesmith(*args, cwd=None, input=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tunesmith", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=input,
        env=env,
        timeout=600,
    )


def test_malformed_row_stops_before_training(tiny_llama, tmp_path):
    rows = [json.dumps(r) for r in qa_rows(5)]
    rows[3] = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]})
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(rows) + "\n")
    r = tunesmith("train", "--model", tiny_llama, "--data", data, "--output", tmp_path / "out", "--max-steps", 2)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert (
        lines[-1] == f"error: {data}:4: messages[1].role: unknown role 'bot' (expected one of assistant, system, user)"
    )
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_flag_value_and_unknown_model_exit_2(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(4))
    r = tunesmith("train", "--data", data, "--method", "qlora", "--output", tmp_path / "o")
    assert r.returncode == 2 and "method" in r.stderr and "Traceback" not in r.stderr
    r = tunesmith("train", "--model", "no-such-alias", "--data", data, "--output", tmp_path / "o")
    assert r.returncode == 2 and "unknown model 'no-such-alias'" in r.stderr


def test_offline_hub_id_says_how_to_pass_a_local_path(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(4))
    r = tunesmith("train", "--model", "someorg/some-model", "--data", data, "--output", tmp_path / "o")
    assert r.returncode == 2
    assert "local folder" in r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr


def test_init_writes_a_config_that_train_accepts(tiny_llama, tmp_path):
    r = tunesmith("init", tmp_path / "run.yaml")
    assert r.returncode == 0 and (tmp_path / "run.yaml").is_file()
    assert tunesmith("init", tmp_path / "run.yaml").returncode == 2  # no silent overwrite
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(16))
    r = tunesmith(
        "train",
        "--config",
        tmp_path / "run.yaml",
        "--model",
        tiny_llama,
        "--data",
        data,
        "--output",
        tmp_path / "run",
        "--max-steps",
        2,
        "--lr",
        0.01,
        "--lora-r",
        4,
    )
    assert r.returncode == 0, r.stderr
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "max_steps: 2" in saved and "lr: 0.01" in saved and "r: 4" in saved


def test_train_eval_generate_roundtrip(tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", qa_rows(40))
    test_rows = qa_rows(6, start=40)
    for row in test_rows:
        row["must_contain"] = row["messages"][-1]["content"].split()[-1].rstrip(".")
    test = write_jsonl(tmp_path / "test.jsonl", test_rows)
    run_dir = tmp_path / "run"
    r = tunesmith(
        "train",
        "--model",
        tiny_llama,
        "--data",
        data,
        "--output",
        run_dir,
        "--method",
        "full",
        "--max-steps",
        30,
        "--lr",
        3e-3,
        "--seed",
        1,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(run_dir)
    assert "detected format 'chat messages'" in r.stderr

    r = tunesmith("eval", run_dir, "--data", test, "--json", "--max-new-tokens", 8)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    for side in ("base", "tuned"):
        assert {"loss", "perplexity", "exact_match", "token_f1", "rouge_l", "contains"} <= res[side].keys()
    assert res["tuned"]["loss"] < res["base"]["loss"]
    assert 0 <= res["tuned"]["contains"] <= 1

    r = tunesmith("generate", run_dir, "--prompt", "code 41?", "--max-new-tokens", 8)
    assert r.returncode == 0, r.stderr and r.stdout.strip()

    r = tunesmith("chat", run_dir, "--max-new-tokens", 4, input="code 1?\n/reset\ncode 2?\n/exit\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("bot> ") == 2


def test_eval_on_folder_that_is_not_a_run(tmp_path):
    r = tunesmith("eval", tmp_path, "--data", tmp_path / "x.jsonl")
    assert r.returncode == 2 and "not a tunesmith run folder" in r.stderr


def test_usage_errors_exit_2():
    assert tunesmith().returncode == 2  # no command: help, then usage exit code
    r = tunesmith("train", "--bogus", "1")
    assert r.returncode == 2 and "No such option" in r.stderr
    assert tunesmith("--help").returncode == 0
