"""Held-out evaluation: loss/perplexity, and for SFT generated answers scored against references.

The base model is scored the same way, so every report shows whether fine-tuning helped.
"""

from __future__ import annotations

import functools
import math
import sys

import torch

from ..data.batch import ordered_loader
from .generate import generate_batch
from .metrics import mean_scores, row_scores, score_generations


@torch.no_grad()
def evaluate_loss(loss_mod, loader, reduce=None) -> dict:
    was_training = loss_mod.training
    loss_mod.eval()
    tot = None
    with torch.no_grad():
        for batch in loader:
            loss, n, correct = loss_mod(**batch)
            row = torch.tensor([loss.item(), float(n), float(correct)], dtype=torch.float64, device=loss.device)
            tot = row if tot is None else tot + row
    if tot is None:
        tot = torch.zeros(3, dtype=torch.float64)
    if reduce is not None:
        tot = reduce(tot)
    loss_mod.train(was_training)
    mean = (tot[0] / tot[1].clamp(min=1)).item()
    return {
        "eval_loss": mean,
        "eval_perplexity": math.exp(min(mean, 50)),
        "eval_token_accuracy": (tot[2] / tot[1].clamp(min=1)).item(),
    }


def _score(
    model, task, meta, tokenizer, encoded, prompts, refs, musts, max_new_tokens, batch_size, gen_batch_size, label, log
) -> dict:
    res = {}
    if encoded:
        loader = ordered_loader(encoded, batch_size, functools.partial(task.collate_batch, tokenizer=tokenizer))
        m = evaluate_loss(task.loss_module(model, meta), loader)
        res = {"loss": m["eval_loss"], "perplexity": m["eval_perplexity"], "token_accuracy": m["eval_token_accuracy"]}
    if prompts:
        res.update(generated_scores(model, tokenizer, prompts, refs, musts, max_new_tokens, gen_batch_size, label, log))
    return res


def generated_scores(model, tokenizer, prompts, refs, musts, max_new_tokens, batch_size, label, log, questions=None):
    """Greedy answers to `prompts` scored against `refs`: the mean scores, 10 samples (`questions`, default the
    prompts' last turns, as their prompt), and the private "_answers" and per-row "_rows" (for the baselines'
    paired bootstrap)."""
    log(f"{label}: generating {len(prompts)} answers...")
    preds = generate_batch(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    rows = row_scores(preds, refs, musts)
    questions = questions or [p[-1]["content"] for p in prompts]
    samples = [{"prompt": q, "reference": r, "answer": a} for q, r, a in list(zip(questions, refs, preds))[:10]]
    return {**mean_scores(rows), "samples": samples, "_answers": preds, "_rows": rows}


def _run_systems(model, tokenizer, plan, keys: list[str], result: dict, **kw) -> None:
    """Score each of the baseline plan's `keys` (few_shot, rag, tuned_rag) with `model` into result[key], like
    the base and tuned columns, the samples showing the test question rather than the built prompt."""
    from .verdict import LABELS

    for key in keys:
        prompts, label = plan.prompts[key], LABELS[key]
        res = generated_scores(
            model, tokenizer, prompts, plan.refs, plan.musts, label=label, questions=plan.questions, **kw
        )
        result[key] = {**res, "prompt_info": plan.notes[key]}


def answer_budget(tokenizer, refs: list[str], cap: int) -> int:
    """New tokens to allow: 1.5x the longest reference + 8, at most `cap` (answers rarely need more)."""
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in refs)
    return min(cap, int(longest * 1.5) + 8)


def answer_scores(model, tokenizer, examples, batch_size: int = 64, cap: int = 256) -> dict:
    """token_f1 (and contains, where rows carry must_contain) of greedy answers to the examples' last turns.
    Answers are capped near the longest reference (x1.5 + 8 tokens, at most `cap`), which bounds the cost."""
    return joint_answer_scores(model, tokenizer, [(examples, cap)], batch_size)[0]


