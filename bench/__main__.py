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


def matmul_gflops(size: int = 2048, reps: int = 10) -> float:
    """Plain fp32 matmul speed here, with the threads torch uses by default."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * size**3 * reps / (time.perf_counter() - t) / 1e9


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
    p.add_argument("--systems", default="tunesmith,hf,hf-grouped,trl,trl-packed")
    p.add_argument("--rounds", type=int, default=3)
    add_run_args(p, DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    if not args.data.is_file():
        sys.exit(f"bench: data file {args.data} not found (expected ../shared/data next to the repo; pass --data)")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]

    gflops = matmul_gflops()
    limit = gflops * 1e9 / (LORA_FLOP_PER_PARAM * matmul_params(args.model))
    print(f"matmul: {gflops:.0f} GFLOP/s -> LoRA limit {limit:.0f} tokens/s", file=sys.stderr)
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for r in range(args.rounds):
        for s in systems:
            res = run(s, args)
            runs[s].append(res)
            shown = res.get("error") or res.get("missing") or f"{res['tokens_per_s']:.1f} tok/s"
            print(f"round {r + 1}/{args.rounds} {s}: {shown}", file=sys.stderr, flush=True)

    summary = {}
    for s, rs in runs.items():
        ok = [x for x in rs if "tokens_per_s" in x]
        if not ok:
            summary[s] = {"unavailable": rs[0].get("error") or rs[0].get("missing")}
            continue
        summary[s] = {k: _stats([x[k] for x in ok]) for k in ("tokens_per_s", "s_per_step", "peak_rss_gb",
                                                               "final_loss")}
        summary[s]["runs"] = len(ok)
        summary[s]["fraction_of_limit"] = summary[s]["tokens_per_s"]["median"] / limit
    result = {"settings": {k: str(v) for k, v in vars(args).items()}, "matmul_gflops": gflops,
              "lora_limit_tokens_per_s": limit, "systems": summary, "raw": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    md = markdown(result, systems)
    (args.out / f"bench-{stamp}.md").write_text(md)
    print(md)


def markdown(result: dict, systems: list[str]) -> str:
    s = result["systems"]
    ours = s.get("tunesmith", {}).get("tokens_per_s", {}).get("median")
    lines = [f"matmul {result['matmul_gflops']:.0f} GFLOP/s; LoRA limit {result['lora_limit_tokens_per_s']:.0f} "
             "tokens/s", "",
             "| system | tokens/s median (range) | s/step | peak RSS GB | final loss | % of limit | tunesmith x |",
             "|---|---|---|---|---|---|---|"]
    for name in systems:
        m = s[name]
        if "unavailable" in m:
            lines.append(f"| {name} | unavailable: {m['unavailable']} | | | | | |")
            continue
        t = m["tokens_per_s"]
        ratio = f"{ours / t['median']:.2f}" if ours and name != "tunesmith" else ""
        lines.append(f"| {name} | {t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f}) | "
                     f"{m['s_per_step']['median']:.2f} | {m['peak_rss_gb']['median']:.2f} | "
                     f"{m['final_loss']['median']:.4f} | {100 * m['fraction_of_limit']:.0f}% | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
