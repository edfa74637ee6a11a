"""NEFTune (Jain et al., 2023): uniform noise on the input embeddings while training, none in eval or generation.

Same rule as TRL's `neftune_noise_alpha` / transformers' NEFTune hook: noise ~ U(-m, m) with
m = alpha / sqrt(L * d), d the embedding width and L the sequence length. With padding-free batches a
whole batch is one packed row, so L here is the mean example length in the batch (the padded layout's L
would be the longest example's), which keeps the per-example noise scale the paper intends.
"""

from __future__ import annotations

import torch


class NEFTune:
    def __init__(self, model, alpha: float):
        self.alpha, self.length = alpha, None
        self.handle = model.get_input_embeddings().register_forward_hook(self._hook)

    def set_batch(self, batch: dict) -> None:
        """Per-example length of the coming batch (packed: from the segment boundaries)."""
        cu = batch.get("cu_seq_lens_q")
        if cu is not None:
            self.length = float(cu[-1]) / max(len(cu) - 1, 1)
        elif batch.get("attention_mask") is not None:
            self.length = float(batch["attention_mask"].sum(-1).float().mean())
        else:
            self.length = None

    def _hook(self, module, args, output):
        if not module.training:
            return output
        length = self.length or output.size(-2)
        mag = self.alpha / (length * output.size(-1)) ** 0.5
        return output + torch.zeros_like(output).uniform_(-mag, mag)

    def remove(self):
        self.handle.remove()
