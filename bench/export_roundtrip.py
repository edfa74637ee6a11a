"""Export round trip on a real model: `python -m bench.export_roundtrip [--run RUN] [--out DIR] [--llama]`.

What it measures (the figures in docs/export.md):
1. A short LoRA run on the embedded smollm2-135m (--steps steps on the first --rows rows of the demo's
   train.jsonl), or an existing finished run folder (--run).
2. `tunesmith.export.export` of the adapter, the merged model and one GGUF per --types (f16, q8_0):
   wall time and size of each.
3. Read back outside tunesmith, on 4 chat prompts: the merged folder with transformers'
   AutoModelForCausalLM (against the run's adapter model, and against the base, so the comparison is not
   vacuous); each GGUF with transformers' GGUF loader: max and mean |logit diff| against the merged model,
   KL(merged || GGUF) of the next-token distributions, top-1 agreement at every position, the next token after
   each prompt; and against the merged model with its matrices rounded to the GGUF type in PyTorch, which
   should be exact (the GGUF holds the merged weights, only rounded).
4. The GGUF's tokenizer (AutoTokenizer with gguf_file=): same ids as the run's tokenizer on the chat prompts
   and on awkward texts, same rendered chat template; its metadata (tokens, merges, special ids, chat template,
   llama.* hyperparameters) against the GGUF the smollm2-135m alias was converted from, and its tensor types.
5. With --llama: each GGUF in llama.cpp (the CPU build in the llama-cpp-cffi 0.4.42 wheel, through its raw
   cffi C API): token ids, logits against the merged model, and a greedy 16-token answer per prompt.
   On Debian 12 that build needs a newer libstdc++ symbol than the system has: preload a shim
   (LD_PRELOAD=...) if loading the library fails. llama-cpp-cffi is not a tunesmith dependency.

Prints a table and writes bench/results/export-roundtrip-<time>.json. Exits 1 when a check that should be
exact fails (rounding-only logits, tokenizer ids, chat template, metadata other than tokenizer.ggml.pre).
The run and its data stay in --out; the exports (about 1 GB) go to a temporary folder inside it unless
--keep-exports. Run it alone on the machine: the timings are wall times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

CHATS = [
    [{"role": "user", "content": "What is the return window?"}],
    [{"role": "user", "content": "How much does the Zephyr 28 weigh?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name three colours."}],
    [{"role": "user", "content": "Write the number 1234567 in words."}],
]
# Tokenizer-only texts: digits, runs of spaces, tabs, accents, CJK, emoji, a special token inline, punctuation.
TEXTS = [
    "Numbers 1234567, $9.95 and 940 grams;  two  spaces\n\n\ttabs",
    "ünïcödé, 中文, emoji 😀 and <|im_end|> inline",
    "$+<=>^~| punctuation runs!!! ... 'll 're 's",
    "   leading spaces and trailing   ",
]
META_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.chat_template",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.pre",
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.rope.dimension_count",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon",
    "llama.vocab_size",
)
# Documented difference: tunesmith's converted SmolLM2 tokenizer does not split digits first ("gpt-2"), the
# original GGUF says "smollm"; on this vocabulary both split identically (docs/export.md).
EXPECTED_META_DIFF = {"tokenizer.ggml.pre"}
ROUNDING_TOL = 1e-4  # GGUF logits vs the merged model rounded the same way in PyTorch: exact up to float noise
ADAPTER_TOL = 1e-3  # merged model vs the run's adapter model


# --- the run and its exports ----------------------------------------------------------------------------


def train_run(args, out: Path):
    import tunesmith
    from tunesmith.demo import demo_file

    rows = demo_file("train.jsonl").read_text(encoding="utf-8").splitlines()[: args.rows]
    data = out / "train.jsonl"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    t = time.perf_counter()
    settings = {
        "model": args.model,
        "data": str(data),
        "output": str(out / "run"),
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "max_seq_len": args.max_seq_len,
        "tensorboard": False,
        "seed": args.seed,
    }
    run = tunesmith.train(settings, force=True)
    return run, time.perf_counter() - t


def eval_losses(run_path: Path) -> list[float] | None:
    """First and last validation loss the run logged."""
    f = run_path / "metrics.jsonl"
    if not f.is_file():
        return None
    rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    losses = [r["eval_loss"] for r in rows if "eval_loss" in r]
    return [round(losses[0], 4), round(losses[-1], 4)] if losses else None


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def original_gguf(model_name: str) -> Path | None:
    """The GGUF a model alias is converted from (smollm2-135m), to compare metadata with; else None."""
    from tunesmith.models.registry import ALIASES

    alias = ALIASES.get(model_name)
    if alias is None or not alias.relpath.endswith(".gguf"):
        return None
    spec = importlib.util.find_spec(alias.package)  # locate only: importing the package pulls in its deps
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / alias.relpath
    return path if path.is_file() else None


# --- comparisons ----------------------------------------------------------------------------------------


def logits_of(model, ids: list[list[int]]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        return [model(torch.tensor([i])).logits[0].float().numpy() for i in ids]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def compare(got: list[np.ndarray], ref: list[np.ndarray], tok) -> dict:
    """`got` against the reference logits, prompt by prompt, every position."""
    kl = np.concatenate(
        [(np.exp(p) * (p - q)).sum(-1) for p, q in ((log_softmax(r), log_softmax(g)) for g, r in zip(got, ref))]
    )
    return {
        "max_diff": round(max_diff(got, ref), 4),
        "max_diff_per_prompt": [round(float(np.abs(g - r).max()), 4) for g, r in zip(got, ref)],
        "mean_diff": round(float(np.mean([np.abs(g - r).mean() for g, r in zip(got, ref)])), 5),
        "kl_mean": float(f"{kl.mean():.3g}"),
        "kl_max": float(f"{kl.max():.3g}"),
        "top1_agree": sum(int((g.argmax(-1) == r.argmax(-1)).sum()) for g, r in zip(got, ref)),
        "positions": sum(len(r) for r in ref),
        "next_token_agree": [int(g[-1].argmax()) == int(r[-1].argmax()) for g, r in zip(got, ref)],
        "next_tokens": [tok.decode([int(g[-1].argmax())]) for g in got],
    }


def metadata_vs(original, mine) -> dict:
    """Each META_KEYS value of our GGUF against the original's: 'same', 'absent in original', or the two."""
    out = {}
    for key in META_KEYS:
        a, b = (r.fields[key].contents() if key in r.fields else None for r in (original, mine))
        if a is None:
            out[key] = "absent in original" if b is not None else "absent in both"
        elif b is None:
            out[key] = "absent in ours"
        else:
            out[key] = "same" if a == b else f"differs: original {str(a)[:60]!r} / ours {str(b)[:60]!r}"
    return out


