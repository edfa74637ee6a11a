"""The training loop on a tiny random Llama: loss falls, early stopping, run folder contents, both methods."""

from __future__ import annotations

import json

import pytest
from conftest import qa_rows, write_jsonl

import tunesmith
from tunesmith.run import Run


def _cfg(tiny_llama, tmp_path, **kw):
    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(48))
    base = dict(
        model=str(tiny_llama),
        data=str(train),
        output=str(tmp_path / "run"),
        batch_size=8,
        max_seq_len=128,
        seed=0,
        tensorboard=False,
    )
    base.update(kw)
    return base


def _metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_full_finetune_reduces_validation_loss_and_writes_run_folder(tiny_llama, tmp_path):
    run = tunesmith.train(
        _cfg(
            tiny_llama,
            tmp_path,
            method="full",
            max_steps=40,
            lr=3e-3,
            eval_every=10,
            early_stopping_patience=None,
            tensorboard=True,
            select_by="loss",
        )
    )
    rows = _metrics(run.path)
    evals = [r for r in rows if "eval_loss" in r]
    trains = [r for r in rows if "train_loss" in r]
    assert [r["step"] for r in evals] == [0, 10, 20, 30, 40]  # step 0 = before training
    assert all({"train_loss", "lr", "tokens_per_s"} <= r.keys() for r in trains)
    assert all({"eval_loss", "eval_perplexity", "eval_token_accuracy"} <= r.keys() for r in evals)
    assert evals[-1]["eval_loss"] < 0.5 * evals[0]["eval_loss"]
    # A random-initialised model over a 49k vocabulary starts near 0 accuracy; the answer template is learnt.
    assert (
        evals[-1]["eval_token_accuracy"] >= evals[0]["eval_token_accuracy"] and evals[-1]["eval_token_accuracy"] > 0.5
    )
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "loss_curve.png",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
    ):
        assert (run.path / name).is_file(), name
    assert any((run.path / "tensorboard").iterdir())
    summary = run.summary
    assert summary["steps"] == 40 and summary["tokens"] > 0
    assert summary["best_eval_loss"] == pytest.approx(min(r["eval_loss"] for r in evals))
    # The saved config is the resolved one: reloading gives the same settings.
    assert Run(run.path).config.lr == 3e-3 and Run(run.path).config.method == "full"


