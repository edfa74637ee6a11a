"""Security basics: weights come from safetensors only; a pickle checkpoint needs --allow-pickle and is then
read with torch.load(weights_only=True); trust_remote_code stays False unless the user sets it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import qa_rows, write_jsonl

from tunesmith.config import RunConfig
from tunesmith.errors import TunesmithError
from tunesmith.models.load import load_pretrained
from tunesmith.tasks import get_task


@pytest.fixture(scope="module")
def pickled(tiny_llama, tmp_path_factory) -> Path:
    """tiny_llama as an old-style checkpoint: the same weights as pytorch_model.bin (a pickle), no safetensors.

    transformers 5 has no save_pretrained(safe_serialization=False) any more; this is the file it wrote."""
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("pickled")
    for f in tiny_llama.iterdir():
        if f.is_file() and not f.name.startswith("model.safetensors"):
            shutil.copy(f, out / f.name)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    return out


def _logits(model):
    ids = torch.arange(1, 17).unsqueeze(0)
    with torch.no_grad():
        return model(ids).logits


def test_pickle_checkpoint_is_refused_before_anything_unpickles(pickled, monkeypatch):
    def no_unpickling(*a, **kw):
        raise AssertionError("torch.load was called on a refused checkpoint")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(TunesmithError) as e:
        load_pretrained("AutoModelForCausalLM", str(pickled))
    msg = str(e.value)
    assert str(pickled) in msg and "pytorch_model.bin" in msg and "--allow-pickle" in msg
    assert "\n" not in msg and e.value.exit_code == 2
    with pytest.raises(TunesmithError, match="--allow-pickle"):  # the tasks pass cfg.allow_pickle, False
        get_task("sft").load_model(RunConfig(data="d.jsonl", model=str(pickled)), None)


def test_allow_pickle_loads_with_weights_only(pickled, tiny_llama, monkeypatch):
    from transformers import AutoModelForCausalLM

    calls = []
    real_load = torch.load

    def recording_load(*a, **kw):
        calls.append(kw.get("weights_only"))
        return real_load(*a, **kw)

    monkeypatch.setattr(torch, "load", recording_load)
    cfg = RunConfig(data="d.jsonl", model=str(pickled), allow_pickle=True)
    model = get_task("sft").load_model(cfg, None)
    assert calls and all(w is True for w in calls), calls
    original = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    assert torch.equal(_logits(model), _logits(original))


def test_safetensors_next_to_a_pickle_never_touches_the_pickle(pickled, tiny_llama, tmp_path, monkeypatch):
    both = tmp_path / "both"
    shutil.copytree(pickled, both)
    shutil.copy(tiny_llama / "model.safetensors", both / "model.safetensors")
    monkeypatch.setattr(torch, "load", lambda *a, **kw: pytest.fail("torch.load called"))
    for allow in (False, True):
        load_pretrained("AutoModelForCausalLM", str(both), allow_pickle=allow)


def test_cli_refuses_a_pickle_model_with_one_line(pickled, tmp_path, monkeypatch, capfd):
    from tunesmith import cli

    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(8))
    out = tmp_path / "run"
    monkeypatch.setattr(
        sys,
        "argv",
        ["tunesmith", "train", "--model", str(pickled), "--data", str(data), "--output", str(out), "--max-steps", "1"],
    )
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main()
    err = capfd.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {pickled}: weights are a pickle (pytorch_model.bin)") and "--allow-pickle" in line


def test_cli_pickle_refusal_leaves_no_run_folder(pickled, tmp_path, monkeypatch, capfd):
    from tunesmith import cli

    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(8))
    out = tmp_path / "run"
    monkeypatch.setattr(
        sys,
        "argv",
        ["tunesmith", "train", "--model", str(pickled), "--data", str(data), "--output", str(out), "--max-steps", "1"],
    )
    with pytest.raises(SystemExit):
        cli.main()
    capfd.readouterr()
    assert not out.exists()


class _Stop(Exception):
    pass


def _record_from_pretrained(monkeypatch, auto_class: str) -> list:
    """Replace transformers.<auto_class> by a stand-in that records the load's keyword arguments and stops."""
    import transformers

    seen = []

    class Recorder:
        @staticmethod
        def from_pretrained(src, **kw):
            seen.append(kw)
            raise _Stop

    monkeypatch.setattr(transformers, auto_class, Recorder)
    return seen


@pytest.mark.parametrize(
    "task,auto_class,meta",
    [
        ("sft", "AutoModelForCausalLM", None),
        ("clm", "AutoModelForCausalLM", None),
        ("classify", "AutoModelForSequenceClassification", {"labels": ["a", "b"], "multi_label": False}),
        ("tokens", "AutoModelForTokenClassification", {"labels": ["O", "B-x"]}),
        ("mlm", "AutoModelForMaskedLM", None),
    ],
)
def test_every_task_loads_safetensors_only_without_remote_code(task, auto_class, meta, tiny_llama, monkeypatch):
    seen = _record_from_pretrained(monkeypatch, auto_class)
    tok = SimpleNamespace(pad_token_id=0)
    for cfg in (
        RunConfig(data="d", task=task, model=str(tiny_llama)),
        RunConfig(data="d", task=task, model=str(tiny_llama), trust_remote_code=True, allow_pickle=True),
    ):
        with pytest.raises(_Stop):
            get_task(task).load_model(cfg, tok, meta)
    default, opted_in = seen
    assert default["trust_remote_code"] is False
    assert default["use_safetensors"] is True and default["weights_only"] is True
    assert opted_in["trust_remote_code"] is True  # the user's explicit choice is passed on
    assert opted_in["use_safetensors"] is None and opted_in["weights_only"] is True


def test_tokenizer_is_loaded_without_remote_code(tiny_llama, monkeypatch):
    from tunesmith.models.load import load_tokenizer

    seen = _record_from_pretrained(monkeypatch, "AutoTokenizer")
    with pytest.raises(_Stop):
        load_tokenizer(str(tiny_llama))
    assert seen[0]["trust_remote_code"] is False
    assert RunConfig(data="d").trust_remote_code is False and RunConfig(data="d").allow_pickle is False
