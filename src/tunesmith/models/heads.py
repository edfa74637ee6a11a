"""Loss modules: the model's forward plus its loss, as one nn.Module so accelerate/DDP can wrap it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.tokenize import IGNORE


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `h @ weight.T` against `y`, chunk by chunk, gradients taken in the same pass.

    Each chunk's logits die with the chunk (they are the bulk of a step's memory otherwise), and backward
    only scales the stored gradients, so nothing is computed twice. Returns (loss sum, correct argmax).
    """

    @staticmethod
    def forward(ctx, h, weight, y, chunk):
        loss = torch.zeros((), dtype=torch.float32, device=h.device)
        correct = torch.zeros((), dtype=torch.long, device=h.device)
        grad_h = torch.empty_like(h) if h.requires_grad else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if weight.requires_grad else None
        for s in range(0, y.numel(), chunk):
            hs, ys = h[s : s + chunk], y[s : s + chunk]
            logits = (hs @ weight.t()).float()
            lse = torch.logsumexp(logits, -1)
            loss += (lse - logits.gather(1, ys[:, None]).squeeze(1)).sum()
            correct += (logits.argmax(-1) == ys).sum()
            if grad_h is None and grad_w is None:
                continue
            p = logits.sub_(lse[:, None]).exp_()  # softmax in place; minus one-hot = d loss / d logits
            p[torch.arange(ys.numel(), device=ys.device), ys] -= 1
            if grad_h is not None:
                grad_h[s : s + chunk] = p.to(h.dtype) @ weight
            if grad_w is not None:
                grad_w.addmm_(p.t(), hs.float())
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _):
        grad_h, grad_w = ctx.saved_tensors
        return (
            None if grad_h is None else grad_h * grad_loss.to(grad_h.dtype),
            None if grad_w is None else (grad_w * grad_loss).to(ctx.weight_dtype),
            None,
            None,
        )


class CausalLMLoss(nn.Module):
    """Next-token cross-entropy computed only where a label exists.

    With assistant-only loss many positions carry no label, so running the 49,152-wide LM head there
    is waste: take the decoder's hidden states, keep the labelled positions, and project only those,
    in chunks, with the gradient taken in the same pass (no full-vocabulary logits kept for backward).
    Padded batches carry an attention mask; packed ones (data.batch.collate_packed) carry position ids
    and segment boundaries instead, passed through to the attention.
    Returns (summed loss, labelled tokens, correct argmax predictions).
    """

    def __init__(self, model, chunk: int = 1024):
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(self, input_ids, labels, attention_mask=None, **packing):
        lm = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **packing)[0]
        target = labels[:, 1:]
        keep = target != IGNORE
        h = hidden[:, :-1][keep]
        y = target[keep]
        head = lm.get_output_embeddings()
        if isinstance(head, nn.Linear) and head.bias is None:
            loss, correct = _LinearCrossEntropy.apply(h, head.weight, y, self.chunk)
            return loss, y.numel(), correct
        loss = hidden.new_zeros(())  # a head with a bias or an adapter on it: plain chunked path
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        for s in range(0, y.numel(), self.chunk):
            logits = head(h[s : s + self.chunk]).float()
            loss = loss + F.cross_entropy(logits, y[s : s + self.chunk], reduction="sum")
            correct += (logits.argmax(-1) == y[s : s + self.chunk]).sum()
        return loss, y.numel(), correct