# --- llama.cpp (optional) -------------------------------------------------------------------------------


def load_llama(lib_path: str | None):
    """llama-cpp-cffi's compiled CPU module, loaded directly (its package __init__ is not needed)."""
    if lib_path is None:
        spec = importlib.util.find_spec("llama")
        dirs = list(spec.submodule_search_locations or []) if spec else []
        found = [p for d in dirs for p in sorted(Path(d).glob("_llama_cpp_cpu*.so"))]
        if not found:
            raise SystemExit(
                "--llama: llama-cpp-cffi's _llama_cpp_cpu library not found: pip install "
                "llama-cpp-cffi==0.4.42, or pass --llama-lib PATH/_llama_cpp_cpu....so"
            )
        lib_path = found[0]
    spec = importlib.util.spec_from_file_location("_llama_cpp_cpu", str(lib_path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.lib.llama_backend_init()
    return mod.lib, mod.ffi


def llama_check(lib, ffi, path: Path, ids, ref, text_ids, threads: int, gen_tokens: int = 16) -> dict:
    """Load `path` in llama.cpp, tokenize, compare logits with the merged model's `ref`, generate greedily."""
    model = lib.llama_model_load_from_file(str(path).encode(), lib.llama_model_default_params())
    if model == ffi.NULL:
        return {"error": "llama.cpp could not load the GGUF"}
    vocab = lib.llama_model_get_vocab(model)
    n_vocab = lib.llama_vocab_n_tokens(vocab)

    def tokenize(text):
        raw = text.encode()
        buf = ffi.new("int32_t[4096]")
        n = lib.llama_tokenize(vocab, raw, len(raw), buf, 4096, False, True)  # no BOS added, parse specials
        return [buf[i] for i in range(n)]

    def piece(t):
        buf = ffi.new("char[64]")
        n = lib.llama_token_to_piece(vocab, t, buf, 64, 0, False)
        return ffi.unpack(buf, n).decode("utf-8", "replace")

    def decode(ctx, tokens, start, all_logits):
        batch = lib.llama_batch_init(len(tokens), 0, 1)
        batch.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, start + i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if (all_logits or i == len(tokens) - 1) else 0
        try:
            assert lib.llama_decode(ctx, batch) == 0, "llama_decode failed"
            rows = range(len(tokens)) if all_logits else [len(tokens) - 1]
            return np.stack(
                [
                    np.frombuffer(ffi.buffer(lib.llama_get_logits_ith(ctx, i), 4 * n_vocab), np.float32).copy()
                    for i in rows
                ]
            )
        finally:
            lib.llama_batch_free(batch)

    try:
        buf = ffi.new("char[256]")
        meta = {}
        for key in ("general.architecture", "tokenizer.ggml.pre", "general.file_type"):
            n = lib.llama_model_meta_val_str(model, key.encode(), buf, 256)
            meta[key] = ffi.string(buf).decode() if n >= 0 else None
        res = {
            "meta": meta,
            "prompt_ids_equal": [],
            "text_ids_equal": [tokenize(x) == want for x, want in text_ids],
            "max_diff_per_prompt": [],
            "top1_agree": 0,
            "positions": 0,
            "next_token_agree": [],
            "generated": [],
        }
        for (text, want), hf in zip(ids, ref):
            res["prompt_ids_equal"].append(tokenize(text) == want)
            cp = lib.llama_context_default_params()
            cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_threads, cp.n_threads_batch = 1024, 512, 512, threads, threads
            ctx = lib.llama_init_from_model(model, cp)
            try:
                got = decode(ctx, want, 0, True)  # the transformers ids, so the logits compare position by position
                res["max_diff_per_prompt"].append(round(float(np.abs(got - hf[:, :n_vocab]).max()), 4))
                res["top1_agree"] += int((got.argmax(-1) == hf[:, :n_vocab].argmax(-1)).sum())
                res["positions"] += len(want)
                res["next_token_agree"].append(int(got[-1].argmax()) == int(hf[-1].argmax()))
                gen, pos, last = [], len(want), got[-1]
                for _ in range(gen_tokens):
                    t = int(last.argmax())
                    if t == lib.llama_vocab_eos(vocab):
                        break
                    gen.append(t)
                    last = decode(ctx, [t], pos, False)[0]
                    pos += 1
                res["generated"].append("".join(piece(t) for t in gen))
            finally:
                lib.llama_free(ctx)
        res["max_diff"] = max(res["max_diff_per_prompt"])
        return res
    finally:
        lib.llama_model_free(model)


# --- main -----------------------------------------------------------------------------------------------


def roundtrip(args, out: Path, exports: Path, llama) -> dict:
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.export import export
    from tunesmith.export.to_gguf import gguf_file_name, rounded_copy
    from tunesmith.run import Run

    res: dict = {"settings": vars(args) | {"out": str(out)}}
    if args.run:
        run = Run(args.run)
    else:
        run, seconds = train_run(args, out)
        res["train_seconds"] = round(seconds, 1)
    res["run"] = {
        "path": str(run.path.resolve()),
        "model": run.config.model,
        "method": run.config.method,
        "steps": run.summary.get("steps"),
        "eval_loss_first_last": eval_losses(run.path),
    }

    # 1. exports, timed
    kinds = ([("adapter", {})] if run.is_adapter else []) + [("merged", {"merge": True})]
    kinds += [(k, {"gguf": k}) for k in args.types]
    res["exports"] = {}
    for name, kw in kinds:
        t = time.perf_counter()
        folder = export(run, exports / name, force=True, **kw)
        wall = time.perf_counter() - t
        row = {"seconds": round(wall, 1), "folder_mb": size_mb(folder)}
        if "gguf" in kw:
            row["file_mb"] = size_mb(folder / gguf_file_name(kw["gguf"]))
        res["exports"][name] = row

    # 2. reference: the merged folder read by plain transformers
    tok = run.tokenizer
    prompts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in CHATS]
    ids = [tok(x, add_special_tokens=False)["input_ids"] for x in prompts]
    text_ids = [tok(x, add_special_tokens=False)["input_ids"] for x in TEXTS]
    merged = AutoModelForCausalLM.from_pretrained(exports / "merged", dtype=torch.float32).eval()
    ref = logits_of(merged, ids)
    res["positions"] = sum(len(i) for i in ids)
    res["logit_span"] = round(max(float(np.abs(r).max()) for r in ref), 1)
    res["merged_vs_adapter_model"] = float(f"{max_diff(ref, logits_of(run.model, ids)):.3g}")
    with run.base_model() as base:
        res["merged_vs_base"] = round(max_diff(ref, logits_of(base, ids)), 3)

    # 3. each GGUF: transformers, tokenizer, metadata, llama.cpp
    orig_path = original_gguf(run.config.model)
    orig = gguf.GGUFReader(orig_path) if orig_path else None
    res["original_gguf"] = str(orig_path) if orig_path else None
    res["gguf"] = {}
    for k in args.types:
        folder, name = exports / k, gguf_file_name(k)
        row = res["gguf"][k] = {}
        t = time.perf_counter()
        g = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
        row["transformers_load_seconds"] = round(time.perf_counter() - t, 1)
        got = logits_of(g, ids)
        del g
        row["transformers"] = compare(got, ref, tok)
        r = rounded_copy(merged, k)
        row["vs_rounded_merged"] = float(f"{max_diff(got, logits_of(r, ids)):.3g}")
        del r

        t = time.perf_counter()
        gtok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        row["tokenizer_load_seconds"] = round(time.perf_counter() - t, 1)
        row["tokenizer"] = {
            "prompt_ids_equal": [gtok(x, add_special_tokens=False)["input_ids"] == i for x, i in zip(prompts, ids)],
            "text_ids_equal": [gtok(x, add_special_tokens=False)["input_ids"] == i for x, i in zip(TEXTS, text_ids)],
            "chat_template_equal": [
                gtok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) == x
                for c, x in zip(CHATS, prompts)
            ],
        }
        del gtok

        mine = gguf.GGUFReader(folder / name)
        row["tensor_types"] = dict(Counter(t.tensor_type.name for t in mine.tensors))
        row["tensors"] = len(mine.tensors)
        row["has_output_weight"] = any(t.name == "output.weight" for t in mine.tensors)
        if orig is not None:
            row["original_tensors"] = len(orig.tensors)
            row["metadata_vs_original"] = metadata_vs(orig, mine)
        del mine
        if llama is not None:
            row["llama_cpp"] = llama_check(
                *llama, folder / name, list(zip(prompts, ids)), ref, list(zip(TEXTS, text_ids)), args.threads
            )
    return res


