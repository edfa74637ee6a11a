"""Setup, then train (torchtune's recipe shape): the model a run trains, built in one place.

`train/loop.py` and the time estimate of `tunesmith check` (check/estimate.py) both call `setup_model`, so
the steps the estimate times are the steps training takes: same wrapping, precision, loss, batches, speed
switches and optimizer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ..data.batch import collate_packed
from ..models.attention import use_padding_free
from ..models.peft_wrap import count_params, wrap
from ..models.precision import DTYPES, Mixed, dtype_name
from ..tasks.base import task_lora
from .perf import speed_setup


@dataclass
class Setup:
    model: torch.nn.Module  # the (PEFT-wrapped) model
    loss_mod: torch.nn.Module  # batch -> (summed loss, count, correct)
    collate: object  # encoded items -> a batch
    params: list  # the trainable parameters
    optimizer: torch.optim.Optimizer
    mixed: Mixed  # autocast (and fp16 loss scaling) for cfg.dtype: run each forward in mixed.autocast()
    neftune: object = None  # models.neftune.NEFTune when cfg.neftune_alpha is set
    trainable: int = 0  # parameter counts, for the log and the summary
    total: int = 0


def setup_model(cfg, task, tokenizer, meta: dict, log, lr: float | None = None, device_type: str = "cpu") -> Setup:
    """Load the task's model, wrap it for `cfg.method`, and build its loss, collate and optimizer.

    `device_type`: where the steps will run ("cpu", "cuda"), for autocast."""
    name = dtype_name(cfg.dtype)
    # Full fine-tuning keeps fp32 master weights and gets its speed from autocast alone; LoRA's frozen base
    # is loaded in the run's dtype (half the memory) and its adapter cast to fp32 by `wrap`.
    load_cfg = cfg if cfg.method == "lora" else cfg.model_copy(update={"dtype": "fp32"})
    lora = task_lora(cfg.lora, task)  # the task's rank and scale where the run gives none (a no-op after train)
    model = wrap(task.load_model(load_cfg, tokenizer, meta), cfg.method, lora, task.PEFT_TASK, task.HEAD)
    trainable, total = count_params(model)
    quant = f", base in {cfg.quantize}" if cfg.quantize else ""
    log(
        f"model: {cfg.model}, method {cfg.method}: {trainable:,} trainable of {total:,} parameters; dtype {name}{quant}"
    )
    loss_mod = task.loss_module(model, meta)
    collate = functools.partial(task.collate_batch, tokenizer=tokenizer)
    if cfg.padding_free and task.PADDING_FREE and use_padding_free(model):
        collate = collate_packed
    speed_setup(model, cfg, log)
    neftune = None
    if cfg.neftune_alpha:
        from ..models.neftune import NEFTune

        neftune = NEFTune(model, cfg.neftune_alpha)
    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel over all parameters; 0.14 s against 0.89 s (foreach) per step for 135M parameters here
    optimizer = torch.optim.AdamW(params, lr=cfg.lr if lr is None else lr, weight_decay=cfg.weight_decay, fused=True)
    return Setup(
        model, loss_mod, collate, params, optimizer, Mixed(DTYPES[name], device_type), neftune, trainable, total
    )
