"""Load tokenizers and models from whatever `resolve_model` returned, with one clear error offline."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import TunesmithError
from .registry import resolve_model


def _hub_error(name, err) -> TunesmithError:
    return TunesmithError(
        f"cannot load '{name}' ({type(err).__name__}): no network or no such hub model; "
        "download it elsewhere and pass its local folder, e.g. --model ./my-model"
    )


def load_tokenizer(name: str, trust_remote_code: bool = False, chat: bool = True):
    """`chat`: the task renders conversations, so it needs an EOS and a chat template."""
    from transformers import AutoTokenizer

    from ..data.tokenize import CHATML

    src = resolve_model(name)
    try:
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code)
    except OSError as e:
        if isinstance(src, Path):
            raise TunesmithError(f"{src}: cannot load tokenizer ({e})") from None
        raise _hub_error(name, e) from None
    if not getattr(tok, "is_fast", False):
        raise TunesmithError(f"{name}: a fast (tokenizers-based) tokenizer is required")
    if tok.pad_token_id is None:
        if tok.eos_token_id is None:
            raise TunesmithError(f"{name}: tokenizer has neither a pad nor an EOS token to pad batches with")
        tok.pad_token = tok.eos_token
    if not chat:
        return tok
    if tok.eos_token_id is None:
        raise TunesmithError(f"{name}: tokenizer has no EOS token; the model could never learn to stop")
    if not tok.chat_template:
        print(f"note: {name} has no chat template; using ChatML", file=sys.stderr)
        tok.chat_template = CHATML
    return tok


SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def check_weights(src, allow_pickle: bool = False) -> None:
    """Refuse a local model folder whose weights exist only as a pickle, before anything opens them.

    Unpickling can run arbitrary code; safetensors cannot. With allow_pickle the .bin is loaded by
    torch.load(weights_only=True), which unpickles tensors and plain containers only.
    """
    if allow_pickle or not isinstance(src, Path) or any((src / f).is_file() for f in SAFE_WEIGHTS):
        return
    pickled = next((f for f in PICKLE_WEIGHTS if (src / f).is_file()), None)
    if pickled:
        raise TunesmithError(
            f"{src}: weights are a pickle ({pickled}), which can run code when loaded; convert "
            "them to safetensors, or pass --allow-pickle (allow_pickle: true) to load them "
            "with torch.load(weights_only=True)"
        )


def load_pretrained(
    auto_class: str,
    name,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    dtype: str = "fp32",
    quantize: str | None = None,
    attention_dropout: float | None = None,
    **config_kw,
):
    """`auto_class` (e.g. "AutoModelForSequenceClassification") from an alias, folder or hub id, its weights in
    `dtype` ("auto" | "fp32" | "bf16" | "fp16"), or in 4/8 bits with `quantize` (bitsandbytes, CUDA only).

    Weights come from safetensors only, unless `allow_pickle` (then a .bin is read with weights_only=True).
    `attention_dropout`: the model is built with that dropout on its attention weights (None: its own); its
    config keeps the original value, so an exported model trains as its authors set it.
    """
    import transformers

    from .precision import quantization_config, resolve_dtype

    src = resolve_model(name) if isinstance(name, str) else name
    check_weights(src, allow_pickle)
    torch_dtype = resolve_dtype(dtype)
    quant = quantization_config(quantize, torch_dtype)
    if quant is not None:
        config_kw["quantization_config"] = quant  # transformers places a quantized model on the current GPU
    cls = getattr(transformers, auto_class)
    original = _attention_dropout(src, trust_remote_code, attention_dropout, config_kw)
    # use_safetensors=True: transformers never falls back to a .bin; None: safetensors first, then .bin.
    safety = {"use_safetensors": None if allow_pickle else True, "weights_only": True}
    try:
        model = cls.from_pretrained(src, dtype=torch_dtype, trust_remote_code=trust_remote_code, **safety, **config_kw)
    except OSError as e:
        if isinstance(src, Path):
            raise TunesmithError(f"{src}: cannot load model ({e})") from None
        if not allow_pickle and "cannot be loaded with `safetensors`" in str(e):
            raise TunesmithError(
                f"{name}: the hub model has no safetensors weights; pass --allow-pickle "
                "(allow_pickle: true) to load its .bin with torch.load(weights_only=True)"
            ) from None
        raise _hub_error(name, e) from None
    except ValueError as e:  # e.g. an architecture with no such head
        raise TunesmithError(f"{name}: cannot load as {auto_class.removeprefix('AutoModelFor')} ({e})") from None
    config = (model[0] if isinstance(model, tuple) else model).config
    for key, value in original.items():
        setattr(config, key, value)
    return model


ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")


def _attention_dropout(src, trust_remote_code, p, config_kw) -> dict:
    """Put `p` into config_kw under whichever attention-dropout keys the model's config has; returns the
    config's original values of those keys."""
    if p is None:
        return {}
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(src, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):  # loading the model itself will report the problem
        return {}
    original = {k: getattr(config, k) for k in ATTENTION_DROPOUT_KEYS if isinstance(getattr(config, k, None), float)}
    config_kw.update({k: p for k in original if k not in config_kw})
    return original


def load_causal_lm(name, **settings):
    """`load_pretrained("AutoModelForCausalLM", name, **settings)`."""
    return load_pretrained("AutoModelForCausalLM", name, **settings)
