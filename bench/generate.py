"""Generation speed where users wait: `python -m bench.generate [--rows 64] [--repeats 2]`.

Workloads, each on SmolLM2-135M with a LoRA adapter (a short run on support_bitext, trained once under
--workdir and reused), greedy, fp32, in this one process:
  chat   one prompt at a time, up to --max-new-tokens: tunesmith's `stream` (what `tunesmith chat` runs)
         against plain HF `generate` at batch 1 on the same PeftModel, and HF with prompt lookup.
  eval   --rows support_bitext validation questions answered by the tuned model and by the base (adapter
         off): tunesmith's `generate_batch` (what `tunesmith eval` runs) against HF `generate` at batch 1
         and at batch 8/16/32 on length-sorted, left-padded batches (HF's best of those is reported).
  serve  --requests requests submitted at once to the serve engine (serve/engine.py, no HTTP): aggregate
         completion tokens/s until the last one ends.
Systems alternate within each repeat (A B A B), and the table gives medians. HF at batch 1 is the slowest
by far, so it answers only the first --hf-b1-rows questions of each model; its tokens/s is taken from those
and its eval wall time is that rate applied to the whole workload's token count (said in the table).
`--check` also counts how many of tunesmith's greedy answers equal HF's, token for token.

Writes bench/results/generate-<time>.json and prints a markdown table. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "support_bitext"


def tuned_run(workdir: Path, steps: int) -> Path:
    import tunesmith

    path = workdir / "support-lora"
    if not (path / "summary.json").is_file():
        tunesmith.train(
            dict(
                model="smollm2-135m",
                data=str(DATA / "train.jsonl"),
                output=str(path),
                method="lora",
                max_steps=steps,
                max_seq_len=384,
                val_max_rows=16,
                select_by="loss",
                tensorboard=False,
            ),
            force=True,
        )
    return path


def questions(n: int) -> list[list[dict]]:
    rows = [json.loads(x) for x in (DATA / "validation.jsonl").read_text().splitlines()[:n]]
    return [r["messages"][:-1] for r in rows]


def encode(tok, chats):
    from tunesmith.eval.generate import encode as encode_one

    return [encode_one(tok, c) for c in chats]


def hf_generate(model, tok, prompts, max_new, batch) -> list[list[int]]:
    """Plain HF `generate` (what a user gets by default) on the same PeftModel, unmerged."""
    from tunesmith.eval.generate import hf_answer_ids

    return hf_answer_ids(model, tok, prompts, max_new_tokens=max_new, batch_size=batch)


def ours_generate(model, prompts, max_new, stops, batch) -> list[list[int]]:
    from tunesmith.eval.generate import answer_ids

    return answer_ids(model, prompts, stops=stops, max_new_tokens=max_new, batch_size=batch)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def count(answers) -> int:
    return sum(len(a) for a in answers)


def eval_workload(run, prompts, args, stops, results, check):
    """Base (adapter off) and tuned answers to the same prompts, as `tunesmith eval` produces them."""
    model, tok = run.model, run.tokenizer
    k = args.hf_b1_rows

    def both(fn):
        with model.disable_adapter():
            base = fn()
        return base + fn()

    systems = {
        "tunesmith": lambda: both(lambda: ours_generate(model, prompts, args.max_new_tokens, stops, args.batch)),
        "hf_b1": lambda: both(lambda: hf_generate(model, tok, prompts[:k], args.max_new_tokens, 1)),
    }
    for b in args.hf_batches:
        systems[f"hf_b{b}"] = lambda b=b: both(lambda: hf_generate(model, tok, prompts, args.max_new_tokens, b))
    for rep in range(args.repeats):
        for name, fn in systems.items():
            answers, wall = timed(fn)
            tokens = count(answers)
            results.setdefault(f"eval/{name}", []).append({"wall_s": wall, "tokens": tokens, "tok_s": tokens / wall})
            print(f"eval repeat {rep} {name}: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s", flush=True)
            if name in ("tunesmith", "hf_b1"):
                check[name] = answers
    n = len(prompts)
    ours, ref = check["tunesmith"], check["hf_b1"]
    pairs = list(zip(ours[:k], ref[:k])) + list(zip(ours[n : n + k], ref[k:]))
    results["eval/greedy_equal"] = {"equal": sum(a == b for a, b in pairs), "of": len(pairs)}


def hf_lookup(model, tok, prompts, max_new, k) -> list[list[int]]:
    """HF `generate` at batch 1 with its prompt-lookup decoding (`prompt_lookup_num_tokens`): the issue's
    n-gram speculation lever, measured on HF's own implementation."""
    from tunesmith.eval.generate import _gen_kwargs

    kw = _gen_kwargs(model, tok, max_new, 0.0, 1.0)
    stops, out = set(kw["eos_token_id"]), []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p])
            new = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), prompt_lookup_num_tokens=k, **kw)
            answer = []
            for t in new[0, len(p) :].tolist():
                if t in stops:
                    break
                answer.append(t)
            out.append(answer)
    return out


