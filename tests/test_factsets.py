"""The fact sets used to choose and check the default settings (tests/data/factsets): valid, and their JSONL
files are exactly what build.py makes of facts.yaml (nobody edited a generated file by hand)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "data" / "factsets"
SETS = sorted(p.parent.name for p in HERE.glob("*/facts.yaml"))


def _build_module():
    spec = importlib.util.spec_from_file_location("factsets_build", HERE / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", SETS)
def test_fact_set_files_are_built_from_facts_yaml(name, tmp_path):
    assert len(SETS) >= 2
    work = tmp_path / name
    work.mkdir()
    shutil.copy(HERE / name / "facts.yaml", work / "facts.yaml")
    _build_module().build(work)
    for f in ("train.jsonl", "test.jsonl"):
        assert (work / f).read_bytes() == (HERE / name / f).read_bytes(), f"{name}/{f} is stale: run build.py"
    train = [json.loads(x) for x in (HERE / name / "train.jsonl").read_text().splitlines()]
    test = [json.loads(x) for x in (HERE / name / "test.jsonl").read_text().splitlines()]
    facts = {r["fact"] for r in train}
    assert len(facts) >= 40 and len(train) >= 6 * len(facts) and len(test) >= 2 * len(facts)
    assert all(r["must_contain"] for r in test)
    asked = {r["messages"][0]["content"].lower() for r in train}
    assert not any(r["messages"][0]["content"].lower() in asked for r in test)


def test_build_refuses_a_test_question_copied_from_training(tmp_path):
    build = _build_module()
    fact = {
        "id": "hours",
        "answer": "We open at 7:15 am.",
        "must_contain": ["7:15 am"],
        "train": [f"when do you open, question {i}" for i in range(8)],
        "test": ["when do you open, question 3", "what time is opening"],
    }
    with pytest.raises(SystemExit, match="hours.*equals a train question"):
        build.validate("x", [fact])
    fact["test"][0] = "opening time please"
    fact["must_contain"] = ["8:00 am"]
    with pytest.raises(SystemExit, match="must_contain '8:00 am' not in answer"):
        build.validate("x", [fact])


def test_demo_files_are_built_from_its_facts_yaml(tmp_path):
    demo = Path(__file__).parent.parent / "src" / "tunesmith" / "demo_data"
    spec = importlib.util.spec_from_file_location("demo_build", demo / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.build(build.load_facts(), tmp_path) == (52, 728, 104)
    for f in ("facts.jsonl", "train.jsonl", "test.jsonl"):
        assert (tmp_path / f).read_bytes() == (demo / f).read_bytes(), f"demo_data/{f} is stale: run build.py"
