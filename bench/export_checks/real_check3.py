"""Re-export the GGUFs after the pre-tokenizer name fix (timed), and add tokenizer-only texts to ref.npz."""
import json
import time
from pathlib import Path

import numpy as np

from tunesmith.export import export
from tunesmith.run import Run

W = Path("/tmp/export_check")
run = Run(W / "run")
for k in ("f16", "q8_0"):
    t = time.perf_counter()
    export(run, W / f"out-{k}", gguf=k, force=True)
    print(f"export {k}: {time.perf_counter() - t:.1f} s wall, file {(W / f'out-{k}' / f'model-{k}.gguf').stat().st_size / 1e6:.1f} MB")
texts = ["Numbers 1234567, $9.95 and 940 grams;  two  spaces\n\n\ttabs", "ünïcödé, 中文, emoji 😀 and <|im_end|> inline",
         "$+<=>^~| punctuation runs!!! ... 'll 're 's", "   leading spaces and trailing   "]
ref = dict(np.load(W / "ref.npz"))
ref["texts"] = json.dumps(texts)
for i, x in enumerate(texts):
    ref[f"tids_{i}"] = np.array(run.tokenizer(x, add_special_tokens=False)["input_ids"], np.int32)
np.savez(W / "ref.npz", **ref)
