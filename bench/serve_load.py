"""Serving figures for docs/serve.md: `python -m bench.serve_load`.

1. Memory: three LoRA runs on smollm2-135m served from one shared base (tunesmith.serve's pool), against the
   same three runs each loaded on its own (`Run(path).model`, all kept), each way in a fresh process.
2. Load: `tunesmith serve` with the three runs in its own process; this process sends --requests concurrent
   chat requests (asyncio, the `openai` client, loopback only), spread over the three adapters and the base,
   and reports p50/p95 latency and aggregate completion tokens/s; then a few requests one at a time, for the
   single-stream rate.

The runs are tiny (2 LoRA steps on a few demo rows, under --workdir, reused when present): the point is the
serving cost, not their answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "src" / "tunesmith" / "demo_data"


def train_runs(workdir: Path, count: int) -> list[Path]:
    import tunesmith

    rows = [json.loads(x) for x in (DEMO / "train.jsonl").read_text().splitlines() if x.strip()]
    out = []
    for i in range(count):
        path = workdir / f"lora-{i}"
        if not (path / "summary.json").is_file():
            data = workdir / f"rows-{i}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows[i * 20 : (i + 1) * 20]))
            tunesmith.train(
                dict(
                    model="smollm2-135m",
                    data=str(data),
                    output=str(path),
                    method="lora",
                    max_steps=2,
                    batch_size=4,
                    max_seq_len=128,
                    seed=i,
                    lr=1e-3,
                    tensorboard=False,
                ),
                force=True,
            )
        out.append(path)
    return out


MEMORY_CHILD = r"""
import json, sys
import torch
mode, paths = sys.argv[1], sys.argv[2:]
ids = torch.tensor([[1, 2, 3, 4]])
with torch.inference_mode():
    if mode == "shared":  # what `tunesmith serve` holds: one PeftModel, every adapter loaded into it
        from tunesmith.serve.pool import load_pool
        pool = load_pool(paths, log=lambda m: None)
        for s in pool.models:  # one forward per adapter and the base: every weight page is touched
            s.group.model(input_ids=ids, adapter_names=[s.adapter])
    else:  # each run as `Run(path).model` loads it: its own base
        from tunesmith.run import Run
        keep = [Run(p).model for p in paths]
        for m in keep:
            m(input_ids=ids)
print("ready", flush=True)
sys.stdin.readline()  # measure while every process of the comparison is alive (PSS splits shared pages)
fields = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
        fields[k] = int(v.split()[0]) * 1024
fields["Pss"] = next(int(l.split()[1]) * 1024 for l in open("/proc/self/smaps_rollup") if l.startswith("Pss:"))
print(json.dumps(fields), flush=True)
"""

SETUPS = {  # name -> one argument list per process
    "shared": lambda ps: [["shared", *ps]],
    "separate, one process": lambda ps: [["separate", *ps]],
    "separate, one process each": lambda ps: [["separate", p] for p in ps],
}


def memory(paths: list[Path]) -> dict:
    """RSS (what top shows; file pages counted in every mapping) and PSS (each shared page split between the
    processes that map it: the physical cost), summed over the processes of each setup, after one forward
    pass through every model so that the weights are resident. Weights are mmap-ed from safetensors, so
    separate loads of one base inside one process share its pages physically: PSS shows that, RSS not."""
    out = {}
    for name, argv in SETUPS.items():
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MEMORY_CHILD, *map(str, a)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for a in argv(paths)
        ]
        for p in procs:
            assert p.stdout.readline().strip() == "ready", f"{name}: a memory probe failed"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        stats = [json.loads(p.stdout.readline()) for p in procs]
        for p in procs:
            p.wait(60)
        out[name] = {"processes": len(procs), **{k: sum(x[k] for x in stats) for k in stats[0]}}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


async def load(url: str, models: list[str], prompts: list[str], requests: int, max_tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)

    async def one(i):
        t0 = time.perf_counter()
        r = await client.chat.completions.create(
            model=models[i % len(models)],
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": prompts[i % len(prompts)]}],
            temperature=0.7,
            seed=i,
        )
        assert r.choices[0].message.content is not None and r.choices[0].finish_reason in ("stop", "length")
        return time.perf_counter() - t0, r.usage.completion_tokens

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(requests)))
    wall = time.perf_counter() - t0
    lat = sorted(x for x, _ in results)
    tokens = sum(n for _, n in results)
    await client.close()
    return {
        "requests": requests,
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "p50_s": round(statistics.median(lat), 2),
        "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
        "max_s": round(lat[-1], 2),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tunesmith-serve-bench"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--serial", type=int, default=5, help="requests sent one at a time afterwards (0: skip)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="passed to `tunesmith serve --threads`")
    ap.add_argument("--output", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = train_runs(args.workdir, args.runs)
    result = {"runs": [str(p) for p in paths]}
    if not args.skip_memory:
        result["memory"] = memory(paths)
        for name, m in result["memory"].items():
            print(
                f"memory: {name:>27} ({m['processes']} process(es)): RSS {m['VmRSS'] / 2**30:.2f} GiB = "
                f"anonymous {m['RssAnon'] / 2**30:.2f} + file-backed {m['RssFile'] / 2**30:.2f} "
                f"(peak {m['VmHWM'] / 2**30:.2f}), PSS {m['Pss'] / 2**30:.2f} GiB",
                flush=True,
            )

    if args.skip_load:
        print(json.dumps(result))
        return
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TUNESMITH_API_KEY"}
    log = (args.workdir / "server.log").open("w")  # a file, not a pipe: a full pipe would stall the server
    threads = ["--threads", str(args.threads)] if args.threads else []
    result["threads"] = args.threads
    server = subprocess.Popen(
        [sys.executable, "-m", "tunesmith", "serve", *map(str, paths), "--port", str(port), *threads],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"server did not start; see {args.workdir / 'server.log'}") from None
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/v1"
        models = [m["id"] for m in json.loads(urllib.request.urlopen(f"{url}/models").read())["data"]]
        tests = [json.loads(x) for x in (DEMO / "test.jsonl").read_text().splitlines() if x.strip()]
        prompts = [next(m["content"] for m in t["messages"] if m["role"] == "user") for t in tests]
        rss_idle = vm(server.pid, "VmRSS")
        asyncio.run(load(url, models, prompts, 4, 4))  # warm-up
        result["load"] = asyncio.run(load(url, models, prompts, args.requests, args.max_tokens))
        result["load"].update(
            models=models, max_tokens=args.max_tokens, server_rss_idle=rss_idle, server_peak_rss=vm(server.pid, "VmHWM")
        )
        print(f"load: {json.dumps(result['load'])}", flush=True)
        if args.serial:
            serial = [asyncio.run(load(url, models, prompts, 1, args.max_tokens)) for _ in range(args.serial)]
            tok = sum(s["completion_tokens"] for s in serial)
            result["serial"] = {
                "requests": args.serial,
                "completion_tokens": tok,
                "tokens_per_s": round(tok / sum(s["wall_s"] for s in serial), 1),
                "p50_s": round(statistics.median(s["p50_s"] for s in serial), 2),
            }
            print(f"one at a time: {json.dumps(result['serial'])}", flush=True)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
