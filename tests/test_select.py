"""Selecting by what the user cares about: the select_by metric, auto length to convergence, stop reasons,
and the knowledge-injection levers (LoRA variants, NEFTune)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import qa_rows, train_tiny

import tunesmith
from tunesmith.config import RunConfig
from tunesmith.errors import TunesmithError
from tunesmith.tasks import Prepared, get_task
from tunesmith.train.select import Selector, auto_epochs, metric_for, stop_reason


def _rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_selector_prefers_the_metric_and_breaks_ties_by_loss():
    sel = Selector("contains", patience=2)
    assert sel.update({"eval_contains": 0.5, "eval_loss": 2.0}, 0)
    assert not sel.update({"eval_contains": 0.4, "eval_loss": 1.0}, 10)  # lower loss, worse facts: not kept
    assert sel.update({"eval_contains": 0.5, "eval_loss": 1.5}, 20)  # same facts, lower loss: kept
    # ... but the score did not rise: patience keeps counting (1 miss + 1 tie = 2 = patience)
    assert sel.best_step == 20 and sel.bad_evals == 2 and sel.should_stop
    sel = Selector("contains", patience=2, state={**sel.state(), "bad_evals": 0})
    assert not sel.update({"eval_contains": 0.5, "eval_loss": 1.6}, 30)
    assert not sel.should_stop
    assert not sel.update({"eval_contains": 0.3, "eval_loss": 1.0}, 40)
    assert sel.should_stop and sel.best == 0.5 and sel.best_loss == 1.5
    loss = Selector("loss", patience=None)
    assert loss.update({"eval_loss": 2.0}, 0) and loss.update({"eval_loss": 1.0}, 1)
    assert not loss.update({"eval_loss": 1.0}, 2) and not loss.should_stop  # no patience: never stops
    again = Selector("contains", 2, sel.state())  # a checkpoint's state resumes the same comparison
    assert again.best_step == 20 and again.bad_evals == 2 and again.should_stop


def test_a_tie_at_the_cap_is_not_called_still_improving():
    """Scores 0.8, 0.9, 0.9, 0.9 (ties at lower losses): the last weights are kept, but the score stopped
    rising at the second evaluation, so the summary must not suggest more epochs."""
    sel = Selector("contains", patience=3)
    for step, (score, loss) in enumerate([(0.8, 1.0), (0.9, 0.9), (0.9, 0.8), (0.9, 0.7)]):
        sel.update({"eval_contains": score, "eval_loss": loss}, step * 10)
    assert (sel.best_step, sel.rose_at, sel.bad_evals) == (30, 10, 2)
    why = stop_reason(
        sel, stopped_early=False, step=30, auto_cap="10 epochs: at most 10 passes", has_val=True, last_eval_step=30
    )
    assert why == (
        "cap reached (10 epochs: at most 10 passes); best validation contains at step 10; kept step 30 "
        "(the same score at a lower loss)"
    )
    assert Selector("contains", 3, {k: v for k, v in sel.state().items() if k != "rose_at"}).rose_at == 30


def test_auto_length_cap_follows_dataset_size():
    assert auto_epochs(288) == (10.0, "at most 10 passes")
    assert auto_epochs(2000)[0] == 10.0
    assert auto_epochs(5000) == (4.0, "a budget of 20,000 examples seen")
    assert auto_epochs(100_000)[0] == 1.0
    assert auto_epochs(5)[0] == 20.0  # a tiny set still sees 100 examples
    assert auto_epochs(1)[0] == 25.0


def test_task_default_metric_and_unknown_select_by():
    from tunesmith.data.formats import Example

    sft = get_task("sft")
    with_facts = Prepared(
        [1], [1], val_examples=[Example(line=1, messages=[{"role": "user", "content": "q"}], must_contain=["7"])]
    )
    plain = Prepared([1], [1], val_examples=[Example(line=1, messages=[{"role": "user", "content": "q"}])])
    assert metric_for(sft, RunConfig(data="x"), with_facts) == "contains"
    assert metric_for(sft, RunConfig(data="x"), plain) == "token_f1"
    assert metric_for(sft, RunConfig(data="x"), Prepared([1], [])) == "loss"  # no validation rows
    assert metric_for(sft, RunConfig(data="x"), Prepared([1], [1])) == "loss"  # text rows: nothing to answer
    with pytest.raises(TunesmithError, match="select_by contains needs validation rows with must_contain"):
        metric_for(sft, RunConfig(data="x", select_by="contains"), plain)
    assert metric_for(get_task("clm"), RunConfig(data="x", task="clm"), plain) == "loss"
    assert metric_for(get_task("classify"), RunConfig(data="x", task="classify"), plain) == "accuracy"
    with pytest.raises(TunesmithError, match="select_by 'contains' is not available for task clm.*loss"):
        metric_for(get_task("clm"), RunConfig(data="x", task="clm", select_by="contains"), plain)


def test_stop_reasons_say_why():
    nan = Selector("contains", 3)
    assert not nan.update({"eval_contains": float("nan"), "eval_loss": 1.0}, 0) and nan.best is None
    sel = Selector("contains", 3)
    for step, c in [(0, 0.0), (10, 0.5), (20, 0.4), (30, 0.4), (40, 0.4)]:
        sel.update({"eval_contains": c, "eval_loss": 1.0}, step)
    assert (
        stop_reason(sel, stopped_early=True, step=40, auto_cap="10 epochs", has_val=True, last_eval_step=40)
        == "validation contains stopped improving after step 10 (no better score in 3 evaluations)"
    )
    rising = Selector("contains", 3)
    for step, c in [(0, 0.0), (10, 0.5), (20, 0.6)]:
        rising.update({"eval_contains": c, "eval_loss": 1.0}, step)
    msg = stop_reason(
        rising, stopped_early=False, step=20, auto_cap="10 epochs: at most 10 passes", has_val=True, last_eval_step=20
    )
    assert msg.startswith("cap reached while still improving") and "more epochs may help" in msg
    assert "requested 20 steps" in stop_reason(
        rising, stopped_early=False, step=20, auto_cap=None, has_val=True, last_eval_step=20
    )
    assert stop_reason(
        rising, stopped_early=False, step=5, auto_cap=None, has_val=False, last_eval_step=None
    ).startswith("no validation data")


def _facts(n):
    """qa_rows whose answers must contain "code is": a random tiny model never says it, a trained one does."""
    rows = qa_rows(n)
    for r in rows:
        r["must_contain"] = ["code is"]
    return rows


def _train_facts(tiny_llama, tmp_path, output="run", **settings):
    """A run of the tiny model on 48 fact rows (conftest.train_tiny's settings, then the test's own)."""
    return train_tiny(tiny_llama, tmp_path, _facts(48), output, **settings)


def test_auto_length_stops_when_the_fact_score_stops_improving(tiny_llama, tmp_path):
    # A vanishing learning rate: neither facts nor loss improve after step 0, so patience ends the run,
    # well before the 10-epoch cap, and the summary says so.
    # eval_every fixed at an epoch: the default schedule spaces evaluations by their cost, which on a tiny model
    # dwarfs its steps (issue 29)
    run = _train_facts(tiny_llama, tmp_path, lr=1e-12, warmup_ratio=0, early_stopping_patience=2, eval_every=6)
    s = run.summary
    evals = [r for r in _rows(run.path) if "eval_loss" in r]
    assert s["select_by"] == "contains" and s["auto"]["epochs"] == 10.0
    assert all({"eval_contains", "eval_token_f1", "eval_seconds"} <= r.keys() for r in evals)
    steps_per_epoch = 6  # 43 training rows (5 held out), batch 8
    assert [r["step"] for r in evals] == [0, steps_per_epoch, 2 * steps_per_epoch]  # once an epoch, then stop
    assert s["stopped_early"] and s["best_step"] == 0 and s["steps"] == 2 * steps_per_epoch
    assert s["stop_reason"].startswith("validation contains never beat the base model (step 0)")
    assert s["eval_seconds"] > 0


def test_select_by_contains_keeps_the_weights_with_the_most_facts(tiny_llama, tmp_path):
    run = _train_facts(
        tiny_llama, tmp_path, method="full", lr=3e-3, max_steps=30, eval_every=10, early_stopping_patience=None
    )
    evals = [r for r in _rows(run.path) if "eval_loss" in r]
    assert evals[-1]["eval_contains"] > evals[0]["eval_contains"]  # the tiny model learns the answer words
    best = max(evals, key=lambda r: (r["eval_contains"], -r["eval_loss"]))
    assert run.summary["best_step"] == best["step"]
    assert run.summary["best_eval_contains"] == best["eval_contains"]
    assert run.summary["stop_reason"].startswith("reached the requested 30 steps")
    # The kept weights are the selected step's: scoring the reloaded run reproduces its validation score.
    from tunesmith.eval.evaluate import answer_scores
    from tunesmith.tasks.sft import prepare

    cfg = tunesmith.build_config(None, **{**run.config.model_dump(), "output": str(run.path)})
    prepared = prepare(cfg, run.tokenizer, lambda m: None)
    assert answer_scores(run.model, run.tokenizer, prepared.val_examples)["contains"] == best["eval_contains"]


def test_select_by_loss_and_bad_select_by(tiny_llama, tmp_path):
    base = dict(method="full", lr=3e-3, max_steps=20, eval_every=10, early_stopping_patience=None)
    run = _train_facts(tiny_llama, tmp_path, select_by="loss", **base)
    evals = [r for r in _rows(run.path) if "eval_loss" in r]
    assert "eval_contains" not in evals[0]  # no generation when selecting by loss
    assert run.summary["best_eval_loss"] == pytest.approx(min(r["eval_loss"] for r in evals))
    with pytest.raises(TunesmithError, match="select_by 'entity_f1' is not available for task sft"):
        _train_facts(tiny_llama, tmp_path, output="bad", select_by="entity_f1", **base)
    assert not (tmp_path / "bad").exists()


def test_lora_variants_reach_peft(tiny_llama):
    from tunesmith.config import LoraConfig
    from tunesmith.models.load import load_causal_lm
    from tunesmith.models.peft_wrap import wrap

    rs = wrap(load_causal_lm(str(tiny_llama)), "lora", LoraConfig(r=4, alpha=8, variant="rslora"))
    layer = next(m for m in rs.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict))
    assert layer.scaling["default"] == pytest.approx(8 / 4**0.5)  # alpha / sqrt(r), not alpha / r
    dora = wrap(load_causal_lm(str(tiny_llama)), "lora", LoraConfig(r=4, alpha=8, variant="dora"))
    assert any("lora_magnitude_vector" in n for n, _ in dora.named_parameters())
    assert dora.peft_config["default"].use_dora and not rs.peft_config["default"].use_dora


def test_neftune_noise_only_in_training_and_bounded(tiny_llama):
    from tunesmith.models.load import load_causal_lm
    from tunesmith.models.neftune import NEFTune

    model = load_causal_lm(str(tiny_llama))
    emb = model.get_input_embeddings()
    ids = torch.tensor([[5, 6, 7, 8]])
    clean = emb(ids).detach()
    neft = NEFTune(model, alpha=5.0)
    neft.set_batch({"attention_mask": torch.ones(1, 4, dtype=torch.long)})
    emb.train()
    noisy = emb(ids).detach()
    bound = 5.0 / (4 * clean.size(-1)) ** 0.5
    assert 0 < (noisy - clean).abs().max() <= bound
    emb.eval()
    assert torch.equal(emb(ids), clean)  # evaluation and generation see no noise
    neft.remove()
    emb.train()
    assert torch.equal(emb(ids), clean)


def test_neftune_and_rslora_train_from_the_cli_config(tiny_llama, tmp_path):
    run = _train_facts(
        tiny_llama,
        tmp_path,
        lr=1e-2,
        max_steps=12,
        eval_every=6,
        neftune_alpha=5.0,
        lora={"r": 8, "alpha": 16, "variant": "rslora"},
    )
    evals = [r for r in _rows(run.path) if "eval_loss" in r]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert json.loads((run.path / "adapter_config.json").read_text())["use_rslora"] is True
    assert run.config.neftune_alpha == 5.0
    # Evaluation sees no noise: step 0 scores exactly as in a run without NEFTune; training does differ.
    plain = tunesmith.train({**run.config.model_dump(), "output": str(tmp_path / "plain"), "neftune_alpha": None})
    plain_rows = _rows(plain.path)
    assert [r for r in plain_rows if "eval_loss" in r][0]["eval_loss"] == evals[0]["eval_loss"]
    first = [r["train_loss"] for r in _rows(run.path) if "train_loss" in r][1]
    assert first != [r["train_loss"] for r in plain_rows if "train_loss" in r][1]
