"""LoRA folded into the base weights while a model only generates, then the exact weights put back."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def merged(model):
    """Inside: a PEFT LoRA model computes W + BA as one matmul instead of W, then B(A x) beside it (14 extra
    small matmuls a layer for SmolLM2 at every decode step). Outside: the weights are bit-for-bit those from
    before, copied back, because unmerging subtracts BA again and would leave rounding in W. Models without
    LoRA layers, adapters switched off (the base model), or already merged pass through unchanged."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        yield model
        return
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if not layers or not hasattr(model, "merge_adapter") or any(m.disable_adapters or m.merged for m in layers):
        yield model
        return
    with torch.no_grad():
        saved = [(m.get_base_layer().weight, m.get_base_layer().weight.detach().clone()) for m in layers]
        model.merge_adapter()
    try:
        yield model
    finally:
        with torch.no_grad():
            model.unmerge_adapter()
            for weight, original in saved:
                weight.copy_(original)
