"""Issue 29: base-model figures computed once (eval/basecache.py) and evaluations spaced by their cost."""

from __future__ import annotations

import json

import pytest
from conftest import qa_rows, train_tiny, write_jsonl

from tunesmith.eval import evaluate as evaluate_mod
from tunesmith.eval import general as general_mod
from tunesmith.run import Run
from tunesmith.train import forgetting as forgetting_mod
from tunesmith.train.select import EVAL_SHARE, eval_due

SAME = ("eval_loss", "eval_token_accuracy", "eval_token_f1", "general_contains", "general_perplexity")


def _step0(run):
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in rows if r["step"] == 0 and "eval_loss" in r)


@pytest.fixture
def counted(monkeypatch):
    """Counts of generate_batch calls (answers) and score_probe calls."""
    calls = {"generate": 0, "probe": 0}
    gen, probe = evaluate_mod.generate_batch, general_mod.score_probe

    def generate(*a, **kw):
        calls["generate"] += 1
        return gen(*a, **kw)

    def score(*a, **kw):
        calls["probe"] += 1
        return probe(*a, **kw)

    monkeypatch.setattr(evaluate_mod, "generate_batch", generate)
    monkeypatch.setattr(general_mod, "score_probe", score)
    monkeypatch.setattr(forgetting_mod, "score_probe", score)  # imported there by name
    return calls


def test_step0_figures_are_computed_once_and_reused(tiny_llama, tmp_path, monkeypatch, counted):
    monkeypatch.setenv("TUNESMITH_BASE_FIGURES", str(tmp_path / "cache"))
    val = write_jsonl(tmp_path / "val.jsonl", qa_rows(6, start=100))
    said = []
    common = dict(val_data=str(val), max_steps=4, eval_every=2, log=said.append)
    first = train_tiny(tiny_llama, tmp_path, qa_rows(32), "first", **common)
    computed = dict(counted)
    # one decode pass per evaluation (steps 0, 2, 4): validation answers and probe questions together
    assert computed["generate"] == 3 and computed["probe"] == 3
    assert any("base-model figures (step 0): computing (once" in s for s in said)
    said.clear()
    second = train_tiny(tiny_llama, tmp_path, None, "second", **common)
    assert any(s == "base-model figures (step 0): cached" for s in said)
    a, b = _step0(first), _step0(second)
    assert "eval_cached" not in a and b["eval_cached"] is True and b["general_cached"] is True
    assert {k: a[k] for k in SAME} == {k: b[k] for k in SAME}
    # step 0 of the second run generated nothing: its validation answers and probe questions were not asked again
    assert counted["generate"] - computed["generate"] == computed["generate"] - 1
    assert counted["probe"] - computed["probe"] == computed["probe"] - 1

    # A changed key recomputes: one validation row different (the probe's figures still match: reused).
    val2 = write_jsonl(tmp_path / "val2.jsonl", qa_rows(5, start=100) + qa_rows(1, start=200))
    third = train_tiny(tiny_llama, tmp_path, None, "third", **{**common, "val_data": str(val2)})
    c = _step0(third)
    assert "eval_cached" not in c and c["general_cached"] is True
    fourth = train_tiny(tiny_llama, tmp_path, None, "fourth", **common, val_generate_rows=3)
    assert "eval_cached" not in _step0(fourth)

    # eval's base column reads the probe's base figures the runs cached: only the tuned model is scored.
    before = counted["probe"]
    res = Run(first.path).evaluate(val)
    assert counted["probe"] - before == 1
    assert res["general"]["base"]["contains"] == a["general_contains"]
    assert res["general"]["base"]["perplexity"] == a["general_perplexity"]


def test_an_encoder_task_caches_nothing(tiny_bert, tmp_path, monkeypatch):
    from conftest import sentiment_rows

    cache = tmp_path / "cache"
    monkeypatch.setenv("TUNESMITH_BASE_FIGURES", str(cache))
    val = write_jsonl(tmp_path / "val.jsonl", sentiment_rows(16, seed=1))
    train_tiny(tiny_bert, tmp_path, sentiment_rows(32), task="classify", val_data=str(val), max_steps=2)
    assert not list(cache.glob("*.json")) or [p.name for p in cache.glob("*.json")] == ["file-sums.json"]


def _schedule(total, every, cost, secs, fixed=False):
    out, last = [], 0
    for s in range(1, total + 1):
        if eval_due(s, last=last, every=every, total=total, fixed=fixed, eval_cost=cost, step_seconds=secs):
            out.append(s)
            last = s
    return out


def test_the_default_schedule_spaces_evaluations_by_their_cost():
    # costs unknown: every 3 steps, but none within half a gap (1.5 steps) of the final evaluation
    assert _schedule(16, 3, 0, 0) == [3, 6, 9, 12, 16]
    # 15 s an evaluation, 7 s a step: one more waits ceil(15 x 0.85 / (0.15 x 7)) = 13 steps; at step 13 the
    # final one is 3 steps away (< 6.5): only the final step is evaluated
    assert EVAL_SHARE == 0.15
    assert _schedule(16, 3, 15, 7) == [16]
    assert _schedule(100, 3, 15, 7) == [13, 26, 39, 52, 65, 78, 91, 100]
    assert _schedule(100, 20, 15, 7) == [20, 40, 60, 80, 100]  # cheap enough: the plan's spacing stands
    # the user's eval_every is kept as given
    assert _schedule(16, 3, 15, 7, fixed=True) == [3, 6, 9, 12, 15, 16]


def test_one_decode_pass_scores_what_two_passes_score(tiny_llama, tokenizer, tmp_path):
    from tunesmith.data.formats import read_examples
    from tunesmith.eval.evaluate import answer_scores, joint_answer_scores
    from tunesmith.eval.general import ANSWER_CAP, load_probe
    from tunesmith.models.load import load_causal_lm

    model = load_causal_lm(str(tiny_llama))
    _, val = read_examples(write_jsonl(tmp_path / "val.jsonl", qa_rows(6, start=100)))
    probe = load_probe("default").questions[:12]
    apart = [answer_scores(model, tokenizer, val, cap=256), answer_scores(model, tokenizer, probe, cap=ANSWER_CAP)]
    assert joint_answer_scores(model, tokenizer, [(val, 256), (probe, ANSWER_CAP)]) == apart
    assert joint_answer_scores(model, tokenizer, [(val, 256), ([], ANSWER_CAP)]) == [apart[0], {}]
