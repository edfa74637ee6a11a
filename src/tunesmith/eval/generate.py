"""Generation: batched and length-sorted for evaluation, streamed for chat. Greedy unless told otherwise."""

from __future__ import annotations

import torch

from ..data.tokenize import render
from ..models.merged import merged
from .decode import decode
from .decode import supported as decode_supported
from .text import Detokenizer


def _stop_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return sorted(i for i in ids if i is not None)


def _gen_kwargs(model, tokenizer, max_new_tokens, temperature, top_p):
    kw = dict(
        max_new_tokens=max_new_tokens,
        eos_token_id=_stop_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    if temperature and temperature > 0:
        kw.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kw


def encode(tokenizer, conversation) -> list[int]:
    """Prompt token ids: a conversation rendered with the chat template up to the assistant's turn, or a
    plain string as it is."""
    text = (
        conversation if isinstance(conversation, str) else render(tokenizer, conversation, add_generation_prompt=True)
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def generate_batch(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int | list[int] = 128,
    batch_size: int = 32,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = 0,
    progress=None,
) -> list[str]:
    """Answers for many conversations (or continuations of plain strings). Our continuous-batching loop
    (eval/decode.py) with LoRA merged for the duration where the model allows; else HF `generate` on
    length-sorted batches. `batch_size`: rows that step together; `max_new_tokens`: one limit, or one per row."""
    model.eval()
    prompts = [encode(tokenizer, c) for c in conversations]
    kw = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, temperature=temperature, top_p=top_p)
    if decode_supported(model):
        out = answer_ids(model, prompts, stops=_stop_ids(model, tokenizer), seed=seed, progress=progress, **kw)
    else:
        out = hf_answer_ids(model, tokenizer, prompts, progress=progress, **kw)
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]


def answer_ids(
    model, prompts, *, stops, max_new_tokens, batch_size=32, temperature=0.0, top_p=1.0, seed=0, progress=None
) -> list[list[int]]:
    """Answer token ids (stop token left out) for prompt token ids, by our decode loop with LoRA merged.
    Shortest prompts first: rows admitted together have similar lengths, so little padding is attended to."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    limits = [max_new_tokens[i] for i in order] if isinstance(max_new_tokens, list) else max_new_tokens
    with merged(model):
        events = decode(
            model,
            [prompts[i] for i in order],
            max_new_tokens=limits,
            stop_ids=stops,
            batch_size=batch_size,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )
        for j, token in events:
            if token is not None:
                out[order[j]].append(token)
            elif progress:
                progress(1)
    return out


@torch.no_grad()
def hf_answer_ids(
    model, tokenizer, prompts, *, max_new_tokens, batch_size=32, temperature=0.0, top_p=1.0, progress=None
) -> list[list[int]]:
    """The same by HF `generate` on length-sorted, left-padded batches: for models our loop cannot run, and
    as the benchmark's baseline. Each answer is cut at its first stop token."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[list[int]] = [[] for _ in prompts]
    limit = (lambda i: max_new_tokens[i]) if isinstance(max_new_tokens, list) else (lambda i: max_new_tokens)
    longest = max(max_new_tokens) if isinstance(max_new_tokens, list) else max_new_tokens
    kw = _gen_kwargs(model, tokenizer, longest, temperature, top_p)
    stops = set(kw["eos_token_id"])
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(idx):  # left padding keeps every prompt's end next to its answer
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kw)
        for row, i in enumerate(idx):
            for t in out[row, width : width + limit(i)].tolist():  # greedy: the same tokens as with its own limit
                if t in stops:
                    break
                answers[i].append(t)
        if progress:
            progress(len(idx))
    return answers


def stream(
    model,
    tokenizer,
    conversation: list[dict],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
):
    """Yield text pieces as they are generated, in this thread (Ctrl-C stops it at once)."""
    model.eval()
    prompt = encode(tokenizer, conversation)
    if not decode_supported(model):  # no streaming here: the whole answer at once
        ids = hf_answer_ids(
            model, tokenizer, [prompt], max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p
        )
        yield tokenizer.decode(ids[0], skip_special_tokens=True)
        return
    detok = Detokenizer(tokenizer)
    with merged(model):
        tokens = decode(
            model,
            [prompt],
            max_new_tokens=max_new_tokens,
            stop_ids=_stop_ids(model, tokenizer),
            batch_size=1,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
        )
        for _, token in tokens:
            piece = detok.flush() if token is None else detok.push(token)
            if piece:
                yield piece
