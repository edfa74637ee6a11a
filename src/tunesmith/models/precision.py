"""Precision: the dtype a run's names stand for, autocast for training, and 4-/8-bit loading (QLoRA).

The rule (docs/training.md, "Precision and quantization"): trainable weights are always fp32, so AdamW's
states are fp32 and small updates are not rounded away; the forward runs under autocast in the chosen dtype.
LoRA loads the frozen base in that dtype; full fine-tuning keeps every weight fp32.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import TunesmithError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_name(name: str) -> str:
    """`name` made concrete: "auto" is bf16 on a CUDA GPU that supports it, else fp32.

    Never bf16 by default on CPU: without native bf16 its matmuls run 10-20x slower than fp32 there
    (../shared/notes/cpu-performance.md). bf16 on CPU is allowed when asked for: it is how the tests check it.
    """
    if name == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if name not in DTYPES:
        raise TunesmithError(f"unknown dtype '{name}' (known: auto, {', '.join(DTYPES)})")
    if name == "fp16" and not torch.cuda.is_available():
        raise TunesmithError("dtype fp16 needs a CUDA GPU (a CPU has no fast fp16 matmul); use fp32 or bf16")
    return name


def resolve_dtype(name: str) -> torch.dtype:
    """A dtype name ("auto", "fp32", "bf16", "fp16") -> the torch dtype; fp16 without CUDA is refused."""
    return DTYPES[dtype_name(name)]


def check_quantize(quantize: str | None) -> None:
    """Refuse `quantize` where bitsandbytes cannot run, before any data or model is read."""
    if quantize is None:
        return
    if not torch.cuda.is_available():  # first: installing bitsandbytes would not help without a GPU
        raise TunesmithError(f"--quantize {quantize}: 4-bit/8-bit quantization needs a CUDA GPU, and none is visible")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TunesmithError("--quantize needs bitsandbytes: pip install 'tunesmith[qlora]'") from None


def quantization_config(quantize: str | None, dtype: torch.dtype):
    """transformers' BitsAndBytesConfig: 4bit is QLoRA's NF4 with double quantization, computing in `dtype`;
    8bit is LLM.int8(). None when `quantize` is unset."""
    if quantize is None:
        return None
    check_quantize(quantize)
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
    )


def is_quantized(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def trainable_to_fp32(model) -> None:
    """Cast every trainable parameter to fp32: the optimizer's states follow the parameters' dtype."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()


class Mixed:
    """What a forward in bf16/fp16 needs in training: autocast, and for fp16 loss scaling (its narrow range
    flushes small gradients to zero otherwise). In fp32 every method is a no-op."""

    def __init__(self, dtype: torch.dtype, device_type: str):
        self.dtype, self.device_type = dtype, device_type
        self.scaler = torch.amp.GradScaler(device_type) if dtype == torch.float16 else None

    def autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale(self, loss):
        return loss if self.scaler is None else self.scaler.scale(loss)

    def unscale(self, optimizer) -> None:
        """Before clipping: the gradients back at their true size."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer, skip: bool = False) -> None:
        """optimizer.step(), unless `skip`; under fp16 the scaler also skips a step whose gradients overflowed,
        and adjusts its scale."""
        if self.scaler is None:
            if not skip:
                optimizer.step()
            return
        if not skip:
            self.scaler.step(optimizer)
        self.scaler.update()
