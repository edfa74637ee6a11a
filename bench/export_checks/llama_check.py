"""Load an exported GGUF in llama.cpp (the CPU build inside the llama-cpp-cffi 0.4.42 wheel, through its raw
cffi C API), tokenize chat prompts, compare ids and logits with reference arrays, and generate greedily.

usage: LD_PRELOAD=/tmp/llcffi/libshim.so PYTHONPATH=/tmp/llcffi/deps python llama_check.py GGUF REF.npz
REF.npz: ids_<i> (int32 token ids from the HF tokenizer) and logits_<i> (float32 [n, vocab], merged HF model).
"""
import importlib.util
import json
import sys

import numpy as np

spec = importlib.util.spec_from_file_location(
    "_llama_cpp_cpu", "/tmp/llcffi/site/llama/_llama_cpp_cpu.cpython-311-x86_64-linux-gnu.so")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
lib, ffi = mod.lib, mod.ffi

path, ref_path = sys.argv[1], sys.argv[2]
ref = np.load(ref_path, allow_pickle=False)
prompts = json.loads(str(ref["prompts"]))

lib.llama_backend_init()
mp = lib.llama_model_default_params()
model = lib.llama_model_load_from_file(path.encode(), mp)
assert model != ffi.NULL, "llama.cpp could not load the GGUF"
vocab = lib.llama_model_get_vocab(model)
n_vocab = lib.llama_vocab_n_tokens(vocab)
buf = ffi.new("char[256]")
for key in ("general.architecture", "tokenizer.ggml.pre", "general.file_type"):
    lib.llama_model_meta_val_str(model, key.encode(), buf, 256)
    print(f"meta {key} = {ffi.string(buf).decode()}")


def tokenize(text):
    raw = text.encode()
    out = ffi.new("int32_t[4096]")
    n = lib.llama_tokenize(vocab, raw, len(raw), out, 4096, False, True)
    return [out[i] for i in range(n)]


def piece(tok):
    b = ffi.new("char[64]")
    n = lib.llama_token_to_piece(vocab, tok, b, 64, 0, False)
    return ffi.unpack(b, n).decode("utf-8", "replace")


def context():
    cp = lib.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_threads, cp.n_threads_batch = 1024, 512, 512, 2, 2
    return lib.llama_init_from_model(model, cp)


def decode(ctx, tokens, start, all_logits):
    batch = lib.llama_batch_init(len(tokens), 0, 1)
    batch.n_tokens = len(tokens)
    for i, t in enumerate(tokens):
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, start + i, 1
        batch.seq_id[i][0] = 0
        batch.logits[i] = 1 if (all_logits or i == len(tokens) - 1) else 0
    assert lib.llama_decode(ctx, batch) == 0
    rows = range(len(tokens)) if all_logits else [len(tokens) - 1]
    out = np.stack([np.frombuffer(ffi.buffer(lib.llama_get_logits_ith(ctx, i), 4 * n_vocab), np.float32).copy()
                    for i in rows])
    lib.llama_batch_free(batch)
    return out


if "texts" in ref.files:
    for i, text in enumerate(json.loads(str(ref["texts"]))):
        ids = tokenize(text)
        print(f"text {i}: {len(ids)} tokens, same ids as transformers: {ids == ref[f'tids_{i}'].tolist()}")
worst, agree, total = 0.0, 0, 0
for i, text in enumerate(prompts):
    ids = tokenize(text)
    want = ref[f"ids_{i}"].tolist()
    print(f"prompt {i}: {len(ids)} tokens, same ids as transformers: {ids == want}")
    ctx = context()
    logits = decode(ctx, want, 0, True)
    hf = ref[f"logits_{i}"]
    d = float(np.abs(logits - hf[:, :n_vocab]).max())
    worst = max(worst, d)
    agree += int((logits.argmax(-1) == hf.argmax(-1)).sum())
    total += len(want)
    print(f"  max |logit diff| vs merged HF model: {d:.4f}; top-1 equal at last position: "
          f"{int(logits[-1].argmax()) == int(hf[-1].argmax())}")
    # greedy generation, 16 tokens
    gen, pos, last = [], len(want), logits[-1]
    for _ in range(16):
        t = int(last.argmax())
        if t == lib.llama_vocab_eos(vocab):
            break
        gen.append(t)
        last = decode(ctx, [t], pos, False)[0]
        pos += 1
    print(f"  generated: {''.join(piece(t) for t in gen)!r}")
    lib.llama_free(ctx)
print(f"llama.cpp summary: max |logit diff| {worst:.4f}, top-1 agreement {agree}/{total} positions")
lib.llama_model_free(model)
