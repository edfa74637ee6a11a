"""Our decode loop for many prompts: continuous batching over one left-padded KV cache.

Why not HF `generate`: a batch of `generate` runs until its longest answer ends, so rows that finished keep
costing a forward at every step, and the next batch waits for the slowest row. Here a finished row leaves the
batch at once and waiting prompts take its place (prefilled together), so each step computes only live rows.
Greedy picks the same tokens as HF's greedy on the same weights (tests/test_decode.py); sampling draws from
one generator per prompt, seeded by its index, so a seeded answer does not depend on what it was batched with.

The serve engine (serve/engine.py) shares the cache operations and `pick`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F


def cache_keyword(model) -> str:
    """The forward() keyword for the KV cache ("past_key_values"; some models call it "cache")."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@functools.cache
def _roomy_layer():
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A DynamicLayer whose keys/values are views into a buffer with room to grow, so a decode step
        writes its one new position in place; DynamicLayer copies the whole cache (torch.cat) at every step,
        which cost about 20% of a step at 32 rows x 300 positions for SmolLM2 here. Code that sets
        keys/values to other tensors (joining, cutting rows) is fine: the next update copies them in."""

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            have = self.keys.shape[-2] if self.keys.numel() else 0
            end = have + key_states.shape[-2]
            kbuf = getattr(self, "_kbuf", None)
            if (
                kbuf is None
                or kbuf.shape[:2] != key_states.shape[:2]
                or end > kbuf.shape[-2]
                or (have and self.keys.data_ptr() != kbuf.data_ptr())
            ):
                shape = (*key_states.shape[:2], max(64, 2 * end), key_states.shape[-1])
                self._kbuf, self._vbuf = key_states.new_empty(shape), value_states.new_empty(shape)
                if have:
                    self._kbuf[..., :have, :], self._vbuf[..., :have, :] = self.keys, self.values
            self._kbuf[..., have:end, :] = key_states
            self._vbuf[..., have:end, :] = value_states
            self.keys, self.values = self._kbuf[..., :end, :], self._vbuf[..., :end, :]
            return self.keys, self.values

    return RoomyLayer


def plain_cache(model):
    """A new KV cache whose layers are all plain (full-attention) ones, growing in place, else None: only
    those can be padded, joined and cut row by row (a sliding-window layer keeps a rolling buffer)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a model whose config DynamicCache cannot read: let HF generate handle it
        return None
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    roomy = _roomy_layer()
    cache.layers = [roomy() for _ in cache.layers]
    return cache


def join_caches(parts: list[tuple[object, torch.Tensor]]) -> tuple[object, torch.Tensor]:
    """[(cache, mask)] -> one cache and mask, every part left-padded to the widest (padding stays masked)."""
    if len(parts) == 1:
        return parts[0]
    width = max(m.shape[1] for _, m in parts)
    first = parts[0][0]
    for i, layer in enumerate(first.layers):
        for attr in ("keys", "values"):
            setattr(
                layer,
                attr,
                torch.cat([F.pad(getattr(c.layers[i], attr), (0, 0, width - m.shape[1], 0)) for c, m in parts]),
            )
    return first, torch.cat([F.pad(m, (width - m.shape[1], 0)) for _, m in parts])


