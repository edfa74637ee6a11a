"""Turn normalised examples into token ids and labels with the model's own chat template.

The assistant spans are found by rendering each conversation prefix: the text of turn i is what
rendering turns [0..i] adds to rendering turns [0..i) plus the generation prompt. That works for any
template, including SmolLM2's, which has no `{% generation %}` markers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DataError

IGNORE = -100

# Used only when a tokenizer ships no template (base models); said out loud when it happens.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    line: int
    truncated: bool = False


def _plain(messages):
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def render(tokenizer, messages, add_generation_prompt=False) -> str:
    return tokenizer.apply_chat_template(_plain(messages), tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages) -> tuple[str, list[tuple[int, int, bool]]]:
    """The full rendered text and, per assistant turn, its (start, end, trained) character span.

    The span starts after the generation prompt and ends after the template's end-of-turn marker,
    so the model learns to stop; trailing whitespace after that marker is left out.
    """
    full = render(tokenizer, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        upto = full if i == len(messages) - 1 else render(tokenizer, messages[: i + 1])  # one render fewer
        if not full.startswith(upto) or not upto.startswith(before):
            raise ValueError(
                "the chat template does not render conversations prefix by prefix; cannot locate assistant turns"
            )
        end = len(upto.rstrip())
        spans.append((len(before), end, bool(m.get("weight", 1))))
    return full, spans


def encode_chat(tokenizer, messages, *, train_on="assistant") -> tuple[list[int], list[int]]:
    full, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    return label_spans(tokenizer, enc["input_ids"], enc["offset_mapping"], spans, train_on=train_on)


def label_spans(tokenizer, ids, offsets, spans, *, train_on="assistant") -> tuple[list[int], list[int]]:
    """Labels for a rendered chat's tokens: the assistant spans' tokens, EOS added where a turn lacks one.

    Separate from encode_chat so many chats can be tokenized in one batched call (`tunesmith check`)."""
    ids = list(ids)
    if train_on == "all":
        return list(ids), list(ids)
    labels = [IGNORE] * len(ids)
    eos = tokenizer.eos_token_id
    extra = []  # (index to insert after, eos) for templates that end a turn without EOS
    for start, end, trained in spans:
        last = None
        for k, (a, b) in enumerate(offsets):
            if b > start and a < end and b > a:  # overlap: a token may straddle the span's start
                if trained:
                    labels[k] = ids[k]
                last = k
        if last is not None and ids[last] != eos and eos is not None and trained:
            extra.append(last)
    for k in reversed(extra):
        ids.insert(k + 1, eos)
        labels.insert(k + 1, eos)
    return list(ids), labels


def encode_examples(tokenizer, examples, *, max_seq_len, overlong="truncate", train_on="assistant", path="data"):
    """Encode chat examples; returns (encoded, n_truncated, n_dropped)."""
    out, n_trunc, n_drop = [], 0, 0
    for ex in examples:
        if ex.messages is not None:
            try:
                ids, labels = encode_chat(tokenizer, ex.messages, train_on=train_on)
            except ValueError as e:
                raise DataError(path, ex.line, str(e)) from None
        else:  # a plain-text row in an SFT file: learn all of it, then stop
            ids = tokenizer(ex.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            labels = list(ids)
        truncated = len(ids) > max_seq_len
        if truncated:
            if overlong == "drop":
                n_drop += 1
                continue
            n_trunc += 1
            ids, labels = ids[:max_seq_len], labels[:max_seq_len]
        if all(label == IGNORE for label in labels[1:]):
            n_drop += 1  # nothing left to learn after truncation
            continue
        out.append(Encoded(ids, labels, ex.line, truncated))
    return out, n_trunc, n_drop


def pack_text(tokenizer, texts, *, block_size, separator_eos=True) -> list[Encoded]:
    """Concatenate documents (EOS between them unless they are slices of one file) into full blocks."""
    stream: list[int] = []
    for t in texts:
        stream.extend(tokenizer(t, add_special_tokens=False)["input_ids"])
        if separator_eos:
            stream.append(tokenizer.eos_token_id)
    n = len(stream) // block_size
    if n == 0 and stream:
        return [Encoded(stream, list(stream), 1)]
    return [
        Encoded(stream[i * block_size : (i + 1) * block_size], stream[i * block_size : (i + 1) * block_size], 1 + i)
        for i in range(n)
    ]
