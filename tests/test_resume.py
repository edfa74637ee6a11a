"""Crash-safe training: checkpoints survive SIGKILL, resume equals an uninterrupted run, Ctrl-C saves first,
non-finite losses stop (or skip) cleanly, and an unfinished run folder is refused by everything but --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import qa_rows, write_jsonl
from safetensors.torch import load_file

pytestmark = pytest.mark.e2e  # real processes interrupted and resumed: not in make test-fast

CLI = [sys.executable, "-m", "tunesmith"]


def _config(tmp_path, tiny_llama, **over) -> Path:
    data = write_jsonl(tmp_path / "train.jsonl", qa_rows(48))
    cfg = {
        "model": str(tiny_llama),
        "data": str(data),
        "max_steps": 40,
        "batch_size": 4,
        "lr": 3e-3,
        "eval_every": 20,
        "save_steps": 5,
        "keep_checkpoints": 2,
        "val_max_rows": 8,
        "early_stopping_patience": None,
        "tensorboard": False,
        **over,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env():
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def _last_step(run: Path) -> int:
    f = run / "metrics.jsonl"
    steps = [json.loads(x).get("step", 0) for x in f.read_text().splitlines() if x.strip()] if f.is_file() else []
    return max(steps, default=0)


def _start_and_wait(args, run: Path, until, timeout=120):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    t0 = time.time()
    while not until():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training ended before it could be interrupted (rc {proc.returncode}): {err[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("training never reached the interruption point")
        time.sleep(0.005)
    return proc


def _weights(run: Path) -> dict:
    return load_file(run / "adapter_model.safetensors")


def _check_log(run: Path, total: int, eval_every: int):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "train_loss" in r]
    eval_steps = [r["step"] for r in rows if "eval_loss" in r]
    assert train_steps == list(range(1, total + 1)), "metrics log has a gap or a step twice"
    assert eval_steps == list(range(0, total + 1, eval_every))


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, tiny_llama):
    cfg = _config(tmp_path, tiny_llama)
    ref, run = tmp_path / "ref", tmp_path / "killed"
    done = subprocess.run(
        [*CLI, "train", "--config", str(cfg), "--output", str(ref)], capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 0, done.stderr[-2000:]

    # Kill the second run hard as soon as it has a checkpoint and has moved past it.
    ckpt_dir = run / "checkpoints"
    proc = _start_and_wait(
        [*CLI, "train", "--config", str(cfg), "--output", str(run)],
        run,
        lambda: (
            ckpt_dir.is_dir() and any(p.name.startswith("step-") for p in ckpt_dir.iterdir()) and _last_step(run) >= 7
        ),
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _last_step(run)
    assert 7 <= killed_at < 40 and not (run / "summary.json").exists()

    # An unfinished run is refused by eval, with the way out in the message.
    refused = subprocess.run(
        [*CLI, "eval", str(run), "--data", str(tmp_path / "train.jsonl")], capture_output=True, text=True, env=_env()
    )
    assert refused.returncode == 2 and f"tunesmith train --resume {run}" in refused.stderr
    assert "Traceback" not in refused.stderr

    resumed = subprocess.run([*CLI, "train", "--resume", str(run)], capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "step 40 of" not in resumed.stderr
    assert json.loads((run / "summary.json").read_text())["resumed"] is True

    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"killed at step {killed_at}; resumed vs uninterrupted: max abs weight difference {diff:.3g}")
    assert diff <= 1e-6, f"resumed weights differ from the uninterrupted run by {diff:.2e}"
    _check_log(run, 40, 20)
    assert len(list((run / "checkpoints").glob("step-*"))) <= 2  # keep_checkpoints


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path, tiny_llama):
    cfg = _config(tmp_path, tiny_llama, save_steps=1000, max_steps=400)
    run = tmp_path / "run"
    proc = _start_and_wait(
        [*CLI, "train", "--config", str(cfg), "--output", str(run)], run, lambda: _last_step(run) >= 5
    )
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"Resume with: tunesmith train --resume {run}" in last and "Traceback" not in err
    stopped = _last_step(run)
    assert (run / "checkpoints" / f"step-{stopped:07d}" / "state.json").is_file()  # saved at the step it stopped

    resumed = subprocess.run(
        [*CLI, "train", "--resume", str(run), "--max-steps", str(stopped + 3)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["steps"] == stopped + 3


def _nan_at(monkeypatch, calls: set[int]):
    """Make the training loss NaN on the given forward calls (1-based), counting training calls only."""
    from tunesmith.models import heads

    original, count = heads.CausalLMLoss.forward, {"n": 0}

    def forward(self, *a, **kw):
        out = original(self, *a, **kw)
        if self.training:
            count["n"] += 1
            if count["n"] in calls:
                return (out[0] * float("nan"), *out[1:])
        return out

    monkeypatch.setattr(heads.CausalLMLoss, "forward", forward)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path, tiny_llama, monkeypatch):
    from tunesmith import build_config
    from tunesmith.errors import RunStopped
    from tunesmith.run import Run
    from tunesmith.train.checkpoint import list_checkpoints
    from tunesmith.train.loop import train

    _nan_at(monkeypatch, {4})
    cfg = build_config(_config(tmp_path, tiny_llama, save_steps=1, max_steps=10), output=str(tmp_path / "r"))
    with pytest.raises(RunStopped) as err:
        train(cfg, log=lambda m: None)
    msg = str(err.value)
    assert msg.startswith("step 4: the training loss is nan") and "learning rate" in msg and "--resume" in msg
    kept = list_checkpoints(tmp_path / "r")
    assert [p.name for p in kept] == ["step-0000002", "step-0000003"]
    weights = load_file(kept[-1] / "weights.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    with pytest.raises(Exception, match="did not finish"):
        Run(tmp_path / "r")

    # `resume: auto` in the config picks the stopped run up from its newest checkpoint, here with a lower rate.
    monkeypatch.undo()
    logged = []
    run = train(cfg.model_copy(update={"resume": "auto", "lr": 1e-3}), log=logged.append)
    assert any("resuming from" in m and "step 3 of 10" in m for m in logged)
    assert any("learning rate changed on resume: 0.003 -> 0.001" in m for m in logged)
    assert run.summary["steps"] == 10 and run.summary["resumed"] is True


def test_nan_loss_skip_mode_skips_only_that_step(tmp_path, tiny_llama, monkeypatch):
    from tunesmith import build_config
    from tunesmith.train.loop import train

    _nan_at(monkeypatch, {3})
    cfg = build_config(_config(tmp_path, tiny_llama, max_steps=8, on_nonfinite="skip"), output=str(tmp_path / "r"))
    run = train(cfg, log=lambda m: None)
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r.get("skipped")] == [3]
    assert run.summary["skipped_steps"] == 1 and run.summary["steps"] == 8
    assert all(torch.isfinite(w).all() for w in _weights(run.path).values())


def test_checkpoint_round_trip_and_partial_saves(tmp_path):
    """Optimizer state, scheduler and RNG come back exactly; a half-written save is invisible and cleaned."""
    import random

    from transformers import get_scheduler

    from tunesmith.train.checkpoint import clean_partial, list_checkpoints, load_checkpoint, save_checkpoint

    def make():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        model[0].weight.requires_grad_(False)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, fused=True)
        return model, opt, get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=20)

    model, opt, sched = make()
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    for step in (3, 4, 5):
        save_checkpoint(tmp_path, step, model, opt, sched, {"epoch": 1, "tokens": 7}, keep=2)
    (tmp_path / "checkpoints" / ".tmp-step-0000006").mkdir()  # a save cut short by a crash
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000004", "step-0000005"]
    expect_torch, expect_py = torch.rand(3), random.random()

    model2, opt2, sched2 = make()
    torch.manual_seed(123)
    state = load_checkpoint(list_checkpoints(tmp_path)[-1], model2, opt2, sched2)
    assert state["step"] == 5 and state["epoch"] == 1 and state["tokens"] == 7
    assert torch.equal(torch.rand(3), expect_torch) and random.random() == expect_py
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    for k, v in opt.state_dict()["state"].items():
        for name, t in v.items():
            assert torch.equal(t, opt2.state_dict()["state"][k][name])
    assert sched2.get_last_lr() == sched.get_last_lr()
    clean_partial(tmp_path)
    assert not (tmp_path / "checkpoints" / ".tmp-step-0000006").exists()


def test_resume_refuses_finished_or_missing_runs(tmp_path, tiny_llama):
    from tunesmith import build_config
    from tunesmith.errors import TunesmithError
    from tunesmith.train.loop import train

    cfg = build_config(_config(tmp_path, tiny_llama, max_steps=2), output=str(tmp_path / "r"))
    train(cfg, log=lambda m: None)
    with pytest.raises(TunesmithError, match="already finished"):
        train(cfg, resume=True, log=lambda m: None)
    with pytest.raises(TunesmithError, match="nothing to resume"):
        train(cfg.model_copy(update={"output": str(tmp_path / "nope")}), resume=True, log=lambda m: None)
