"""Process-level speed settings, each kept because it measured faster on CPU (docs/speed.md)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

from ..errors import TunesmithError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_malloc() -> bool:
    """Stop glibc from unmapping freed activation buffers every step only to fault them back in.

    Same effect as GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<huge>, but
    applied at run time so it works without re-launching. Off with TUNESMITH_MALLOC=default.
    """
    if not sys.platform.startswith("linux") or os.environ.get("TUNESMITH_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


def check_liger(enabled: bool) -> None:
    """Refuse `--liger` where its kernels cannot run, before any data or model is read."""
    if not enabled:
        return
    if not torch.cuda.is_available():  # first: installing liger-kernel would not help without a GPU
        raise TunesmithError("--liger: Liger's kernels are Triton kernels and need a CUDA GPU; none is visible")
    try:
        import liger_kernel.transformers  # noqa: F401
    except ImportError:
        raise TunesmithError("--liger needs liger-kernel: pip install 'tunesmith[liger]'") from None


def apply_liger(base, log) -> None:
    """Swap the model's RMSNorm, SwiGLU MLP and RoPE for Liger's kernels, in place (LoRA layers inside the MLP
    keep working: the patched forward still calls gate/up/down_proj). Not its fused linear cross-entropy:
    tunesmith computes the loss itself (models/heads.py), only where a label is, so that patch would not run."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(
        model=base, rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False
    )
    log(f"liger: RMSNorm, SwiGLU and RoPE kernels on ({base.config.model_type})")


def speed_setup(model, cfg, log) -> None:
    """Opt-in: gradient checkpointing (memory for time) and per-layer torch.compile (time for warm-up).

    Each decoder layer is compiled on its own: the layers share one graph, so it is built once, not thirty
    times, and dynamic shapes keep varying batch lengths from recompiling it.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if cfg.liger:
        apply_liger(base, log)
    if cfg.gradient_checkpointing:
        if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5 name
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(base, "enable_input_require_grads"):
            base.enable_input_require_grads()  # LoRA: frozen embeddings would otherwise cut the graph
        log("gradient checkpointing: on")
    if cfg.compile:
        layers = _decoder_layers(base)
        if layers is None:
            log("compile: no decoder layer stack found in this model; running uncompiled")
            return
        for layer in layers:
            layer.compile(dynamic=True)
        log(f"compile: {len(layers)} layers with torch.compile (the first steps include compiling)")


def _decoder_layers(base):
    for path in (
        "model.layers",
        "model.decoder.layers",
        "transformer.h",
        "bert.encoder.layer",
        "encoder.layer",
        "layers",
    ):
        node = base
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None and hasattr(node, "__len__"):
            return node
    return None


def peak_memory_gb(device_type: str = "cpu") -> float:
    """The process's peak so far: resident memory (RSS) on a CPU, allocated GPU memory on CUDA."""
    if device_type == "cuda":
        return torch.cuda.max_memory_allocated() / 1e9
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


RETAINED = 1.25  # the allocator keeps freed blocks for reuse: minilm-l6 mlm peaked 24% above its first step's


def memory_forecast(before: float, after_first: float, first_tokens: int, largest_tokens: int) -> float:
    """Expected peak for the largest batch, from the first step: what the step added (gradients, optimizer
    states, activations) grows at most in proportion to the batch's tokens, plus what the allocator keeps
    (RETAINED); the rest (weights, libraries) stays. Checked by `python -m bench.memory`: for minilm-l6
    classify, tokens and mlm at the defaults it said 2.3, 2.3 and 3.0 GB; they peaked at 1.06, 1.25 and 3.0."""
    return before + (after_first - before) * RETAINED * max(1.0, largest_tokens / max(first_tokens, 1))