def problems(res: dict) -> list[str]:
    """The checks that should hold exactly; an empty list when all do."""
    out = []
    if res["merged_vs_adapter_model"] > ADAPTER_TOL:
        out.append(f"merged model differs from the run's adapter model by {res['merged_vs_adapter_model']}")
    for k, row in res["gguf"].items():
        if row["vs_rounded_merged"] > ROUNDING_TOL:
            out.append(f"{k}: GGUF logits differ from the rounded merged model by {row['vs_rounded_merged']}")
        for check, ok in row["tokenizer"].items():
            if not all(ok):
                out.append(f"{k}: GGUF tokenizer {check.replace('_', ' ')}: {ok}")
        for key, verdict in (row.get("metadata_vs_original") or {}).items():
            if verdict.startswith(("differs", "absent in ours")) and key not in EXPECTED_META_DIFF:
                out.append(f"{k}: {key} {verdict}")
        lc = row.get("llama_cpp")
        if lc is not None:
            if "error" in lc:
                out.append(f"{k}: llama.cpp: {lc['error']}")
            elif not (all(lc["prompt_ids_equal"]) and all(lc["text_ids_equal"])):
                out.append(
                    f"{k}: llama.cpp token ids differ: prompts {lc['prompt_ids_equal']}, texts {lc['text_ids_equal']}"
                )
    return out


