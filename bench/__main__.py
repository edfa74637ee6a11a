"""Side-by-side training benchmark: `python -m bench` (or `make bench`).

Each system runs in its own process, alternated A B C A B C ... for --rounds rounds, on the same encoded data
and settings (see run_one.py). Reports medians and ranges, ratios against each peer, and the fraction of the
matmul limit measured on this machine in the same run; writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .run_one import RUN_ARGS, add_run_args

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "support_bitext" / "train.jsonl"
LORA_FLOP_PER_PARAM = 4  # forward (2) + backward through frozen weights (2): no weight gradients
FULL_FLOP_PER_PARAM = 6  # ... + weight gradients (2)
GPTEACHER = DEFAULT_DATA.parent.parent / "instructions_gpteacher" / "train.jsonl"
CONVERGENCE_TOL = 2e-3  # max |loss difference| per step, padding-free vs padded: float reassociation only


def longtail_mix(support: Path, out: Path, rows: int, seed: int = 0) -> Path:
    """A long-tailed length mix from the shared data: mostly single instructions (90-380 tokens) and one
    in five a multi-turn support chat of 3-5 joined conversations (400+ tokens), shuffled."""
    import random

    rng = random.Random(seed)
    chats = [json.loads(x) for x in support.read_text().splitlines() if x.strip()]
    short = chats
    if GPTEACHER.is_file():  # instruction rows, turned into chats so the file has one format
        inst = [json.loads(x) for x in GPTEACHER.read_text().splitlines() if x.strip()]
        short = [
            {
                "messages": [
                    {"role": "user", "content": (r["instruction"] + "\n\n" + r.get("input", "")).strip()},
                    {"role": "assistant", "content": r["response"]},
                ]
            }
            for r in inst
        ]
    mix = []
    for i in range(rows):
        if i % 5 == 4:
            mix.append({"messages": [m for c in rng.sample(chats, rng.randint(3, 5)) for m in c["messages"]]})
        else:
            mix.append(rng.choice(short))
    rng.shuffle(mix)
    out.write_text("".join(json.dumps(r) + "\n" for r in mix))
    return out


def is_full(system: str) -> bool:
    return system.endswith("-full")


def convergence(runs: dict) -> dict | None:
    """Per-step training loss, tunesmith (padding-free) against tunesmith-padded, round by round."""
    a, b = runs.get("tunesmith", []), runs.get("tunesmith-padded", [])
    diffs = [
        max(abs(x - y) for x, y in zip(ra["losses"], rb["losses"]))
        for ra, rb in zip(a, b)
        if "losses" in ra and "losses" in rb
    ]
    if not diffs:
        return None
    return {
        "max_abs_loss_diff": max(diffs),
        "tolerance": CONVERGENCE_TOL,
        "ok": max(diffs) <= CONVERGENCE_TOL,
        "steps": len(a[0]["losses"]),
    }


def matmul_params(model_name: str) -> int:
    """Weights that take part in matmuls (every Linear, the LM head included)."""
    from torch import nn

    from tunesmith.models.load import load_causal_lm

    model = load_causal_lm(model_name)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def run(system: str, args) -> dict:
    cmd = [sys.executable, str(HERE / "run_one.py"), system]
    for name in RUN_ARGS:
        cmd += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"system": system, "error": tail[0]}
    return json.loads(lines[-1])


def _stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument(
        "--systems",
        default="tunesmith,tunesmith-padded,hf,trl,trl-packed,tunesmith-full,hf-full",
        help="any of: tunesmith, tunesmith-padded, tunesmith-compile, tunesmith-ckpt, tunesmith-full, "
        "hf, hf-grouped, hf-full, trl, trl-packed",
    )
    p.add_argument(
        "--mix",
        choices=["support", "longtail"],
        default="support",
        help="support: a slice of --data; longtail: instructions plus 1-in-5 long multi-turn chats",
    )
    p.add_argument("--rounds", type=int, default=2)
    add_run_args(p, DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    if not args.data.is_file():
        sys.exit(f"bench: data file {args.data} not found (expected ../shared/data next to the repo; pass --data)")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if args.mix == "longtail":
        import tempfile  # built from the shared data at each run, never written into the repo

        args.data = longtail_mix(
            args.data, Path(tempfile.mkdtemp(prefix="bench-mix-")) / "longtail.jsonl", args.rows + 2
        )

    n_params = matmul_params(args.model)
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for r in range(args.rounds):
        for s in systems:
            res = run(s, args)
            runs[s].append(res)
            shown = (
                res.get("error")
                or res.get("missing")
                or f"{res['tokens_per_s']:.1f} tok/s (matmul {res['matmul_gflops']:.0f} GFLOP/s)"
            )
            print(f"round {r + 1}/{args.rounds} {s}: {shown}", file=sys.stderr, flush=True)

    # Each run measured the matmul ceiling in its own process just before training (the machine drifts)
    measured = [x["matmul_gflops"] for rs in runs.values() for x in rs if "matmul_gflops" in x]
    if not measured:
        sys.exit("bench: no system completed a run; see the errors above")
    gflops = statistics.median(measured)
    limit = gflops * 1e9 / (LORA_FLOP_PER_PARAM * n_params)
    full_limit = gflops * 1e9 / (FULL_FLOP_PER_PARAM * n_params)
    summary = {}
    for s, rs in runs.items():
        ok = [x for x in rs if "tokens_per_s" in x]
        if not ok:
            summary[s] = {"unavailable": rs[0].get("error") or rs[0].get("missing")}
            continue
        summary[s] = {
            k: _stats([x[k] for x in ok]) for k in ("tokens_per_s", "s_per_step", "peak_rss_gb", "final_loss")
        }
        summary[s]["runs"] = len(ok)
        per_param = FULL_FLOP_PER_PARAM if is_full(s) else LORA_FLOP_PER_PARAM
        summary[s]["fraction_of_limit"] = statistics.median(
            x["tokens_per_s"] * per_param * n_params / (x["matmul_gflops"] * 1e9) for x in ok
        )
    result = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "matmul_gflops": gflops,
        "lora_limit_tokens_per_s": limit,
        "full_limit_tokens_per_s": full_limit,
        "systems": summary,
        "convergence": convergence(runs),
        "raw": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    md = markdown(result, systems)
    (args.out / f"bench-{stamp}.md").write_text(md)
    print(md)


def markdown(result: dict, systems: list[str]) -> str:
    """The table docs/speed.md quotes; ratios are tunesmith's median over each peer's (full FT against full FT)."""
    s = result["systems"]

    lines = [
        f"matmul {result['matmul_gflops']:.0f} GFLOP/s (median over runs, each measured just before it); limit {result['lora_limit_tokens_per_s']:.0f} "
        f"tokens/s LoRA, {result['full_limit_tokens_per_s']:.0f} full fine-tuning",
        "",
        "| system | tokens/s median (range) | s/step | peak RSS GB | final loss | % of matmul limit | tunesmith x: speed / RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in systems:
        m = s[name]
        if "unavailable" in m:
            lines.append(f"| {name} | unavailable: {m['unavailable']} | | | | | |")
            continue
        t = m["tokens_per_s"]
        ref = s.get("tunesmith-full" if is_full(name) else "tunesmith", {})
        ratio = ""
        if "tokens_per_s" in ref and not name.startswith("tunesmith"):
            ratio = (
                f"{ref['tokens_per_s']['median'] / t['median']:.2f} / "
                f"{ref['peak_rss_gb']['median'] / m['peak_rss_gb']['median']:.2f}"
            )
        lines.append(
            f"| {name} | {t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f}) | "
            f"{m['s_per_step']['median']:.2f} | {m['peak_rss_gb']['median']:.2f} | "
            f"{m['final_loss']['median']:.4f} | {100 * m['fraction_of_limit']:.0f}% | {ratio} |"
        )
    c = result.get("convergence")
    if c:
        lines += [
            "",
            f"Convergence: padding-free vs padded, same batches, {c['steps']} steps: max |loss difference| "
            f"{c['max_abs_loss_diff']:.2e} (tolerance {c['tolerance']:g}): {'ok' if c['ok'] else 'FAILED'}",
        ]
    st = result["settings"]
    lines += [
        "",
        f"Settings: {st['rows']} rows of {Path(st['data']).name}, batch {st['batch']}, {st['steps']} steps "
        f"({st['warmup']} warm-up steps not timed), max_len {st['max_len']}, LoRA r16/alpha 32/dropout 0, "
        f"lr {st['lr']} (full {st['full_lr']}), {st['rounds']} rounds alternated.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
