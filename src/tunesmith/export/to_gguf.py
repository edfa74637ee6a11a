"""Write a merged Llama-architecture model as one GGUF file, the format llama.cpp and its relatives load.

Named to_gguf.py, not gguf.py: inside this package a module called gguf would shadow the `gguf` library.

What llama.cpp expects, and why each step below exists (its own converter, convert_hf_to_gguf.py, does the same):
- Tensor names follow GGUF's scheme (blk.N.attn_q.weight, ...), taken from the gguf library's name map.
- Q and K projection rows are permuted: HF's rotary embedding rotates the two halves of each head
  (rotate_half), llama.cpp rotates adjacent pairs. transformers' GGUF loader undoes exactly this
  permutation (LlamaTensorProcessor._reverse_permute_weights), so `permute` here is its inverse.
- A tied output projection is omitted: without `output.weight` llama.cpp (and transformers) reuse the
  token embedding.
- The tokenizer travels as metadata (tokens, their types, BPE merges, special ids, chat template),
  because a GGUF file is all a llama.cpp runtime reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TunesmithError

GGUF_TYPES = ("f32", "f16", "q8_0")
Q8_BLOCK = 32  # Q8_0 stores rows in blocks of 32 values with one f16 scale each


def check_supported(run) -> None:
    """Refuse, before any work, what this writer cannot turn into a GGUF llama.cpp would run correctly."""
    from transformers import AutoConfig

    from .hf import base_reference

    if not run.task.CAUSAL:
        raise TunesmithError(
            f"--gguf exports Llama-architecture causal language models only; this is a "
            f"'{run.config.task}' run (export it without --gguf)"
        )
    src = base_reference(run.config.model) if run.is_adapter else run.path
    try:
        cfg = AutoConfig.from_pretrained(src, trust_remote_code=run.config.trust_remote_code)
    except (OSError, ValueError) as e:
        raise TunesmithError(f"--gguf: cannot read the model config of {src} ({type(e).__name__})") from None
    if cfg.model_type != "llama":
        raise TunesmithError(
            f"--gguf exports Llama-architecture causal language models only; this model is "
            f"'{cfg.model_type}' (export it without --gguf)"
        )
    rope = _rope(cfg)
    if rope.get("rope_type", "default") != "default":
        raise TunesmithError(
            f"--gguf: rope scaling '{rope.get('rope_type')}' is not supported yet; only plain rotary embeddings are"
        )
    tokenizer_json(run.tokenizer)  # an unsupported tokenizer is refused now, not after merging


def _rope(cfg) -> dict:
    # transformers 5 keeps rotary settings in `rope_parameters`; older configs in rope_theta / rope_scaling.
    rope = dict(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {})
    rope.setdefault("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    if "type" in rope and "rope_type" not in rope:
        rope["rope_type"] = rope["type"]
    return rope


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """HF's half-split rotary layout -> llama.cpp's interleaved one, per head (the inverse of
    transformers' `_reverse_permute_weights`, which reshapes (heads, dim, 2) and swaps the last two)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def encode_tensor(arr: np.ndarray, kind: str):
    """-> (data, raw_dtype or None). Norms and biases (1-D) stay f32 at every setting, as llama.cpp keeps
    them; q8_0 applies to 2-D weights whose rows split into 32-value blocks, others fall back to f16."""
    import gguf

    if arr.ndim < 2 or kind == "f32":
        return arr.astype(np.float32), None
    if kind == "q8_0" and arr.shape[-1] % Q8_BLOCK == 0:
        qtype = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(arr.astype(np.float32), qtype), qtype
    return arr.astype(np.float16), None


def rounded_copy(model, kind: str):
    """A copy of `model` whose matrices went through `kind`'s GGUF rounding and back (norms stay f32): what a
    GGUF file of that kind holds, in PyTorch. The exact check of an export compares the file against it."""
    import copy

    import gguf
    import torch

    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():  # the tied embedding is one parameter: rounded once, as in the file
            if p.dim() == 2:
                data, raw = encode_tensor(p.detach().numpy(), kind)
                back = gguf.quants.dequantize(data, raw) if raw is not None else data.astype(np.float32)
                p.copy_(torch.from_numpy(np.ascontiguousarray(back)).reshape(p.shape))
    return out


FILE_TYPE = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}