def print_table(res: dict) -> None:
    ex = res["exports"]
    print(
        f"\nrun {res['run']['path']} ({res['run']['steps']} steps; validation loss first/last "
        f"{res['run']['eval_loss_first_last']}); {len(CHATS)} chat prompts, {res['positions']} token positions, "
        f"logits span +-{res['logit_span']}\n"
    )
    print("| export | size | wall time | max \\|logit diff\\| vs the merged model | top-1 token agreement |")
    print("|---|---|---|---|---|")
    if "adapter" in ex:
        print(
            f"| adapter | {ex['adapter']['folder_mb']} MB folder | {ex['adapter']['seconds']} s | "
            f"{res['merged_vs_adapter_model']:.2g} (merged vs the adapter model) | - |"
        )
    print(f"| merged | {ex['merged']['folder_mb']} MB folder | {ex['merged']['seconds']} s | - | - |")
    for k, row in res["gguf"].items():
        c = row["transformers"]
        print(
            f"| gguf {k}, read by transformers | {ex[k]['file_mb']} MB file | {ex[k]['seconds']} s | "
            f"{c['max_diff']} (mean {c['mean_diff']}; KL {c['kl_mean']:.2g}, max {c['kl_max']:.2g}) | "
            f"{c['top1_agree']}/{c['positions']}; next token {sum(c['next_token_agree'])}/{len(CHATS)} |"
        )
    for k, row in res["gguf"].items():
        lc = row.get("llama_cpp")
        if lc and "error" not in lc:
            print(
                f"| gguf {k}, in llama.cpp | | | {lc['max_diff']} | {lc['top1_agree']}/{lc['positions']}; "
                f"next token {sum(lc['next_token_agree'])}/{len(CHATS)} |"
            )
    print(f"\nmerged vs base model: max |logit diff| {res['merged_vs_base']} (the run changed the model)")
    for k, row in res["gguf"].items():
        tk = row["tokenizer"]
        print(
            f"gguf {k}: vs the merged model rounded to {k} in PyTorch: {row['vs_rounded_merged']}; "
            f"transformers load {row['transformers_load_seconds']} s, tokenizer {row['tokenizer_load_seconds']} s; "
            f"tokenizer ids equal: prompts {all(tk['prompt_ids_equal'])}, texts {all(tk['text_ids_equal'])}, "
            f"chat template {all(tk['chat_template_equal'])}"
        )
        print(
            f"  tensors {row['tensors']} {row['tensor_types']}, output.weight: {row['has_output_weight']}; "
            f"next tokens {row['transformers']['next_tokens']}"
        )
        diffs = {key: v for key, v in (row.get("metadata_vs_original") or {}).items() if v != "same"}
        if "metadata_vs_original" in row:
            print(
                f"  metadata vs the original GGUF: {len(META_KEYS) - len(diffs)}/{len(META_KEYS)} keys the same"
                + "".join(f"\n    {key}: {v}" for key, v in diffs.items())
            )
        lc = row.get("llama_cpp")
        if lc and "error" not in lc:
            print(f"  llama.cpp {lc['meta']}: generated {lc['generated']}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    ap.add_argument("--run", type=Path, help="a finished run folder to export instead of training one")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("runs/export-roundtrip"),
        help="where the run, its data and (with --keep-exports) the exports go",
    )
    ap.add_argument("--keep-exports", action="store_true", help="keep the exports in OUT/exports")
    ap.add_argument("--types", default="f16,q8_0", help="GGUF types to export, comma-separated (f32, f16, q8_0)")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--rows", type=int, default=24, help="rows of the demo's train.jsonl to train on")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llama", action="store_true", help="also run each GGUF in llama.cpp (llama-cpp-cffi)")
    ap.add_argument("--llama-lib", help="path to llama-cpp-cffi's _llama_cpp_cpu*.so (default: the installed one)")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: torch's)")
    args = ap.parse_args(argv)
    args.types = [t.strip() for t in args.types.split(",") if t.strip()]
    from tunesmith.export import GGUF_TYPES

    if bad := [t for t in args.types if t not in GGUF_TYPES]:
        ap.error(f"--types: unknown {bad}; choose from {', '.join(GGUF_TYPES)}")
    llama = load_llama(args.llama_lib) if args.llama else None  # fail now, not after training
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.keep_exports:
        res = roundtrip(args, out, out / "exports", llama)
    else:
        with tempfile.TemporaryDirectory(dir=out, prefix=".exports-") as tmp:
            res = roundtrip(args, out, Path(tmp), llama)
    res["wall_seconds"] = round(time.perf_counter() - t0, 1)
    res["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }
    res["versions"] = {p: version(p) for p in ("tunesmith", "torch", "transformers", "peft", "gguf")}
    res["problems"] = problems(res)

    print_table(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"export-roundtrip-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=2, default=str, ensure_ascii=False) + "\n")
    print("\n" + ("problems:\n  " + "\n  ".join(res["problems"]) if res["problems"] else "all exact checks hold"))
    print(f"written: {path}")
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
