"""The real embedded MiniLM-L6 learns each encoder task on slices of the shared public datasets.

Short runs (under a minute each on 2 cores) that must land well above the chance/majority baselines.
The full-size runs and their figures are in docs/tasks.md (examples/*.yaml).
"""

from __future__ import annotations

import json

import pytest
from conftest import shared_data, write_jsonl

import tunesmith
from tunesmith.data.labelled import read_tagged
from tunesmith.data.load import load_rows

pytestmark = pytest.mark.slow


def _run(tmp_path, **kw):
    cfg = dict(
        model="minilm-l6",
        output=str(tmp_path / "run"),
        method="full",
        batch_size=16,
        max_seq_len=128,
        seed=0,
        tensorboard=False,
        early_stopping_patience=None,
    )
    cfg.update(kw)
    return tunesmith.train(cfg)


def test_sentiment_slice_beats_chance(tmp_path):
    rows = [r for _, r in load_rows(shared_data("sentiment_sentences", "train.csv"))][:480]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    val = shared_data("sentiment_sentences", "validation.csv")
    run = _run(tmp_path, task="classify", data=str(train), val_data=str(val), epochs=1, lr=1e-4, eval_every=40)
    res = run.evaluate(val)
    print("sentiment", res["tuned"]["accuracy"])
    assert res["tuned"]["accuracy"] >= 0.80 > res["base"]["chance"]["accuracy"] + 0.2


def test_sms_spam_slice_finds_spam_with_class_weights(tmp_path):
    rows = [r for _, r in load_rows(shared_data("sms_spam", "train.jsonl"))][:640]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    val = shared_data("sms_spam", "validation.jsonl")
    run = _run(
        tmp_path,
        task="classify",
        data=str(train),
        val_data=str(val),
        epochs=1,
        lr=1e-4,
        eval_every=50,
        class_weight="balanced",
    )
    res = run.evaluate(val)
    print("spam", res["tuned"]["per_class"]["spam"], res["tuned"]["accuracy"])
    assert res["base"]["majority"]["per_class"]["spam"]["f1"] == 0.0
    assert res["tuned"]["per_class"]["spam"]["f1"] >= 0.85
    assert res["tuned"]["accuracy"] > res["base"]["majority"]["accuracy"]


def test_wnut17_slice_learns_entities(tmp_path):
    sents = read_tagged(shared_data("ner_wnut17", "train.conll"))[:800]
    train = write_jsonl(tmp_path / "train.jsonl", [{"tokens": s.words, "ner_tags": s.tags} for s in sents])
    val_all = read_tagged(shared_data("ner_wnut17", "validation.conll"))[:300]
    val = write_jsonl(tmp_path / "val.jsonl", [{"tokens": s.words, "ner_tags": s.tags} for s in val_all])
    run = _run(tmp_path, task="tokens", data=str(train), val_data=str(val), epochs=2, lr=2e-4, eval_every=50)
    res = run.evaluate(val)
    print("wnut", res["tuned"]["entity_f1"], {k: v["f1"] for k, v in res["tuned"]["per_type"].items()})
    assert res["tuned"]["entity_f1"] >= 0.15 > res["base"]["chance"]["entity_f1"] + 0.1
    assert res["tuned"]["per_type"]["person"]["f1"] >= 0.3


def test_mlm_on_shakespeare_lowers_masked_loss_well_below_start(tmp_path):
    text = shared_data("tinyshakespeare", "train.txt").read_text()[:30_000]
    (tmp_path / "t.txt").write_text(text)
    val = shared_data("tinyshakespeare", "validation.txt").read_text()[:6_000]
    (tmp_path / "v.txt").write_text(val)
    run = _run(
        tmp_path,
        task="mlm",
        data=str(tmp_path / "t.txt"),
        val_data=str(tmp_path / "v.txt"),
        max_steps=30,
        lr=2e-4,
        eval_every=15,
        max_seq_len=64,
    )
    evals = [
        json.loads(x)["eval_loss"] for x in (run.path / "metrics.jsonl").read_text().splitlines() if "eval_loss" in x
    ]
    print("mlm", evals)
    assert evals[-1] < 0.7 * evals[0]
    res = run.evaluate(tmp_path / "v.txt")
    assert res["tuned"]["perplexity"] < 0.1 * res["base"]["perplexity"]
