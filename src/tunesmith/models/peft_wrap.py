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
    from .precision import is_quantized, trainable_to_fp32

    if method == "full":
        model.requires_grad_(True)
        trainable_to_fp32(model)
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if is_quantized(model):  # QLoRA: norms and embeddings to fp32, frozen; gradient checkpointing is the run's choice
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)

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
    model = get_peft_model(model, cfg)
    # The adapter (and a task head trained in full) in fp32 over a bf16/fp16 base: AdamW's states follow
    # the weights' dtype, and updates far below a bf16 weight's resolution would round to nothing.
    trainable_to_fp32(model)
    return model


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
