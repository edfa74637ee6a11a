"""Model registry: aliases, the GGUF cache, local folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.errors import TunesmithError
from tunesmith.models import registry


def test_alias_conversion_is_cached_and_never_half_written(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    calls = []

    def fake_convert(src, dest, check=True):
        calls.append(src)
        dest.mkdir(parents=True)
        (dest / "config.json").write_text("{}")
        return dest

    monkeypatch.setattr(registry, "convert_gguf", fake_convert)
    half = tmp_path / "models" / "smollm2-135m"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_text("partial")  # no config.json: an interrupted copy
    out = registry.resolve_model("smollm2-135m")
    assert out == half and len(calls) == 1 and calls[0].name.endswith(".gguf")
    assert not (half / "model.safetensors").exists()
    assert registry.resolve_model("smollm2-135m") == half and len(calls) == 1  # second use: no conversion


def test_minilm_alias_points_at_the_shipped_folder():
    path = registry.resolve_model("minilm-l6")
    assert (Path(path) / "config.json").is_file() and (Path(path) / "model.safetensors").is_file()


def test_local_folder_and_errors(tmp_path, tiny_llama):
    assert registry.resolve_model(str(tiny_llama)) == tiny_llama
    with pytest.raises(TunesmithError, match="no config.json"):
        registry.resolve_model(str(tmp_path))
    with pytest.raises(TunesmithError, match="unknown model"):
        registry.resolve_model("not-an-alias")
    assert registry.resolve_model("org/name") == "org/name"  # hub ids pass through to from_pretrained


def test_cached_smollm_has_plain_weights_and_template(smol_dir):
    import json

    cfg = json.loads((smol_dir / "config.json").read_text())
    assert "quantization_config" not in cfg  # the GGUF quantizer was detached before saving
    assert (smol_dir / "model.safetensors").is_file()
    assert "<|im_start|>" in (smol_dir / "chat_template.jinja").read_text()


def test_logit_check_catches_a_bad_conversion(smol_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32)
    registry._check_same_logits(model, smol_dir)  # identical: passes
    with torch.no_grad():
        model.model.norm.weight.mul_(1.5)
    with pytest.raises(RuntimeError, match="differs"):
        registry._check_same_logits(model, smol_dir)


def test_attention_dropout_is_set_on_the_modules_but_not_in_the_saved_config(tiny_bert):
    from tunesmith.models.load import load_pretrained

    def attention_p(model):
        return {m.dropout.p for n, m in model.named_modules() if n.endswith("attention.self")}

    ours = load_pretrained("AutoModelForMaskedLM", tiny_bert, attention_dropout=0.0)
    own = load_pretrained("AutoModelForMaskedLM", tiny_bert)
    assert own.config.attention_probs_dropout_prob == 0.1 and attention_p(own) == {0.1}
    assert attention_p(ours) == {0.0}  # PyTorch's fused attention can run in training
    assert ours.config.attention_probs_dropout_prob == 0.1  # an export keeps the authors' setting
    assert {m.p for n, m in ours.named_modules() if n.endswith("output.dropout")} == {0.1}  # other dropout kept