def test_lora_learns_and_saves_a_peft_adapter(tiny_llama, tmp_path):
    run = tunesmith.train(
        _cfg(
            tiny_llama, tmp_path, method="lora", max_steps=30, lr=1e-2, eval_every=10, **{"lora": {"r": 8, "alpha": 16}}
        )
    )
    evals = [r for r in _metrics(run.path) if "eval_loss" in r]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.5
    assert (run.path / "adapter_model.safetensors").is_file()
    assert not (run.path / "model.safetensors").exists()
    cfg = json.loads((run.path / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 16
    # Loads back with the base model and generates text.
    assert isinstance(Run(run.path).generate("code 3?", max_new_tokens=5), str)


def test_early_stopping_keeps_best_step(tiny_llama, tmp_path):
    # A vanishing learning rate never improves validation loss after the first evaluation.
    run = tunesmith.train(
        _cfg(
            tiny_llama,
            tmp_path,
            method="full",
            max_steps=40,
            lr=1e-12,
            warmup_ratio=0,
            eval_every=2,
            early_stopping_patience=2,
            select_by="loss",
        )
    )
    s = run.summary
    assert s["stopped_early"] is True
    assert s["best_step"] == 0 and s["steps"] == 4


def test_auto_settings_follow_dataset_size():
    from tunesmith.config import RunConfig
    from tunesmith.tasks import get_task
    from tunesmith.train.defaults import auto_settings

    sft = get_task("sft")
    cfg = RunConfig(data="x.jsonl")  # epochs is a cap: early stopping on validation ends the run sooner
    assert auto_settings(cfg, 10, sft) == {"epochs": 10.0, "lr": 1e-3, "lora.r": 64, "lora.alpha": 128}
    assert auto_settings(cfg, 1000, sft)["epochs"] == 10.0
    assert auto_settings(cfg, 20_000, sft)["epochs"] == 1.0
    assert auto_settings(RunConfig(data="x", method="full", max_steps=5), 1000, sft) == {"lr": 5e-5}
    given = RunConfig(data="x", epochs=2, lr=1e-4, lora={"r": 8, "alpha": 8})
    assert auto_settings(given, 1000, sft) == {}


def test_each_task_owns_its_defaults():
    """Issue 28: a rank chosen for chat facts made classifiers collapse; the encoder tasks keep their own."""
    from tunesmith.config import RunConfig, build_config
    from tunesmith.tasks import get_task
    from tunesmith.train.defaults import apply, auto_settings, settings_line

    picked = {}
    for name in ("sft", "clm", "classify", "tokens", "mlm"):
        task = get_task(name)
        chosen = auto_settings(RunConfig(data="x", task=name, max_steps=5), 100, task)
        picked[name] = (chosen["lora.r"], chosen["lora.alpha"], chosen["lr"])
        assert set(task.DEFAULTS) == {"lora.r", "lora.alpha", "lr.lora", "lr.full"}
        assert "DEFAULTS" in vars(type(task)), f"{name} must state its own defaults, not inherit them"
    assert picked["classify"] == (16, 32, 5e-4) and picked["tokens"] == (16, 32, 1e-3)
    assert picked["sft"] == (64, 128, 1e-3) and picked["mlm"][:2] == (64, 128)

    # A rank given alone keeps the task's alpha/r; the plan line names each value's source.
    cfg = build_config(None, data="x", task="classify", **{"lora.r": 8})
    chosen = auto_settings(cfg, 100, get_task("classify"))
    assert chosen == {"epochs": 10.0, "lr": 5e-4, "lora.alpha": 16.0}
    cfg = apply(cfg, chosen)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lr, cfg._origin["lora.r"]) == (8, 16.0, 5e-4, "your flag")
    line = settings_line(cfg, chosen, "classify", "at most 10 passes")
    assert line == (
        "settings: lr 0.0005 (classify default), epochs 10 (auto: at most 10 passes), lora r 8 (your flag), "
        "lora alpha 16 (classify default alpha/r x your r)"
    )


def test_clm_packs_raw_text(tiny_llama, tmp_path):
    text = "".join(f"Line {i} of the story goes on and on.\n\n" for i in range(200))
    (tmp_path / "book.txt").write_text(text)
    run = tunesmith.train(
        _cfg(
            tiny_llama,
            tmp_path,
            task="clm",
            data=str(tmp_path / "book.txt"),
            max_seq_len=64,
            method="full",
            max_steps=20,
            lr=3e-3,
            eval_every=10,
        )
    )
    s = run.summary
    assert s["data"]["train_rows"] > 10 and s["data"]["val_rows"] >= 1
    evals = [r for r in _metrics(run.path) if "eval_loss" in r]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert s["tokens"] % 64 == 0 and s["tokens"] >= 20 * 64  # every block is full: no padding in packed CLM
    res = run.evaluate(tmp_path / "book.txt", base=True)
    assert res["tuned"]["loss"] < res["base"]["loss"] and "contains" not in res["tuned"]


def test_clm_rejects_chat_data(tiny_llama, tmp_path):
    with pytest.raises(tunesmith.TunesmithError, match="task clm needs raw text"):
        tunesmith.train(_cfg(tiny_llama, tmp_path, task="clm", max_steps=2))


def test_existing_run_folder_is_not_overwritten(tiny_llama, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("x: 1\n")
    with pytest.raises(tunesmith.TunesmithError, match="already exists"):
        tunesmith.train(_cfg(tiny_llama, tmp_path, max_steps=2))
    assert (tmp_path / "run" / "config.yaml").read_text() == "x: 1\n"
