"""AdamW step time for SmolLM2-135M-sized parameters: `python -m bench.optimizer` (docs/speed.md, "Fused AdamW")."""

from __future__ import annotations

import statistics
import time

import torch

# SmolLM2-135M's shapes: tied embedding, then per layer q/o (576x576), k/v (192x576), gate/up/down (1536x576)
SHAPES = [(49152, 576)] + [(576, 576)] * 60 + [(192, 576)] * 60 + [(1536, 576)] * 90


def step_seconds(reps: int = 5, **kind) -> float:
    params = [torch.nn.Parameter(torch.randn(*s)) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-4, **kind)
    opt.step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


if __name__ == "__main__":
    n = sum(a * b for a, b in SHAPES)
    for name, kind in [("foreach (PyTorch default)", {"foreach": True}), ("fused (tunesmith)", {"fused": True})]:
        print(f"AdamW {name}: {step_seconds(**kind):.3f} s per step, {n / 1e6:.1f}M parameters")
