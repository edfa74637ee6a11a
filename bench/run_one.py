"""One benchmark run of one system, in a process of its own; prints one JSON line on stdout.

Every system gets the same encoded examples (tunesmith's encoding: same tokens, same assistant-only labels),
the same LoRA config, learning rate, schedule, batch size and step count. Throughput counts real (non-pad)
tokens over the steps after the warm-up ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

LORA = dict(r=16, alpha=32, dropout=0.0)


def encoded(args, tokenizer):
    from tunesmith.data.formats import read_examples
    from tunesmith.data.tokenize import encode_examples

    _, examples = read_examples(args.data)
    enc, _, _ = encode_examples(
        tokenizer,
        examples[: args.rows],
        max_seq_len=args.max_len,
        overlong="truncate",
        train_on="assistant",
        path=args.data,
    )
    return enc


def matmul_gflops(size: int = 2048, reps: int = 8) -> float:
    """Plain fp32 matmul speed here and now, with torch's default threads: the ceiling a step can reach."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):  # best of three: a passing neighbour on the cores should not lower the ceiling
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def summarise(step_tokens: list[int], step_times: list[float], losses: list[float], warmup: int) -> dict:
    """step_times[i] = clock at the end of step i+1; throughput over steps warmup+1..N."""
    n = len(step_times)
    if n <= warmup:
        raise SystemExit(f"only {n} steps ran; need more than --warmup {warmup}")
    secs = step_times[-1] - step_times[warmup - 1] if warmup else step_times[-1]
    toks = sum(step_tokens[warmup:n])
    return {
        "steps": n,
        "tokens": toks,
        "seconds": round(secs, 3),
        "tokens_per_s": round(toks / secs, 2),
        "s_per_step": round(secs / (n - warmup), 3),
        "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 4),
        "losses": [round(x, 6) for x in losses],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }


def run_tunesmith(args, tokenizer, items, **settings):
    """`settings`: RunConfig fields that make a variant (padding_free=False, compile=True, method="full")."""
    import tunesmith

    tmp = Path(tempfile.mkdtemp(prefix="bench-ts-"))
    rows = [json.loads(x) for x in Path(args.data).read_text().splitlines() if x.strip()]
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[: args.rows]))
    (tmp / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[args.rows : args.rows + 2]))
    cfg = dict(
        model=args.model,
        data=str(tmp / "train.jsonl"),
        val_data=str(tmp / "val.jsonl"),
        output=str(tmp / "run"),
        max_steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        max_seq_len=args.max_len,
        seed=0,
        eval_every=10**6,
        tensorboard=False,
        early_stopping_patience=None,
        warmup_ratio=0.05,
        select_by="loss",
        **{"lora.r": LORA["r"], "lora.alpha": LORA["alpha"], "lora.dropout": LORA["dropout"]},
    )
    run = tunesmith.train({**cfg, **settings}, force=True)
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train_loss" in r]
    tokens = [b["tokens"] - a["tokens"] for a, b in zip([{"tokens": 0}] + train[:-1], train)]
    return summarise(tokens, [r["elapsed"] for r in train], [r["train_loss"] for r in train], args.warmup)


def run_hf(args, tokenizer, items, group_by_length=False, full=False):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from tunesmith.models.load import load_causal_lm

    model = load_causal_lm(args.model)
    if not full:
        model = get_peft_model(
            model,
            LoraConfig(
                r=LORA["r"],
                lora_alpha=LORA["alpha"],
                lora_dropout=LORA["dropout"],
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            ),
        )
    data = [{"input_ids": x.input_ids, "labels": x.labels} for x in items]
    step_tokens, times, losses = [], [], []
    pending = []

    def collate(batch):
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(b["input_ids"]), torch.tensor(b["labels"]), 1
        pending.append(int(mask.sum()))
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter())
            step_tokens.append(pending.pop(0))

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    targs = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-hf-"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=args.full_lr if full else args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=int(0.05 * args.steps),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        remove_unused_columns=False,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if group_by_length:
        for d in data:
            d["length"] = len(d["input_ids"])
    Trainer(model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[Clock()]).train()
    return summarise(step_tokens, times, losses, args.warmup)


def run_trl(args, tokenizer, items, packed=False):
    """TRL's SFTTrainer on the same pre-tokenized rows (its own collator; our labels kept as they are).

    Its defaults except bf16, which TRL turns on even on CPU, where it runs ~20x slower (3.6 tokens/s
    measured here); or with its padding-free BFD packing (`packed`)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from tunesmith.models.load import load_causal_lm

    data = Dataset.from_list([{"input_ids": x.input_ids, "labels": x.labels} for x in items])
    step_tokens, times, losses, pending = [], [], [], []

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter())
            step_tokens.append(sum(pending))
            pending.clear()

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    cfg = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"),
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=int(0.05 * args.steps),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        max_length=args.max_len,
        packing=packed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        bf16=False,
    )
    trainer = SFTTrainer(
        model=load_causal_lm(args.model),
        args=cfg,
        train_dataset=data,
        peft_config=LoraConfig(
            r=LORA["r"],
            lora_alpha=LORA["alpha"],
            lora_dropout=LORA["dropout"],
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    inner = trainer.data_collator  # TRL refuses a custom collator with padding-free; wrap its own to count tokens

    def collate(batch):
        out = inner(batch)
        mask = out.get("attention_mask")
        pending.append(int(mask.sum()) if mask is not None else int(out["input_ids"].numel()))
        return out

    trainer.data_collator = collate
    trainer.train()
    return summarise(step_tokens, times, losses, args.warmup)


SYSTEMS = {
    "tunesmith": run_tunesmith,
    "tunesmith-padded": lambda a, t, i: run_tunesmith(a, t, i, padding_free=False),  # the convergence reference
    "tunesmith-compile": lambda a, t, i: run_tunesmith(a, t, i, compile=True),
    "tunesmith-ckpt": lambda a, t, i: run_tunesmith(a, t, i, gradient_checkpointing=True),
    "tunesmith-full": lambda a, t, i: run_tunesmith(a, t, i, method="full", lr=a.full_lr),
    "hf": run_hf,
    "hf-full": lambda a, t, i: run_hf(a, t, i, full=True),
    "hf-grouped": lambda a, t, i: run_hf(a, t, i, group_by_length=True),
    "trl": run_trl,
    "trl-packed": lambda a, t, i: run_trl(a, t, i, packed=True),
}


RUN_ARGS = ("model", "data", "rows", "steps", "warmup", "batch", "max_len", "lr", "full_lr")


def add_run_args(p: argparse.ArgumentParser, data_default=None) -> None:
    """The settings every system shares (the harness passes them on to each run)."""
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", type=Path, default=data_default, required=data_default is None)
    p.add_argument("--rows", type=int, default=128, help="training examples")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps")
    p.add_argument("--warmup", type=int, default=2, help="steps left out of the timing")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3, help="LoRA learning rate")
    p.add_argument("--full-lr", type=float, default=5e-5, help="full fine-tuning learning rate")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("system", choices=sorted(SYSTEMS))
    add_run_args(p)
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tunesmith.models.load import load_tokenizer

    tokenizer = load_tokenizer(args.model)
    items = encoded(args, tokenizer)
    gflops = matmul_gflops()
    try:
        result = {**SYSTEMS[args.system](args, tokenizer, items), "matmul_gflops": round(gflops, 1)}
    except ImportError as e:
        result = {"missing": f"{e.name or e}: pip install -e '.[bench]'"}
    print(json.dumps({"system": args.system, **result}), flush=True)


if __name__ == "__main__":
    main()
