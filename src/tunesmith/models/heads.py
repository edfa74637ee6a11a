"""Loss modules: the model's forward plus its loss, as one nn.Module so accelerate/DDP can wrap it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.tokenize import IGNORE


class CausalLMLoss(nn.Module):
    """Next-token cross-entropy computed only where a label exists.

    With assistant-only loss most positions carry no label, so running the 49,152-wide LM head there
    is waste: take the decoder's hidden states, keep the labelled positions, and project only those,
    in chunks so full-vocabulary logits are never held for the whole batch.
    Returns (summed loss, labelled tokens, correct argmax predictions).
    """

    def __init__(self, model, chunk: int = 2048):
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(self, input_ids, attention_mask, labels):
        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]
        target = labels[:, 1:]
        keep = target != IGNORE
        h = hidden[:, :-1][keep]
        y = target[keep]
        head = lm.get_output_embeddings()
        loss = hidden.new_zeros(())
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        for s in range(0, y.numel(), self.chunk):
            logits = head(h[s:s + self.chunk]).float()
            loss = loss + F.cross_entropy(logits, y[s:s + self.chunk], reduction="sum")
            correct += (logits.argmax(-1) == y[s:s + self.chunk]).sum()
        return loss, y.numel(), correct
