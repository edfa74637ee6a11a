"""Wrap a model for the chosen fine-tuning method."""

from __future__ import annotations

from torch import nn


def lora_targets(model, head: tuple[str, ...]) -> list[str]:
    """Every linear layer except the task head and the output embedding, by full name.

    PEFT's own "all-linear" would also put LoRA on a token-classification head that must instead be
    trained whole (modules_to_save), and PEFT refuses both at once.
    """
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or mod is out_emb:
            continue
        if any(name == h or name.endswith("." + h) or f".{h}." in f".{name}" for h in head):
            continue
        names.append(name)
    return names


def wrap(model, method: str, lora_cfg, task_type: str | None = "CAUSAL_LM", head: tuple[str, ...] = ()):
    """`head`: module names trained in full even under LoRA (a new classifier has nothing to adapt)."""
    if method == "full":
        model.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    targets = lora_cfg.target_modules
    if targets == "all-linear" and head:
        targets = lora_targets(model, head)
    variant = getattr(lora_cfg, "variant", "lora")
    cfg = LoraConfig(
        r=lora_cfg.r,
        lora_alpha=lora_cfg.alpha,
        lora_dropout=lora_cfg.dropout,
        target_modules=targets,
        task_type=task_type,
        modules_to_save=list(head) or None,
        use_rslora=variant == "rslora",
        use_dora=variant == "dora",
    )
    return get_peft_model(model, cfg)


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
