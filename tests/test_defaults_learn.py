"""Issue 28's CI-sized guard: the real MiniLM-L6 with each encoder task's *defaults* learns on real data.

The other end-to-end encoder tests pass their own method and learning rate, so they could not see a default
that stopped classifiers and taggers learning. These give only the model, task and files, plus a step cap
that fits the suite's budget; `make quality` (bench/quality.py) runs the same defaults at full length.
"""

from __future__ import annotations

import random

import pytest
from conftest import shared_data, write_jsonl

import tunesmith
from tunesmith.data.labelled import read_tagged
from tunesmith.data.load import load_rows

pytestmark = pytest.mark.slow


def _defaults(tmp_path, task, rows, val_rows, max_steps):
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    val = write_jsonl(tmp_path / "val.jsonl", val_rows)
    run = tunesmith.train(
        dict(
            model="minilm-l6",
            task=task,
            data=str(train),
            val_data=str(val),
            output=str(tmp_path / "run"),
            max_steps=max_steps,
            report_to="none",
        )
    )
    return run, run.evaluate(val)


def _sample(rows, n, seed=0):
    return random.Random(seed).sample(rows, n)


def test_default_classifier_beats_the_majority_class_on_spam(tmp_path):
    rows = [r for _, r in load_rows(shared_data("sms_spam", "train.jsonl"))]
    val = [r for _, r in load_rows(shared_data("sms_spam", "validation.jsonl"))]
    run, res = _defaults(tmp_path, "classify", _sample(rows, 480), _sample(val, 300), max_steps=120)
    majority = res["base"]["majority"]
    print("spam defaults", run.summary["auto"], res["tuned"]["macro_f1"], res["tuned"]["per_class"]["spam"])
    assert run.summary["collapsed"] is None and "collapsed" not in res
    assert res["tuned"]["macro_f1"] >= majority["macro_f1"] + 0.3  # majority: about 0.47 (every message "ham")
    assert res["tuned"]["per_class"]["spam"]["f1"] >= 0.75


def test_default_tagger_finds_entities_in_wnut17(tmp_path):
    def rows(name, n):
        sents = _sample(read_tagged(shared_data("ner_wnut17", name)), n)
        return [{"tokens": s.words, "ner_tags": s.tags} for s in sents]

    run, res = _defaults(tmp_path, "tokens", rows("train.conll", 800), rows("validation.conll", 300), max_steps=200)
    print("wnut defaults", run.summary["auto"], res["tuned"]["entity_f1"], res["tuned"]["entities_found"])
    assert run.summary["collapsed"] is None and "collapsed" not in res
    assert res["tuned"]["entities_found"] >= 30
    assert res["tuned"]["entity_f1"] >= 0.15 > res["base"]["chance"]["entity_f1"] + 0.1