def chat_workload(run, args, results):
    """One prompt at a time, greedy: tunesmith's `stream` inside one folded-adapter session (its wall time
    includes the folding), HF `generate` at batch 1, and HF with its prompt lookup; the answers' text is
    compared with HF's plain greedy."""
    from tunesmith.eval.generate import stream
    from tunesmith.models.merged import merged

    model, tok = run.model, run.tokenizer
    chats = questions(args.chat_prompts)
    enc = encode(tok, chats)
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        with merged(model):  # as `tunesmith chat`: the adapter is folded in once a session, not per answer
            texts = ["".join(stream(model, tok, c, max_new_tokens=args.max_new_tokens)) for c in chats]
        wall_ours = time.perf_counter() - t0
        ours = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        answers, wall_hf = timed(lambda: hf_generate(model, tok, enc, args.max_new_tokens, 1))
        looked, wall_look = timed(lambda: hf_lookup(model, tok, enc, args.max_new_tokens, args.lookup))
        runs = (
            ("tunesmith", ours, wall_ours),
            ("hf_b1", count(answers), wall_hf),
            ("hf_lookup", count(looked), wall_look),
        )
        for name, tokens, wall in runs:
            results.setdefault(f"chat/{name}", []).append({"wall_s": wall, "tokens": tokens, "tok_s": tokens / wall})
            print(f"chat repeat {rep} {name}: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s", flush=True)
        ref = [tok.decode(a, skip_special_tokens=True) for a in answers]
        results["chat/greedy_equal"] = {
            "equal": sum(a.strip() == b.strip() for a, b in zip(texts, ref)),
            "of": len(ref),
        }


class Tally:
    """Counts the engine's events from its worker thread; `done` is set when every request has ended."""

    def __init__(self, requests: int):
        self.left, self.tokens, self.done, self.lock = requests, 0, threading.Event(), threading.Lock()

    def sink(self, events):
        with self.lock:
            for e in events:
                if e[0] == "finish":
                    self.tokens += e[3]
                elif e[0] in ("done", "error"):
                    self.left -= 1
                    if self.left == 0:
                        self.done.set()


def serve_workload(run_path, args, results):
    from tunesmith.serve.engine import Engine, Job
    from tunesmith.serve.pool import load_pool

    pool = load_pool([run_path], log=lambda m: None)
    served = pool.models[0]
    prompts = encode(served.tokenizer, [served_chat(served, c) for c in questions(args.requests)])
    engine = Engine(max_batch=args.requests)
    engine.start()
    try:
        for rep in range(args.repeats):
            tally = Tally(len(prompts))
            t0 = time.perf_counter()
            for p in prompts:
                engine.submit(Job(served, p, args.max_new_tokens, tally.sink, temperature=0.0))
            tally.done.wait()
            wall = time.perf_counter() - t0
            results.setdefault("serve/tunesmith", []).append(
                {"wall_s": wall, "tokens": tally.tokens, "tok_s": tally.tokens / wall}
            )
            print(
                f"serve repeat {rep}: {tally.tokens} tokens in {wall:.1f} s = {tally.tokens / wall:.1f} tok/s",
                flush=True,
            )
    finally:
        engine.close()


