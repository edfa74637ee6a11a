"""Load tokenizers and models from whatever `resolve_model` returned, with one clear error offline."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import TunesmithError
from .registry import resolve_model


def _hub_error(name, err) -> TunesmithError:
    return TunesmithError(f"cannot load '{name}' ({type(err).__name__}): no network or no such hub model; "
                          "download it elsewhere and pass its local folder, e.g. --model ./my-model")


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


def load_pretrained(auto_class: str, name, trust_remote_code: bool = False, **config_kw):
    """`auto_class` (e.g. "AutoModelForSequenceClassification") from an alias, folder or hub id, in fp32."""
    import torch
    import transformers

    src = resolve_model(name) if isinstance(name, str) else name
    cls = getattr(transformers, auto_class)
    try:
        model = cls.from_pretrained(src, dtype=torch.float32, trust_remote_code=trust_remote_code, **config_kw)
    except OSError as e:
        if isinstance(src, Path):
            raise TunesmithError(f"{src}: cannot load model ({e})") from None
        raise _hub_error(name, e) from None
    except ValueError as e:  # e.g. an architecture with no such head
        raise TunesmithError(f"{name}: cannot load as {auto_class.removeprefix('AutoModelFor')} ({e})") from None
    return model


def load_causal_lm(name, trust_remote_code: bool = False):
    return load_pretrained("AutoModelForCausalLM", name, trust_remote_code)
