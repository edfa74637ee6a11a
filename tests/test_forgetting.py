"""The general-ability probe (forgetting): scored at step 0 and every evaluation, --general, --max-forgetting,
the "general" block of `tunesmith eval`, encoder tasks untouched, bad probe files."""

from __future__ import annotations

import json

import pytest
from conftest import qa_rows, run_cli, sentiment_rows, train_tiny, write_jsonl

import tunesmith
from tunesmith.errors import TunesmithError
from tunesmith.eval.general import load_probe, score_probe
from tunesmith.eval.metrics import normalise_fact
from tunesmith.train.select import Selector, stop_reason

QUESTIONS = [f"Tell me about topic {w}." for w in "alpha bravo charlie delta echo foxtrot golf hotel".split()]
FILLER = "x " * 12  # the reference answers: 12 tokens, so answers are capped at 26 (answer_budget)


def _rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _evals(run_dir):
    return [r for r in _rows(run_dir) if "eval_loss" in r]


def _chat(q, must):
    return {
        "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FILLER}],
        "must_contain": must,
    }


@pytest.fixture(scope="module")
def own_probe(tiny_llama, tokenizer, tmp_path_factory):
    """A probe the tiny random model passes by construction: the first two words of its own greedy answers are
    the needles (plus a text row for perplexity). Training on other data changes those answers, so the score
    falls: forgetting, measurably, on a model that knows nothing."""
    from tunesmith.eval.evaluate import answer_budget
    from tunesmith.eval.general import ANSWER_CAP, BATCH
    from tunesmith.eval.generate import generate_batch
    from tunesmith.models.load import load_causal_lm

    model = load_causal_lm(str(tiny_llama))
    path = tmp_path_factory.mktemp("probe") / "probe.jsonl"
    budget = answer_budget(tokenizer, [FILLER], ANSWER_CAP)  # as score_probe asks
    answers = generate_batch(
        model, tokenizer, [[{"role": "user", "content": q}] for q in QUESTIONS], max_new_tokens=budget, batch_size=BATCH
    )
    rows = [_chat(q, " ".join(normalise_fact(a).split()[:2])) for q, a in zip(QUESTIONS, answers)]
    rows.append({"text": "Rivers carry water from the hills to the sea, and rain fills them again. " * 20})
    write_jsonl(path, rows)
    assert score_probe(model, tokenizer, load_probe(str(path)))["contains"] == 1.0
    return path


def _train(tiny_llama, tmp_path, output, log=None, **settings):
    # "code N?" -> "The code is <word>.": nothing like the probe's answers
    settings = {"early_stopping_patience": None, "log": log or (lambda m: None), **settings}
    return train_tiny(tiny_llama, tmp_path, qa_rows(48), output, **settings)


def _limited(tiny_llama, own_probe, tmp_path, **settings):
    """A full fine-tune at lr 3e-3 for up to 12 steps, kept by loss, under max_forgetting."""
    common = dict(general=str(own_probe), method="full", lr=3e-3, max_steps=12, select_by="loss")
    return _train(tiny_llama, tmp_path, "run", **common, **settings)


