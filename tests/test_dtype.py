"""Precision and quantization on CPU: the dtype rule, bf16 LoRA training against fp32, what a run records.

The CUDA paths (auto = bf16, fp16 loss scaling, 4-/8-bit QLoRA) have not run on a GPU; here they are checked
only as far as a CPU can: the rule that picks them, and the one-line refusals.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import qa_rows, run_cli, write_jsonl
from safetensors import safe_open

import tunesmith
from tunesmith.errors import TunesmithError
from tunesmith.models.precision import dtype_name, resolve_dtype
from tunesmith.run import Run

STEPS = 20


def _no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_resolve_dtype_on_cpu(monkeypatch):
    _no_cuda(monkeypatch)
    assert resolve_dtype("auto") == torch.float32  # never bf16 by default on CPU: its matmuls are 10-20x slower
    assert resolve_dtype("fp32") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16  # allowed when asked for
    with pytest.raises(TunesmithError, match="fp16 needs a CUDA GPU") as e:
        resolve_dtype("fp16")
    assert "\n" not in str(e.value)
    with pytest.raises(TunesmithError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8")


def test_auto_is_bf16_only_on_a_cuda_gpu_that_has_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dtype_name("auto") == "bf16" and dtype_name("fp16") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4 or V100
    assert dtype_name("auto") == "fp32"


def test_setup_keeps_trainable_weights_fp32(tiny_llama):
    """LoRA: frozen base in bf16, adapter and optimizer states fp32. Full: fp32 weights, bf16 only in autocast."""
    from tunesmith.config import RunConfig
    from tunesmith.models.load import load_tokenizer
    from tunesmith.tasks import get_task
    from tunesmith.train.setup import setup_model

    cfg = RunConfig(model=str(tiny_llama), data="unused.jsonl", dtype="bf16", lr=1e-3, lora={"r": 4, "alpha": 8})
    task, tok = get_task("sft"), load_tokenizer(str(tiny_llama))
    s = setup_model(cfg, task, tok, {}, log=lambda m: None)
    assert {p.dtype for p in s.model.parameters() if not p.requires_grad} == {torch.bfloat16}
    assert {p.dtype for p in s.model.parameters() if p.requires_grad} == {torch.float32}
    ids = torch.tensor([tok("code 1? The code is river.")["input_ids"]])
    with s.mixed.autocast():
        loss, n, _ = s.loss_mod(input_ids=ids, labels=ids, attention_mask=torch.ones_like(ids))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    (loss / n).backward()
    s.optimizer.step()
    moments = [v for st in s.optimizer.state.values() for k, v in st.items() if k.startswith("exp_avg")]
    assert moments and {v.dtype for v in moments} == {torch.float32}

    full = setup_model(cfg.model_copy(update={"method": "full"}), task, tok, {}, log=lambda m: None)
    assert {p.dtype for p in full.model.parameters()} == {torch.float32}
    assert full.mixed.dtype == torch.bfloat16


@pytest.fixture(scope="module")
def runs(tiny_llama, tmp_path_factory):
    """The same LoRA run twice, seed 0: dtype auto (fp32 on CPU) and bf16."""
    root = tmp_path_factory.mktemp("dtype")
    data = write_jsonl(root / "train.jsonl", qa_rows(48))
    out = {}
    for dtype in ("auto", "bf16"):
        out[dtype] = tunesmith.train(
            {
                "model": str(tiny_llama),
                "data": str(data),
                "output": str(root / dtype),
                "dtype": dtype,
                "lora": {"r": 8, "alpha": 16},
                "lr": 1e-2,
                "max_steps": STEPS,
                "eval_every": 10,
                "save_steps": 10,
                "select_by": "loss",
                "early_stopping_patience": None,
                "batch_size": 8,
                "max_seq_len": 128,
                "seed": 0,
                "tensorboard": False,
            }
        )
    return out


def _train_losses(run) -> list[float]:
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    return [r["train_loss"] for r in rows if "train_loss" in r]


def _dtypes(path) -> set[str]:
    with safe_open(str(path), "pt") as f:
        return {str(f.get_slice(k).get_dtype()) for k in f.keys()}


@pytest.mark.e2e
def test_bf16_lora_learns_with_fp32_adapter_and_optimizer(runs):
    run = runs["bf16"]
    losses = _train_losses(run)
    assert len(losses) == STEPS and losses[-1] < 0.8 * losses[0], losses
    assert _dtypes(run.path / "adapter_model.safetensors") == {"F32"}
    ckpt = run.path / "checkpoints" / "step-0000010"  # the trainable weights and AdamW's moments mid-run
    assert _dtypes(ckpt / "weights.safetensors") == {"F32"}
    with safe_open(str(ckpt / "optimizer.safetensors"), "pt") as f:
        moments = {str(f.get_slice(k).get_dtype()) for k in f.keys() if ".exp_avg" in k}
    assert moments == {"F32"}


@pytest.mark.e2e
def test_bf16_and_fp32_losses_agree(runs):
    """Same seed, same batches; bf16 rounds the frozen base and every matmul's inputs to 8 mantissa bits (a
    relative step of 2**-8 = 0.4%). Measured (2 cores, torch 2.13): 0.05% apart at step 1, at most 0.78% (step
    20), the last losses 0.037 apart after a fall of 9.1. The bounds are 2.5-10x those: bf16 rounding, not a
    different computation."""
    fp32, bf16 = runs["auto"], runs["bf16"]
    if fp32.config.dtype != "fp32":
        pytest.skip("auto chose bf16 here (a CUDA GPU): no fp32 reference run")
    a, b = _train_losses(fp32), _train_losses(bf16)
    rel = [abs(x - y) / x for x, y in zip(a, b)]
    print(f"\nfp32 {[round(x, 4) for x in a]}\nbf16 {[round(x, 4) for x in b]}\nrelative {[round(r, 4) for r in rel]}")
    assert rel[0] < 0.005  # step 1: the same weights up to rounding
    assert max(rel) < 0.02  # the runs drift apart a little as the rounded updates compound
    assert abs(a[-1] - b[-1]) < 0.02 * (a[0] - a[-1])  # far less than what training itself changed


@pytest.mark.e2e
def test_run_records_and_reloads_its_dtype(runs, tmp_path):
    fp32, bf16 = runs["auto"], runs["bf16"]
    assert fp32.config.dtype == dtype_name("auto") == fp32.summary["dtype"]  # what auto chose, not "auto"
    assert "dtype: bf16" in (bf16.path / "config.yaml").read_text() and bf16.summary["dtype"] == "bf16"

    again = Run(bf16.path)
    assert again.config.dtype == "bf16"
    params = dict(again.model.named_parameters())
    assert {p.dtype for n, p in params.items() if "lora_" not in n} == {torch.bfloat16}
    assert {p.dtype for n, p in params.items() if "lora_" in n} == {torch.float32}  # PEFT keeps adapters fp32
    assert isinstance(again.generate("code 3?", max_new_tokens=3), str)
    assert {p.dtype for p in Run(bf16.path, dtype="fp32").model.parameters()} == {torch.float32}

    # A run saved before `dtype` existed trained in fp32, and loads so.
    old = tmp_path / "old"
    old.mkdir()
    for f in ("config.yaml", "summary.json", "adapter_model.safetensors"):
        (old / f).write_bytes((fp32.path / f).read_bytes())
    text = (old / "config.yaml").read_text()
    (old / "config.yaml").write_text("\n".join(x for x in text.splitlines() if not x.startswith("dtype:")))
    assert Run(old).config.dtype == "fp32"


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """The exit code and the last line on stderr."""
    code, _, err = run_cli(monkeypatch, capsys, *args)
    return code, err.strip().splitlines()[-1]


@pytest.mark.e2e
def test_cli_refuses_what_this_machine_cannot_run(tiny_llama, tmp_path, monkeypatch, capsys):
    import tunesmith.train.loop  # noqa: F401  (imported before torch.cuda is patched below)

    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(8))
    out = tmp_path / "out"
    train = ("train", "--model", tiny_llama, "--data", data, "--output", out, "--max-steps", 1)
    _no_cuda(monkeypatch)

    code, err = _cli(monkeypatch, capsys, *train, "--quantize", "4bit")
    assert code == 2 and err == "error: --quantize 4bit: 4-bit/8-bit quantization needs a CUDA GPU, and none is visible"
    code, err = _cli(monkeypatch, capsys, *train, "--dtype", "fp16")
    assert code == 2 and err == "error: dtype fp16 needs a CUDA GPU (a CPU has no fast fp16 matmul); use fp32 or bf16"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU, but no bitsandbytes
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail
    code, err = _cli(monkeypatch, capsys, *train, "--quantize", "8bit")
    assert code == 2 and err == "error: --quantize needs bitsandbytes: pip install 'tunesmith[qlora]'"

    code, err = _cli(monkeypatch, capsys, *train, "--quantize", "4bit", "--method", "full")
    assert code == 2 and "quantize 4bit needs method lora" in err
    monkeypatch.setitem(sys.modules, "liger_kernel", None)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", None)
    code, err = _cli(monkeypatch, capsys, *train, "--liger")
    assert code == 2 and err == "error: --liger needs liger-kernel: pip install 'tunesmith[liger]'"
    _no_cuda(monkeypatch)
    code, err = _cli(monkeypatch, capsys, *train, "--liger")
    assert (
        code == 2 and err == "error: --liger: Liger's kernels are Triton kernels and need a CUDA GPU; none is visible"
    )
    assert not out.exists()  # every refusal comes before the run folder is written


def test_liger_patches_the_base_model_under_lora(tiny_llama, monkeypatch):
    """Only the hand-off can be checked without a GPU: the kernels are applied to the PEFT model's base, with
    tunesmith's own loss left in place (no fused cross-entropy patch)."""
    import types

    from tunesmith.config import RunConfig
    from tunesmith.models.load import load_tokenizer
    from tunesmith.tasks import get_task
    from tunesmith.train.setup import setup_model

    calls = []
    fake = types.ModuleType("liger_kernel.transformers")
    fake._apply_liger_kernel_to_instance = lambda model, **kw: calls.append((model, kw))
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", fake)
    cfg = RunConfig(model=str(tiny_llama), data="unused.jsonl", liger=True, lr=1e-3, lora={"r": 4, "alpha": 8})
    logged = []
    s = setup_model(cfg, get_task("sft"), load_tokenizer(str(tiny_llama)), {}, log=logged.append)
    [(model, kw)] = calls
    assert model is s.model.get_base_model()
    assert kw == dict(rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False)
    assert "liger: RMSNorm, SwiGLU and RoPE kernels on (llama)" in logged