def write_gguf(model, tokenizer, path: Path, kind: str, name: str) -> dict:
    """Write `model` (a merged LlamaForCausalLM) and its tokenizer to `path`; returns {ggml type: count}."""
    import gguf
    import torch

    if kind not in GGUF_TYPES:
        raise TunesmithError(f"--gguf must be one of {', '.join(GGUF_TYPES)}, got '{kind}'")
    cfg = model.config
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    try:
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        writer.add_file_type(int(getattr(gguf.LlamaFileType, FILE_TYPE[kind])))
        if kind == "q8_0":
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_context_length(cfg.max_position_embeddings)
        writer.add_embedding_length(cfg.hidden_size)
        writer.add_block_count(cfg.num_hidden_layers)
        writer.add_feed_forward_length(cfg.intermediate_size)
        writer.add_rope_dimension_count(head_dim)
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_kv)
        writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        writer.add_rope_freq_base(float(_rope(cfg)["rope_theta"]))
        writer.add_vocab_size(cfg.vocab_size)
        if head_dim != cfg.hidden_size // n_head:  # llama.cpp assumes hidden/heads unless told otherwise
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
        add_tokenizer(writer, tokenizer, cfg.vocab_size)

        counts: dict[str, int] = {}
        name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
        state = model.state_dict()
        emb, out = state.get("model.embed_tokens.weight"), state.get("lm_head.weight")
        tied = out is None or (emb is not None and torch.equal(emb, out))
        for hf_name, tensor in state.items():
            if hf_name == "lm_head.weight" and tied:
                continue
            stem, _, suffix = hf_name.rpartition(".")
            gname = name_map.get_name(stem)
            if gname is None:
                raise TunesmithError(f"--gguf: no GGUF name for tensor '{hf_name}' (not a plain Llama model?)")
            arr = tensor.detach().to(torch.float32).cpu().numpy()
            if stem.endswith("self_attn.q_proj"):
                arr = permute(arr, n_head, n_head)
            elif stem.endswith("self_attn.k_proj"):
                arr = permute(arr, n_head, n_kv)
            data, raw = encode_tensor(arr, kind)
            writer.add_tensor(f"{gname}.{suffix}", data, raw_dtype=raw)
            t = raw.name if raw is not None else ("F16" if data.dtype == np.float16 else "F32")
            counts[t] = counts.get(t, 0) + 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return counts


# --- tokenizer metadata ---------------------------------------------------------------------------------

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def pre_tokenizer_name(tj: dict) -> str:
    """llama.cpp's name for how text is split before BPE (`tokenizer.ggml.pre`), read off tokenizer.json.

    llama.cpp reimplements each splitter by name, so an unrecognised one is refused rather than guessed:
    a wrong guess would silently tokenize differently from the model's training."""
    pre = tj.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True) and not steps[0].get("add_prefix_space"):
        return "gpt-2"  # llama.cpp's spelling; it refuses to load a file saying "gpt2" here
    if (
        kinds == ["Digits", "ByteLevel"]
        and steps[0].get("individual_digits")
        and steps[1].get("use_regex", True)
        and not steps[1].get("add_prefix_space")
    ):
        return "smollm"  # SmolLM's original tokenizer.json: digits one by one, then GPT-2's regex
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        if (steps[0].get("pattern") or {}).get("Regex") == _LLAMA3_SPLIT:
            return "llama-bpe"
    raise TunesmithError(
        f"--gguf: this tokenizer's pre-tokenizer ({'+'.join(map(str, kinds)) or 'none'}) is not "
        "one the GGUF export knows (GPT-2 byte-level, SmolLM, Llama 3)"
    )


def tokenizer_json(tokenizer) -> dict:
    """The fast tokenizer's tokenizer.json, if it is one this writer can describe to llama.cpp."""
    import json

    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    model = tj.get("model") or {}
    decoder = tj.get("decoder") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder.get("type") != "ByteLevel":
        raise TunesmithError(
            "--gguf supports byte-level BPE tokenizers (GPT-2 style, as SmolLM2's) only; this "
            f"one is {model.get('type')} with a {decoder.get('type')} decoder"
        )
    if tj.get("normalizer"):
        raise TunesmithError(
            f"--gguf: tokenizer has a normalizer ({tj['normalizer'].get('type')}) that llama.cpp would not apply"
        )
    pre_tokenizer_name(tj)
    return tj


def _looks_special(token: str) -> bool:
    # As llama.cpp's converter: an added token spelled like a control token is one, whatever its flag.
    return token.startswith("<|") and token.endswith("|>")


def add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    """GPT-2-style byte-level BPE as llama.cpp reads it: tokens in id order, spelled as in tokenizer.json
    (byte-level alphabet; added tokens as their text), a type per token, merges "a b", special ids."""
    import gguf

    tj = tokenizer_json(tokenizer)
    model, pre = tj["model"], pre_tokenizer_name(tj)
    tokens: dict[int, str] = {i: t for t, i in model["vocab"].items()}
    types: dict[int, int] = {i: gguf.TokenType.NORMAL for i in tokens}
    for added in tj.get("added_tokens", []):
        i, text = added["id"], added["content"]
        tokens[i] = text
        types[i] = (
            gguf.TokenType.CONTROL if added.get("special") or _looks_special(text) else gguf.TokenType.USER_DEFINED
        )
    if max(tokens) >= vocab_size:
        raise TunesmithError(f"--gguf: tokenizer has ids up to {max(tokens)} but the model only {vocab_size} rows")
    # Rows of the embedding no token uses (vocabularies padded to a round size) get placeholder names.
    token_list = [tokens.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    type_list = [int(types.get(i, gguf.TokenType.UNUSED)) for i in range(vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(token_list)
    writer.add_token_types(type_list)
    writer.add_token_merges(merges)
    for key, tid in (
        ("bos", tokenizer.bos_token_id),
        ("eos", tokenizer.eos_token_id),
        ("unk", tokenizer.unk_token_id),
        ("pad", tokenizer.pad_token_id),
    ):
        if tid is not None:
            getattr(writer, f"add_{key}_token_id")(tid)
    # Whether the tokenizer puts BOS/EOS around plain text, read from what it does, not from a flag.
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(bool(probe) and tokenizer.eos_token_id is not None and probe[-1] == tokenizer.eos_token_id)
    template = tokenizer.chat_template
    if isinstance(template, dict):  # several named templates: llama.cpp reads the default one here
        template = template.get("default") or next(iter(template.values()), None)
    if template:
        writer.add_chat_template(template)


def gguf_file_name(kind: str) -> str:
    return f"model-{kind}.gguf"
