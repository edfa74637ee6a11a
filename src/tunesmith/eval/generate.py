"""Generation: batched and length-sorted for evaluation, streamed for chat. Greedy unless told otherwise."""

from __future__ import annotations

import threading

import torch

from ..data.tokenize import render


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


@torch.no_grad()
def generate_batch(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    temperature: float = 0.0,
    top_p: float = 1.0,
    progress=None,
) -> list[str]:
    """Answers for many conversations (or continuations of plain strings); similar lengths share a batch
    so little time goes to padding."""
    model.eval()
    prompts = [
        tokenizer(
            c if isinstance(c, str) else render(tokenizer, c, add_generation_prompt=True), add_special_tokens=False
        )["input_ids"]
        for c in conversations
    ]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers: list[str] = [""] * len(prompts)
    kw = _gen_kwargs(model, tokenizer, max_new_tokens, temperature, top_p)
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
            answers[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
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
):
    """Yield text pieces as they are generated."""
    from transformers import TextIteratorStreamer

    model.eval()
    enc = tokenizer(
        render(tokenizer, conversation, add_generation_prompt=True), add_special_tokens=False, return_tensors="pt"
    )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kw = _gen_kwargs(model, tokenizer, max_new_tokens, temperature, top_p)
    thread = threading.Thread(
        target=model.generate,
        kwargs=dict(
            input_ids=enc["input_ids"].to(model.device),
            attention_mask=enc["attention_mask"].to(model.device),
            streamer=streamer,
            **kw,
        ),
    )
    thread.start()
    try:
        yield from streamer
    finally:
        thread.join()