def joint_answer_scores(model, tokenizer, groups: list[tuple[list, int]], batch_size: int = 64) -> list[dict]:
    """`answer_scores` of several sets of examples, each with its own cap, answered in one decode pass (issue 29:
    an evaluation's validation rows and general-probe questions step together, instead of one pass each)."""
    prompts, limits, refs, musts = [], [], [], []
    for examples, cap in groups:
        these = [e.messages[-1]["content"] for e in examples]
        limits += [answer_budget(tokenizer, these, cap)] * len(these) if these else []
        prompts += [e.messages[:-1] for e in examples]
        refs += these
        musts += [e.must_contain for e in examples]
    preds = generate_batch(model, tokenizer, prompts, max_new_tokens=limits, batch_size=batch_size) if prompts else []
    out, start = [], 0
    for examples, _ in groups:
        end = start + len(examples)
        scores = score_generations(preds[start:end], refs[start:end], musts[start:end]) if examples else {}
        out.append({k: scores[k] for k in ("contains", "token_f1") if scores.get(k) is not None})
        start = end
    return out


def evaluate_run(
    run,
    data_path: str,
    *,
    base: bool = True,
    batch_size: int = 16,
    gen_batch_size: int = 64,
    max_new_tokens: int | None = None,
    log=None,
    baselines=None,
    shots: int = 4,
    top_k: int = 4,
    docs=None,
    train_path=None,
    gpu: dict | None = None,
    embedder: str = "minilm-l6",
    retrieval: str = "hybrid",
) -> dict:
    """{"tuned": metrics, "base": metrics or None} on a held-out file.

    Generation uses large batches because they pay on CPU: 104 short answers took 43 s at batch 64
    against 74 s at batch 16.

    `baselines` (eval/baselines.py: zero-shot, few-shot, rag, tuned+rag; parsed and checked by Run.evaluate)
    add "few_shot", "rag", "tuned_rag", "retrieval" and "verdict"; `train_path` (Run.evaluate's default: the
    run's training file) gives the few-shot examples and the pairs rag retrieves from, `docs` a text file or
    folder to retrieve from instead; `retrieval`: hybrid (BM25 and `embedder` fused), dense or bm25; `gpu`: the
    reference GPU of the verdict's cost estimate (config.REFERENCE_GPU).
    """
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    cfg = run.config
    tokenizer = run.tokenizer
    task = run.task
    n_rows, encoded, chats = task.eval_items(cfg, tokenizer, data_path)
    prompts = [e.messages[:-1] for e in chats]
    refs = [e.messages[-1]["content"] for e in chats]
    musts = [e.must_contain for e in chats]
    if max_new_tokens is None and refs:
        max_new_tokens = answer_budget(tokenizer, refs, 512)
    args = (task, run.meta, tokenizer, encoded, prompts, refs, musts, max_new_tokens, batch_size, gen_batch_size)
    plan = None
    if baselines:  # the plan (training file, retrieval) fails before any answer is generated
        from . import baselines as bl

        base = base or "zero-shot" in baselines
        opts = dict(shots=shots, top_k=top_k, docs=docs, train_path=train_path, embedder=embedder, retrieval=retrieval)
        plan = bl.plan(run, prompts, refs, musts, baselines, max_new_tokens=max_new_tokens, log=log, **opts)
        gen = dict(max_new_tokens=max_new_tokens, batch_size=gen_batch_size, log=log)
    result = {"rows": n_rows, "tuned": _score(run.model, *args, "tuned", log), "base": None}
    if base or (plan and plan.base_keys()):
        with run.base_model() as base_model:
            if base:
                result["base"] = _score(base_model, *args, "base", log)
            if plan:
                _run_systems(base_model, tokenizer, plan, plan.base_keys(), result, **gen)
    if plan:
        _run_systems(run.model, tokenizer, plan, plan.tuned_keys(), result, **gen)
        if plan.retrieval:
            result["retrieval"] = plan.retrieval
        result["verdict"] = bl.generation_verdict(result, plan, run.summary, gpu, cfg.method)
    return result