def served_chat(served, chat):
    from tunesmith.data.formats import with_system

    return with_system(chat, served.system_prompt)


def table(results: dict, args) -> str:
    def med(key, field):
        return statistics.median(x[field] for x in results[key]) if key in results else None

    lines = [
        "| workload | system | tokens/s (median) | wall s (median) | vs HF batch 1 | vs HF best batch |",
        "|---|---|---|---|---|---|",
    ]
    for wl in ("chat", "eval", "serve"):
        names = sorted({k.split("/")[1] for k in results if k.startswith(wl + "/") and isinstance(results[k], list)})
        if not names:
            continue
        hf1 = med(f"{wl}/hf_b1", "tok_s")
        batched = [n for n in names if n.startswith("hf_b") and n != "hf_b1"]
        best = max(batched, key=lambda n: med(f"{wl}/{n}", "tok_s")) if batched else None
        for n in names:
            rate, wall = med(f"{wl}/{n}", "tok_s"), med(f"{wl}/{n}", "wall_s")
            if wl == "eval" and n == "hf_b1":
                total = med("eval/tunesmith", "tokens")
                wall_txt = f"{total / rate:.0f} (est.: {args.hf_b1_rows} of {args.rows} rows run)"
            else:
                wall_txt = f"{wall:.1f}"
            r1 = f"{rate / hf1:.2f}x" if hf1 else ""
            rb = f"{rate / med(f'{wl}/{best}', 'tok_s'):.2f}x" if best else ""
            lines.append(f"| {wl} | {n} | {rate:.1f} | {wall_txt} | {r1} | {rb} |")
    if "eval/greedy_equal" in results:
        g = results["eval/greedy_equal"]
        lines.append(f"\nGreedy answers equal to HF's, token for token: {g['equal']} of {g['of']}.")
    if "chat/greedy_equal" in results:
        g = results["chat/greedy_equal"]
        lines.append(f"Chat answers equal to HF's greedy text: {g['equal']} of {g['of']}.")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="chat,eval,serve")
    ap.add_argument("--rows", type=int, default=64, help="eval: validation questions (each answered twice)")
    ap.add_argument("--hf-b1-rows", type=int, default=8, help="eval: questions HF batch 1 answers (it is slow)")
    ap.add_argument("--hf-batches", default="8,16,32", help="eval: HF batch sizes tried")
    ap.add_argument("--batch", type=int, default=32, help="tunesmith: rows stepping together")
    ap.add_argument("--chat-prompts", type=int, default=3)
    ap.add_argument("--lookup", type=int, default=4, help="chat: HF's prompt_lookup_num_tokens")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--workdir", default="runs/bench-generate")
    args = ap.parse_args(argv)
    args.hf_batches = [int(b) for b in args.hf_batches.split(",") if b]
    torch.manual_seed(0)
    from tunesmith.eval.generate import _stop_ids
    from tunesmith.run import Run

    path = tuned_run(Path(args.workdir), args.train_steps)
    run = Run(path)
    stops = _stop_ids(run.model, run.tokenizer)
    prompts = encode(run.tokenizer, [run.with_system(c) for c in questions(args.rows)])
    results: dict = {"threads": torch.get_num_threads(), "args": vars(args)}
    wl = args.workloads.split(",")
    if "chat" in wl:
        chat_workload(run, args, results)
    if "eval" in wl:
        eval_workload(run, prompts, args, stops, results, {})
    if "serve" in wl:
        del run
        serve_workload(path, args, results)
    out = ROOT / "bench" / "results" / time.strftime("generate-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps(results, indent=2))
    print(table(results, args))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