@pytest.fixture(scope="module")
def lora_run(tiny_llama, own_probe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    said = []
    run = _train(
        tiny_llama,
        tmp,
        "run",
        said.append,
        general=str(own_probe),
        lr=1e-2,
        max_steps=6,
        eval_every=3,
        lora={"r": 8, "alpha": 16},
    )
    return run, said


def test_probe_is_scored_at_step_0_and_every_evaluation_from_the_given_file(lora_run, own_probe):
    run, said = lora_run
    evals = _evals(run.path)
    assert [r["step"] for r in evals] == [0, 3, 6]
    for r in evals:
        assert {"general_contains", "general_perplexity", "general_drop", "general_seconds"} <= r.keys()
        assert r["general_drop"] == pytest.approx(1.0 - r["general_contains"])  # step 0 scored 1.0
        assert 1 < r["general_perplexity"] < 1e9
    assert evals[0]["general_contains"] == 1.0  # the custom probe, not the shipped one (a random model scores 0)
    assert evals[-1]["general_contains"] < 1.0  # trained on other answers, it forgets its own
    s = run.summary
    assert s["general_probe"] == str(own_probe) and s["max_forgetting"] is None
    assert s["general_step0"] == {"contains": 1.0, "perplexity": evals[0]["general_perplexity"]}
    kept = next(r for r in evals if r["step"] == s["best_step"])
    assert s["general_drop"] == kept["general_drop"]
    assert f"general-ability probe at each evaluation: {own_probe}: 8 questions" in "\n".join(said)


def test_the_shipped_probe_is_the_default(tiny_llama, tokenizer, tmp_path, capsys):
    from tunesmith.models.load import load_causal_lm

    said = []
    run = _train(tiny_llama, tmp_path, "run", said.append, method="full", lr=1e-3, max_steps=2, eval_every=2)
    lines = capsys.readouterr().err.splitlines()  # the evaluation lines: "step 2: eval_loss ... general 0.000 ..."
    for r in _evals(run.path):
        line = next(x for x in lines if x.startswith(f"step {r['step']}: eval_loss"))
        assert f"general {r['general_contains']:.3f}" in line and f"general_ppl {r['general_perplexity']:.2f}" in line
    assert run.summary["general_probe"] == "default"
    assert any(m.startswith("general-ability probe at each evaluation: the shipped probe: 40 questions") for m in said)
    step0 = _evals(run.path)[0]
    alone = score_probe(load_causal_lm(str(tiny_llama)), tokenizer, load_probe("default"))
    assert step0["general_contains"] == alone["contains"]  # the same questions, scored the same way
    assert step0["general_perplexity"] == pytest.approx(alone["perplexity"], rel=1e-4)
    assert len(load_probe("default").questions) == 40 and len(load_probe("default").text.split()) > 600


def test_max_forgetting_keeps_the_best_within_the_limit_and_stops_at_once(tiny_llama, own_probe, tmp_path):
    # Warm-up makes the change gradual: step 1 trains at lr 0, step 2 loses some answers, step 3 more.
    run = _limited(tiny_llama, own_probe, tmp_path, warmup_ratio=0.5, eval_every=1, max_forgetting=0.5)
    evals = _evals(run.path)
    over = [r for r in evals if r["general_drop"] > 0.5]
    within = [r for r in evals if r["general_drop"] <= 0.5]
    assert len(over) == 1 and evals[-1] is over[0]  # the first evaluation over the limit is the last
    assert any(r["step"] > 0 for r in within)
    best = min(within, key=lambda r: r["eval_loss"])
    s = run.summary
    assert s["stopped_early"] and s["steps"] == over[0]["step"] < 12
    assert s["best_step"] == best["step"] > 0 and s["general_drop"] == best["general_drop"] <= 0.5
    assert s["max_forgetting"] == 0.5
    fell = f"{over[0]['general_drop'] * 100:.0f}%"
    assert s["stop_reason"] == (
        f"general-ability probe fell {fell} (> 50%) at step {over[0]['step']}; kept step {best['step']}, "
        "the best validation loss within the limit"
    )
    # The kept weights are that step's: they score the probe as that evaluation did.
    assert score_probe(run.model, run.tokenizer, load_probe(str(own_probe)))["contains"] == best["general_contains"]


def test_when_no_evaluation_stays_within_the_limit_it_says_so(tiny_llama, own_probe, tmp_path):
    run = _limited(tiny_llama, own_probe, tmp_path, warmup_ratio=0, eval_every=3, max_forgetting=0.1)
    evals = _evals(run.path)
    assert [r["step"] for r in evals] == [0, 3] and evals[1]["general_drop"] > 0.1
    assert evals[1]["eval_loss"] < evals[0]["eval_loss"]
    s = run.summary
    assert s["stopped_early"] and s["best_step"] == 3 and s["general_drop"] == evals[1]["general_drop"]
    assert s["stop_reason"] == (
        f"general-ability probe fell {evals[1]['general_drop'] * 100:.0f}% (> 10%) at step 3, the first evaluation "
        "after step 0, so no trained weights stayed within the limit; kept step 3, the best validation loss, "
        "although it is over the limit: try a lower --lr, or evaluate sooner (--eval-every)"
    )


def test_stop_reasons_for_the_kept_base_weights():
    def evaluations(*drops):  # (step, general_drop) rows that never beat step 0's contains
        sel = Selector("contains", None, max_forgetting=0.1)
        sel.update({"eval_contains": 0.5, "eval_loss": 1.0, "general_drop": 0.0}, 0)
        kept = [sel.update({"eval_contains": 0.4, "eval_loss": 1.0, "general_drop": d}, s) for s, d in drops]
        return sel, kept

    def reason(sel, step):
        return stop_reason(
            sel, stopped_early=sel.should_stop, step=step, auto_cap=None, has_val=True, last_eval_step=step
        )

    sel, _ = evaluations()
    assert sel.fell is None and not sel.within
    sel, _ = evaluations((10, 0.105))
    assert sel.should_stop and sel.fell == (10, 0.105)
    assert reason(sel, 10) == (
        "general-ability probe fell 10.5% (> 10%) at step 10, the first evaluation after step 0, so no trained "
        "weights stayed within the limit; kept step 0, the base model's weights (validation contains never beat "
        "them): try a lower --lr, or evaluate sooner (--eval-every)"
    )
    sel, _ = evaluations((5, 0.1))
    assert sel.fell is None and sel.within  # at the limit is within
    sel, _ = evaluations((5, 0.1), (8, -0.2))
    assert sel.fell is None and not sel.should_stop  # a probe that rose
    limitless = Selector("contains", None, sel.state())
    assert reason(sel, 8) == reason(limitless, 8)  # never over the limit: the usual reason
    sel, kept = evaluations((5, 0.1), (8, -0.2), (12, 0.3))
    assert kept == [False, False, False] and sel.should_stop
    assert reason(sel, 12) == (
        "general-ability probe fell 30% (> 10%) at step 12; kept step 0, the base model's weights: no evaluation "
        "within the limit beat its validation contains"
    )


def test_eval_has_a_general_block(lora_run, own_probe, tmp_path, monkeypatch, capsys):
    run, _ = lora_run
    test = write_jsonl(tmp_path / "test.jsonl", qa_rows(4, start=100))
    code, out, _ = run_cli(monkeypatch, capsys, "eval", run.path, "--data", test, "--json")
    assert code == 0
    g = json.loads(out)["general"]
    kept = next(r for r in _evals(run.path) if r["step"] == run.summary["best_step"])
    assert g["probe"] == str(own_probe) and g["questions"] == 8
    assert g["base"]["contains"] == 1.0  # the adapter switched off: the model the probe was made from
    assert g["tuned"]["contains"] == kept["general_contains"]
    assert g["drop"] == pytest.approx(1.0 - g["tuned"]["contains"])
    assert g["tuned"]["perplexity"] == pytest.approx(kept["general_perplexity"], rel=1e-4)
    assert json.loads((run.path / "eval_test.json").read_text())["general"] == g
    code, _, err = run_cli(monkeypatch, capsys, "eval", run.path, "--data", test)
    assert code == 0 and "general-ability probe" in err and f"fell {g['drop'] * 100:.0f}%" in err
    code, out, _ = run_cli(monkeypatch, capsys, "eval", run.path, "--data", test, "--json", "--general", "none")
    assert code == 0 and "general" not in json.loads(out)


def test_encoder_tasks_have_no_probe(tiny_bert, tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", sentiment_rows(40))
    common = dict(
        model=str(tiny_bert),
        data=str(data),
        task="classify",
        method="full",
        max_steps=2,
        eval_every=2,
        batch_size=8,
        max_seq_len=32,
        tensorboard=False,
    )
    run = tunesmith.train({**common, "output": str(tmp_path / "c")})
    assert not any(k.startswith("general") for r in _rows(run.path) for k in r)
    assert run.summary["general_probe"] is None and run.summary["general_drop"] is None
    assert "general" not in run.evaluate(data)
    with pytest.raises(TunesmithError, match="max_forgetting needs the general-ability probe, which is off for task"):
        tunesmith.train({**common, "output": str(tmp_path / "d"), "max_forgetting": 0.1})
    assert not (tmp_path / "d").exists()


def test_bad_probe_files_are_one_line_errors(tiny_llama, tmp_path, monkeypatch, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(8))
    bad = tmp_path / "probe.jsonl"
    bad.write_text(json.dumps(_chat("q?", "7")) + "\n" + json.dumps(qa_rows(1)[0]) + "\n")
    train = ["train", "--model", tiny_llama, "--data", data, "--output", tmp_path / "out", "--max-steps", 1]
    code, _, err = run_cli(monkeypatch, capsys, *train, "--general", bad)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: {bad}:2: a general-ability probe question needs 'must_contain' (the string its answer must hold)"
    )
    bad.write_text(json.dumps(_chat("q?", "7")) + "\n\n{oops\n")
    code, _, err = run_cli(monkeypatch, capsys, *train, "--general", bad)
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"error: {bad}:3: invalid JSON")
    code, _, err = run_cli(monkeypatch, capsys, *train, "--general", tmp_path / "missing.jsonl")
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'missing.jsonl'}: general-ability probe file not found (give a file, 'default' or 'none')"
    )
    code, _, err = run_cli(monkeypatch, capsys, *train, "--general", "none", "--max-forgetting", "0.1")
    assert code == 2 and "max_forgetting needs the general-ability probe; general is none" in err
    assert not (tmp_path / "out").exists()


def test_the_shipped_probe_is_packaged():
    import fnmatch
    import re
    from pathlib import Path

    from tunesmith.eval.general import shipped_files

    root = Path(__file__).resolve().parents[1]
    line = re.search(r"^tunesmith = (\[.*\])$", (root / "pyproject.toml").read_text(), re.M)  # package-data
    globs = json.loads(line.group(1))
    for f in shipped_files():
        rel = f.relative_to(root / "src" / "tunesmith").as_posix()
        assert f.is_file() and any(fnmatch.fnmatch(rel, g) for g in globs), rel
