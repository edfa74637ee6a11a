"""Process-level speed settings, each kept because it measured faster on CPU (docs/speed.md)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

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


def speed_setup(model, cfg, log) -> None:
    """Opt-in: gradient checkpointing (memory for time) and per-layer torch.compile (time for warm-up).

    Each decoder layer is compiled on its own: the layers share one graph, so it is built once, not thirty
    times, and dynamic shapes keep varying batch lengths from recompiling it.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
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
