"""The encoder tasks through the command line: flags, eval --json keys, predict output, bad input."""

from __future__ import annotations

import json
import re

import pytest
from conftest import sentiment_rows, write_csv
from test_cli import tunesmith

pytestmark = pytest.mark.e2e  # commands run as real processes: not in make test-fast


def test_classify_cli_train_eval_predict(tiny_bert, tmp_path):
    rows = [[r["text"], r["label"], "x"] for r in sentiment_rows(200)]
    train = write_csv(tmp_path / "train.csv", ["review", "stars", "extra"], rows)
    test = write_csv(
        tmp_path / "test.csv",
        ["review", "stars", "extra"],
        [[r["text"], r["label"], "x"] for r in sentiment_rows(40, seed=3)],
    )
    out = tmp_path / "run"
    r = tunesmith(
        "train",
        "--task",
        "classify",
        "--model",
        tiny_bert,
        "--data",
        train,
        "--column",
        "review=text",
        "--label-column",
        "stars",
        "--method",
        "full",
        "--max-steps",
        60,
        "--lr",
        3e-3,
        "--batch-size",
        16,
        "--class-weight",
        "balanced",
        "--output",
        out,
    )
    assert r.returncode == 0, r.stderr
    weights = re.search(r"class weights: neg: ([\d.]+), pos: ([\d.]+)", r.stderr)
    assert weights and 0.9 < float(weights[1]) < 1.1 and 0.9 < float(weights[2]) < 1.1

    r = tunesmith("eval", out, "--data", test, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["task"] == "classify" and res["rows"] == 40
    assert {"accuracy", "macro_f1", "micro_f1", "per_class"} <= res["tuned"].keys()
    assert set(res["tuned"]["per_class"]["pos"]) == {"precision", "recall", "f1", "support"}
    assert set(res["base"]) == {"chance", "majority"} and res["base"]["majority"]["accuracy"] == 0.5
    assert res["tuned"]["accuracy"] > 0.8

    r = tunesmith("predict", out, "--text", "superb phone", "--text", "terrible food", "--json")
    assert r.returncode == 0, r.stderr
    preds = [json.loads(x) for x in r.stdout.splitlines()]
    assert [p["label"] for p in preds] == ["pos", "neg"] and set(preds[0]["scores"]) == {"neg", "pos"}

    r = tunesmith("predict", out, "--data", test, "--output", tmp_path / "preds.jsonl")
    assert r.returncode == 0 and len((tmp_path / "preds.jsonl").read_text().splitlines()) == 40

    bad = write_csv(tmp_path / "bad.csv", ["review", "stars"], [["ok", "pos"], ["fine", "meh"]])
    r = tunesmith("eval", out, "--data", bad)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:3: label 'meh' does not occur in the training")


def test_tokens_cli_reads_conll_and_prints_entities(tiny_bert, tmp_path):
    sents = []
    for i in range(120):
        name = ["Ada", "Alan", "Grace"][i % 3]
        sents.append(f"{name}\tB-per\nlives\tO\nin\tO\n{['Oslo', 'Paris'][i % 2]}\tB-loc\n")
    data = tmp_path / "train.conll"
    data.write_text("-DOCSTART-\tO\n\n" + "\n".join(sents))
    out = tmp_path / "run"
    r = tunesmith(
        "train",
        "--task",
        "tokens",
        "--model",
        tiny_bert,
        "--data",
        data,
        "--method",
        "full",
        "--max-steps",
        40,
        "--lr",
        5e-3,
        "--batch-size",
        16,
        "--output",
        out,
    )
    assert r.returncode == 0, r.stderr
    r = tunesmith("eval", out, "--data", data, "--json")
    res = json.loads(r.stdout)
    assert {"entity_f1", "entity_precision", "entity_recall", "per_type"} <= res["tuned"].keys()
    assert res["tuned"]["entity_f1"] > 0.9 and res["base"]["majority"]["entity_f1"] == 0.0
    r = tunesmith("predict", out, "--text", "Grace lives in Oslo", "--json")
    ents = json.loads(r.stdout)["entities"]
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in ents] == [
        ("Grace", "per", 0, 5),
        ("Oslo", "loc", 15, 19),
    ]


def test_predict_needs_text_or_data(tmp_path):
    r = tunesmith("predict", tmp_path, "--text", "x")
    assert r.returncode == 2 and "not a tunesmith run folder" in r.stderr
