"""Padding-free attention: a batch's examples concatenated into one row, each attending only to itself.

Without varlen kernels (CPU), a block-diagonal mask over the packed row computes every cross-example score
and throws it away. Instead, run SDPA once per example segment (the boundaries ride along as
`cu_seq_lens_q`, the name flash-attention's varlen path uses), so the work is exactly that of unpadded
examples. On CUDA with flash-attn installed, its varlen kernel takes the same batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEGMENTS = "tunesmith_segments"
_bounds: list = [None, None]  # (tensor, its values): every layer gets the same tensor; read it to host once


def segment_attention(
    module, query, key, value, attention_mask, dropout=0.0, scaling=None, cu_seq_lens_q=None, **kwargs
):
    """query (1, heads, tokens, dim); key/value may have fewer (grouped) heads."""
    if cu_seq_lens_q is None:  # an ordinary padded batch (generation, eval): plain SDPA with its mask
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if _bounds[0] is not cu_seq_lens_q:
        _bounds[:] = [cu_seq_lens_q, cu_seq_lens_q.tolist()]
    bounds = _bounds[1]
    gqa = query.shape[1] != key.shape[1]
    causal = getattr(module, "is_causal", True)
    out = torch.cat(
        [
            F.scaled_dot_product_attention(
                query[:, :, a:b],
                key[:, :, a:b],
                value[:, :, a:b],
                dropout_p=dropout if module.training else 0.0,
                scale=scaling,
                is_causal=causal,
                enable_gqa=gqa,
            )
            for a, b in zip(bounds[:-1], bounds[1:])
        ],
        dim=2,
    )
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(SEGMENTS, segment_attention)
    AttentionMaskInterface.register(SEGMENTS, sdpa_mask)  # padded batches still get their usual mask


def use_padding_free(model) -> str | None:
    """Switch `model` to per-example attention over packed rows; returns the implementation, or None if the
    architecture cannot take custom attention (then batches stay padded)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "_supports_attention_backend", False):
        return None
    name = SEGMENTS
    if torch.cuda.is_available() and next(base.parameters()).is_cuda:
        try:
            import flash_attn  # noqa: F401

            name = "flash_attention_2"
        except ImportError:
            pass
    if name == SEGMENTS:
        _register()
    base.set_attn_implementation(name)
    return name
