"""Wrap a model for the chosen fine-tuning method."""
from __future__ import annotations


def wrap(model, method: str, lora_cfg, task_type: str = "CAUSAL_LM"):
    if method == "full":
        model.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                     target_modules=lora_cfg.target_modules, task_type=task_type)
    return get_peft_model(model, cfg)


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
