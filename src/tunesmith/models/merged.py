"""LoRA folded into the base weights while a model only generates, then the exact weights put back.

Why: an unmerged adapter computes W x, then B(A x) beside it, in every adapted layer at every decode step
(14 extra small matmuls a layer for SmolLM2); folded, it is one matmul with W + BA. Why copy the weights back
instead of PEFT's unmerge alone: unmerging subtracts BA again and leaves rounding in W.
"""

from __future__ import annotations

import contextlib

import torch


def _lora_slots(model) -> list[tuple]:
    """(parent, attribute name, LoRA layer) for every LoRA layer of a PEFT model; [] for other models."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    if not hasattr(model, "merge_adapter"):
        return []
    return [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, LoraLayer)
    ]


class Folded:
    """One adapter of a PEFT model folded into its weights across many forwards (the serve worker folds the
    adapter that every running row uses), unfolded on request. `adapter` is the folded one, or None.

    While folded, the plain base layers stand in for the LoRA wrappers: a folded wrapper only forwards to its
    base layer, yet its Python costs ~0.1 ms a call, 210 calls a SmolLM2 decode step (21 of 52 ms here)."""

    def __init__(self, model):
        self.model, self.slots, self.adapter = model, _lora_slots(model), None
        self._saved: list = []

    @property
    def layers(self) -> list:
        return [layer for _, _, layer in self.slots]

    def fold(self, adapter: str | None) -> None:
        """Fold `adapter` in (None: unfold); nothing to do when it is already the folded one."""
        if adapter == self.adapter or not self.slots:
            return
        self.unfold()
        if adapter is None:
            return
        with torch.no_grad():
            weights = [layer.get_base_layer().weight for layer in self.layers]
            if len(self._saved) != len(weights):
                self._saved = [w.detach().clone() for w in weights]
            else:  # reuse the copies' memory: a server may fold and unfold many times
                for saved, w in zip(self._saved, weights):
                    saved.copy_(w)
            self.model.merge_adapter(adapter_names=[adapter])
        for parent, name, layer in self.slots:
            setattr(parent, name, layer.get_base_layer())
        self.adapter = adapter

    def unfold(self) -> None:
        if self.adapter is None:
            return
        for parent, name, layer in self.slots:
            setattr(parent, name, layer)
        with torch.no_grad():
            self.model.unmerge_adapter()
            for saved, layer in zip(self._saved, self.layers):
                layer.get_base_layer().weight.copy_(saved)
        self.adapter = None


@contextlib.contextmanager
def merged(model):
    """Inside: the active adapter folded into the weights. Outside: the weights bit-for-bit those from before.
    Models without LoRA layers, adapters switched off (the base model), or already merged pass through."""
    folded = Folded(model)
    if not folded.slots or any(m.disable_adapters or m.merged for m in folded.layers):
        yield model
        return
    active = model.active_adapter
    folded.fold(active if isinstance(active, str) else active[0])
    try:
        yield model
    finally:
        folded.unfold()
