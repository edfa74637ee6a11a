"""Split, bucket by length and pad: the last steps before tensors reach the model."""

from __future__ import annotations

import random

import torch

from .tokenize import IGNORE


def holdout_split(items: list, fraction: float, max_rows: int, seed: int) -> tuple[list, list]:
    """A deterministic validation slice: same data and seed give the same split."""
    if len(items) < 2:
        return items, []
    n_val = max(1, min(max_rows, round(len(items) * fraction)))
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:n_val])
    return ([x for i, x in enumerate(items) if i not in val_idx], [x for i, x in enumerate(items) if i in val_idx])


class LengthBucketSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar length: sort inside windows of 50 batches, then shuffle batches.

    Padding waste falls to a few percent while each epoch still sees a new order.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, shuffle: bool = True, window: int = 50):
        self.lengths, self.batch_size, self.seed, self.shuffle, self.window = lengths, batch_size, seed, shuffle, window
        self.epoch = 0
        self.skip = 0  # batches of the next epoch already trained on before a resume; skipped once, uncollated

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __iter__(self):
        idx = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(idx)
        span = self.batch_size * self.window
        batches = []
        for w in range(0, len(idx), span):
            chunk = sorted(idx[w : w + span], key=lambda i: self.lengths[i])
            batches += [chunk[b : b + self.batch_size] for b in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        self.epoch += 1
        batches, self.skip = batches[self.skip :], 0
        return iter(batches)

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


def ordered_loader(items, batch_size: int, collate_fn):
    """Batches of similar length in a fixed order: for evaluation, where the order does not matter."""
    sampler = LengthBucketSampler([len(x.input_ids) for x in items], batch_size, 0, shuffle=False)
    return torch.utils.data.DataLoader(items, batch_sampler=sampler, collate_fn=collate_fn)


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad lists of ids into one (rows, longest) tensor."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def collate(items, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad; padding is marked by the attention mask and IGNORE labels, never by token id
    (SmolLM2's pad token is its end-of-turn token, which must stay a label)."""
    return {
        "input_ids": pad([x.input_ids for x in items], pad_id),
        "attention_mask": pad([[1] * len(x.input_ids) for x in items], 0),
        "labels": pad([x.labels for x in items], IGNORE),
    }


def collate_packed(items) -> dict[str, torch.Tensor]:
    """Padding-free: concatenate the batch into one row. Positions restart at each example and the
    segment boundaries go to the attention (models/attention.py), so each example sees only itself; the
    first label of each example is dropped because, shifted, it would be predicted from the previous one."""
    ids, labels, pos, bounds = [], [], [], [0]
    for x in items:
        n = len(x.input_ids)
        ids += x.input_ids
        labels += [IGNORE] + list(x.labels[1:])
        pos += range(n)
        bounds.append(bounds[-1] + n)
    longest = max(b - a for a, b in zip(bounds[:-1], bounds[1:]))
    cu = torch.tensor(bounds, dtype=torch.int32)
    return {
        "input_ids": torch.tensor([ids]),
        "labels": torch.tensor([labels]),
        "position_ids": torch.tensor([pos]),
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": longest,
        "max_length_k": longest,
    }


def real_tokens(batch: dict) -> int:
    """Non-pad tokens in a batch, padded or packed."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()
