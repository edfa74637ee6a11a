"""LoRA folded into the base weights while a model only generates, then the exact weights put back.

Why: an unmerged adapter computes W x, then B(A x) beside it, in every adapted layer at every decode step
(14 extra small matmuls a layer for SmolLM2); folded, it is one matmul with W + BA. Why copy the weights back
instead of PEFT's unmerge alone: unmerging subtracts BA again and leaves rounding in W.
"""

from __future__ import annotations

import contextlib

import torch


def _lora_layers(model) -> list:
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, LoraLayer)] if hasattr(model, "merge_adapter") else []


class Folded:
    """One adapter of a PEFT model folded into its weights across many forwards (the serve worker folds the
    adapter that every running row uses), unfolded on request. `adapter` is the folded one, or None."""

    def __init__(self, model):
        self.model, self.layers, self.adapter = model, _lora_layers(model), None
        self._saved: list = []

    def fold(self, adapter: str | None) -> None:
        """Fold `adapter` in (None: unfold); nothing to do when it is already the folded one."""
        if adapter == self.adapter or not self.layers:
            return
        self.unfold()
        if adapter is None:
            return
        with torch.no_grad():
            weights = [m.get_base_layer().weight for m in self.layers]
            if len(self._saved) != len(weights):
                self._saved = [w.detach().clone() for w in weights]
            else:  # reuse the copies' memory: a server may fold and unfold many times
                for saved, w in zip(self._saved, weights):
                    saved.copy_(w)
            self.model.merge_adapter(adapter_names=[adapter])
        self.adapter = adapter

    def unfold(self) -> None:
        if self.adapter is None:
            return
        with torch.no_grad():
            self.model.unmerge_adapter()
            for saved, m in zip(self._saved, self.layers):
                m.get_base_layer().weight.copy_(saved)
        self.adapter = None


@contextlib.contextmanager
def merged(model):
    """Inside: the active adapter folded into the weights. Outside: the weights bit-for-bit those from before.
    Models without LoRA layers, adapters switched off (the base model), or already merged pass through."""
    layers = _lora_layers(model)
    if not layers or any(m.disable_adapters or m.merged for m in layers):
        yield model
        return
    folded = Folded(model)
    active = model.active_adapter
    folded.fold(active if isinstance(active, str) else active[0])
    # Folded, each LoRA wrapper only forwards to its base layer, yet its Python costs ~0.1 ms a call: 210
    # calls a SmolLM2 decode step, 21 of its 52 ms here. The plain layers stand in for them meanwhile.
    swapped = _unwrap(model)
    try:
        yield model
    finally:
        for parent, name, wrapper in swapped:
            setattr(parent, name, wrapper)
        folded.unfold()


def _unwrap(model) -> list:
    """Put each LoRA layer's base layer in its place; returns (parent, name, wrapper) to put back."""
    from peft.tuners.lora import LoraLayer

    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                swapped.append((parent, name, child))
                setattr(parent, name, child.get_base_layer())
    return swapped
