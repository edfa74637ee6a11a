"""Forward passes over many encoded items, batched by length, results returned in the input order."""

from __future__ import annotations

import torch


@torch.no_grad()
def per_item(model, items, collate_fn, fn, batch_size: int = 64, hidden: bool = False) -> list:
    """fn(logits of one item, trimmed to its length) -> anything; one result per item, input order kept.
    `hidden`: the last hidden layer's states instead of the logits."""
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    out = [None] * len(items)
    device = next(model.parameters()).device
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = collate_fn([items[i] for i in idx])
        batch.pop("labels", None)
        res = model(**{k: v.to(device) for k, v in batch.items()}, **({"output_hidden_states": True} if hidden else {}))
        logits = (res.hidden_states[-1] if hidden else res.logits).float()
        for row, i in enumerate(idx):
            out[i] = fn(logits[row] if logits.dim() == 2 else logits[row, : len(items[i].input_ids)])
    return out