def keep_rows(cache, mask: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Keep only rows `keep` of the cache (in place) and of the mask (returned); leading columns that no
    kept row uses are cut, so a long prompt that finished stops costing attention."""
    idx = torch.tensor(keep, dtype=torch.long, device=mask.device)
    cache.batch_select_indices(idx)
    mask = mask[idx]
    seen = mask.any(0)
    first = int(seen.to(torch.int8).argmax()) if bool(seen.any()) else 0
    if first:
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]
        mask = mask[:, first:]
    return mask


def _draw(weights: torch.Tensor, gen: torch.Generator) -> int:
    """One index with probability proportional to `weights`, by inverse CDF: one uniform draw and a binary
    search, several times cheaper than torch.multinomial over a 49k vocabulary."""
    cdf = weights.double().cumsum(0)
    u = torch.rand(1, generator=gen, dtype=torch.float64) * cdf[-1]
    return min(int(torch.searchsorted(cdf, u, right=True)), len(cdf) - 1)


def pick(logits: torch.Tensor, samplers: list) -> list[int]:
    """Next tokens: argmax for the whole batch at once; rows whose sampler is (temperature, top_p, generator)
    are drawn one by one, each from its own generator."""
    out = logits.argmax(-1).tolist()
    for i, s in enumerate(samplers):
        if s is None:
            continue
        temperature, top_p, gen = s
        probs = torch.softmax(logits[i].float() / temperature, -1)
        if top_p < 1.0:  # nucleus: the smallest set of top tokens whose mass reaches top_p
            p, order = probs.sort(descending=True)
            p = p * ((p.cumsum(0) - p) < top_p)
            out[i] = int(order[_draw(p, gen)])
        else:
            out[i] = _draw(probs, gen)
    return out


def sampler(temperature: float, top_p: float, seed: int | None, index: int):
    """None for greedy; else (temperature, top_p, a generator of its own), reproducible when seeded."""
    if not temperature or temperature <= 0:
        return None
    gen = torch.Generator()
    gen.manual_seed(
        int.from_bytes(os.urandom(8), "little") >> 1 if seed is None else (seed * 1_000_003 + index) % (1 << 63)
    )
    return (temperature, top_p, gen)


def _forward(model, key, ids, mask, pos, cache) -> torch.Tensor:
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1, **{key: cache})
    return out.logits[:, -1, :].float()


@torch.inference_mode()
def decode(
    model,
    prompts: list[list[int]],
    *,
    max_new_tokens: int | list[int],
    stop_ids,
    batch_size: int = 32,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = 0,
    prefill_tokens: int = 2048,
) -> Iterator[tuple[int, int | None]]:
    """Yield (prompt index, token) for every new token and (prompt index, None) when that answer ends (at a
    stop token, which is not yielded, or at max_new_tokens: one for all, or one per prompt, so answers of
    different kinds share one decode pass, as an evaluation's). At most `batch_size` rows step together;
    prompts are admitted in the order given, up to `prefill_tokens` prompt tokens per prefill."""
    key, device = cache_keyword(model), next(model.parameters()).device
    stop = set(stop_ids)
    waiting = list(range(len(prompts)))[::-1]  # pop() from the end takes them in order
    live: list[int] = []  # prompt index per row
    cache, mask, pos, nxt, count = None, None, None, [], {}
    samplers: dict[int, object] = {}
    while waiting or live:
        if waiting and len(live) < batch_size:
            group, tokens = [], 0
            while waiting and len(live) + len(group) < batch_size:
                n = len(prompts[waiting[-1]])
                if group and tokens + n > prefill_tokens:
                    break
                group.append(waiting.pop())
                tokens += n
            width = max(len(prompts[i]) for i in group)
            ids = torch.full((len(group), width), 0, dtype=torch.long)
            gmask = torch.zeros_like(ids)
            for r, i in enumerate(group):  # left padding keeps every prompt's end next to its answer
                ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i], dtype=torch.long)
                gmask[r, width - len(prompts[i]) :] = 1
            gpos = (gmask.cumsum(-1) - 1).clamp(min=0)
            gcache = plain_cache(model)
            ids, gmask, gpos = ids.to(device), gmask.to(device), gpos.to(device)
            logits = _forward(model, key, ids, gmask, gpos, gcache)
            for i in group:
                samplers[i] = sampler(temperature, top_p, seed, i)
                count[i] = 0
            first = pick(logits, [samplers[i] for i in group])
            fresh = len(live)  # only the new rows have a new token this turn
            if cache is None:
                cache, mask, pos, live, nxt = gcache, gmask, gmask.sum(-1), list(group), first
            else:
                cache, mask = join_caches([(cache, mask), (gcache, gmask)])
                pos, live, nxt = torch.cat([pos, gmask.sum(-1)]), live + group, nxt + first
        else:
            mask = torch.cat([mask, torch.ones(len(live), 1, dtype=mask.dtype, device=mask.device)], 1)
            logits = _forward(model, key, torch.tensor(nxt, device=device).unsqueeze(1), mask, pos.unsqueeze(1), cache)
            pos = pos + 1
            nxt = pick(logits, [samplers[i] for i in live])
            fresh = 0
        keep = list(range(fresh))
        for r in range(fresh, len(live)):
            i, t = live[r], nxt[r]
            if t in stop:
                yield i, None
                continue
            count[i] += 1
            yield i, t
            if count[i] >= (max_new_tokens[i] if isinstance(max_new_tokens, list) else max_new_tokens):
                yield i, None
            else:
                keep.append(r)
        if len(keep) < len(live):
            if keep:
                mask = keep_rows(cache, mask, keep)
                pos = pos[torch.tensor(keep, dtype=torch.long, device=pos.device)]
                live, nxt = [live[r] for r in keep], [nxt[r] for r in keep]
            else:
                cache, mask, pos, live, nxt = None, None, None, [], []


def supported(model) -> bool:
    """Whether `decode` can run this model: a plain KV cache and a forward that takes logits_to_keep."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with contextlib.suppress(TypeError, ValueError):
        if "logits_to_keep" not in inspect.signature(type(base).forward).parameters:
            return False
    return getattr(base.config, "is_encoder_decoder", False) is False and plain_cache(model) is not None
