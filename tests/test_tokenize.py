"""Token-level checks of chat encoding with SmolLM2's real tokenizer and ChatML template."""

from __future__ import annotations

import copy

import pytest

from tunesmith.data.formats import Example
from tunesmith.data.tokenize import IGNORE, encode_chat, encode_examples, pack_text
from tunesmith.errors import DataError

PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

CONVO = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4, of course."},
]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from tunesmith.models.registry import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))


@pytest.fixture(scope="module")
def plain_tok(tok):
    """A copy whose chat template never emits the EOS token."""
    t = copy.deepcopy(tok)
    t.chat_template = PLAIN_TEMPLATE
    return t


def runs(labels):
    """Contiguous runs of labelled positions, as lists of indices."""
    out, cur = [], []
    for k, lab in enumerate(labels):
        if lab != IGNORE:
            cur.append(k)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def with_weights(messages, *weights):
    it = iter(weights)
    return [dict(m, weight=next(it)) if m["role"] == "assistant" else dict(m) for m in messages]


def test_tokenizer_facts(tok):
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|im_end|>"
    assert tok.eos_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_assistant_only_masking_token_by_token(tok):
    ids, labels = encode_chat(tok, CONVO)
    rendered = tok.apply_chat_template(CONVO, tokenize=False)
    assert rendered.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert ids == tok(rendered, add_special_tokens=False)["input_ids"]
    assert len(labels) == len(ids)
    # every label is either IGNORE or the token itself
    assert all(lab in (IGNORE, i) for i, lab in zip(ids, labels))
    spans = runs(labels)
    assert [tok.decode([ids[k] for k in r]) for r in spans] == [
        "Hello! How can I help?<|im_end|>",
        "4, of course.<|im_end|>",
    ]
    for r in spans:
        assert ids[r[-1]] == tok.eos_token_id
        # each run starts right after the generation prompt ("assistant" is two tokens)
        assert tok.decode(ids[r[0] - 4 : r[0]]) == "<|im_start|>assistant\n"
    # the trailing "\n" after the last <|im_end|> is not labelled
    assert tok.decode(ids[spans[-1][-1] + 1 :]) == "\n"


def test_default_system_prompt_is_not_labelled(tok):
    msgs = CONVO[1:3]
    ids, labels = encode_chat(tok, msgs)
    rendered = tok.apply_chat_template(msgs, tokenize=False)
    assert rendered.startswith("<|im_start|>system\n") and "SmolLM" in rendered
    assert ids == tok(rendered, add_special_tokens=False)["input_ids"]
    assert [tok.decode([ids[k] for k in r]) for r in runs(labels)] == ["Hello! How can I help?<|im_end|>"]


def test_weight_zero_first_turn(tok):
    msgs = with_weights(CONVO, 0, 1)
    ids, labels = encode_chat(tok, msgs)
    full_ids, _ = encode_chat(tok, CONVO)
    assert ids == full_ids  # weights change labels only
    assert [tok.decode([ids[k] for k in r]) for r in runs(labels)] == ["4, of course.<|im_end|>"]


def test_weight_zero_all_turns_labels_nothing(tok):
    ids, labels = encode_chat(tok, with_weights(CONVO, 0, 0))
    assert labels == [IGNORE] * len(ids)


def test_train_on_all(tok):
    ids, labels = encode_chat(tok, CONVO, train_on="all")
    assert labels == ids
    assert ids == tok(tok.apply_chat_template(CONVO, tokenize=False), add_special_tokens=False)["input_ids"]


def test_template_without_eos_gets_one_after_each_assistant_turn(tok, plain_tok):
    msgs = CONVO[1:]
    rendered = plain_tok.apply_chat_template(msgs, tokenize=False)
    assert (
        rendered == "user: Hi there\nassistant: Hello! How can I help?\nuser: What is 2+2?\nassistant: 4, of course.\n"
    )
    ids, labels = encode_chat(plain_tok, msgs)
    eos = plain_tok.eos_token_id
    base = plain_tok(rendered, add_special_tokens=False)["input_ids"]
    assert eos not in base
    assert len(ids) == len(base) + 2
    assert [i for i in ids if i != eos] == base
    eos_pos = [k for k, i in enumerate(ids) if i == eos]
    assert len(eos_pos) == 2
    assert all(labels[k] == eos for k in eos_pos)  # the added EOS is learned
    spans = runs(labels)
    assert [r[-1] for r in spans] == eos_pos
    # ' Hello' straddles the span start (the space belongs to the prompt), so it is labelled whole
    assert [plain_tok.decode([ids[k] for k in r]) for r in spans] == [
        " Hello! How can I help?<|im_end|>",
        "4, of course.<|im_end|>",
    ]
    # each EOS sits right before the template's own "\n"
    assert [plain_tok.decode([ids[k + 1]]) for k in eos_pos] == ["\n", "\n"]


def test_template_that_is_not_prefix_stable_is_a_data_error(tok):
    t = copy.deepcopy(tok)
    t.chat_template = "{{ messages|length }}\n" + PLAIN_TEMPLATE
    ex = Example(line=7, messages=[dict(m, weight=1) for m in CONVO[1:3]])
    with pytest.raises(DataError) as info:
        encode_examples(t, [ex], max_seq_len=512, path="data.jsonl")
    assert str(info.value) == (
        "data.jsonl:7: the chat template does not render conversations prefix by prefix; cannot locate assistant turns"
    )


def _example(line, user, answer):
    return Example(
        line=line,
        messages=[
            {"role": "user", "content": user, "weight": 0},
            {"role": "assistant", "content": answer, "weight": 1},
        ],
    )


def test_encode_examples_fits_and_text_rows(tok):
    exs = [_example(3, "Q?", "A."), Example(line=5, text="plain words")]
    out, n_trunc, n_drop = encode_examples(tok, exs, max_seq_len=512)
    assert (n_trunc, n_drop) == (0, 0)
    assert [e.line for e in out] == [3, 5]
    assert [e.truncated for e in out] == [False, False]
    ids, labels = encode_chat(tok, exs[0].messages)
    assert (out[0].input_ids, out[0].labels) == (ids, labels)
    text_ids = tok("plain words", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert out[1].input_ids == text_ids and out[1].labels == text_ids


def test_encode_examples_truncate(tok):
    ex = _example(1, "Tell me a story.", "Once upon a time there was a very long story about many things.")
    ids, labels = encode_chat(tok, ex.messages)
    cut = len(ids) - 5
    out, n_trunc, n_drop = encode_examples(tok, [ex, _example(2, "Q?", "A.")], max_seq_len=cut, overlong="truncate")
    assert (n_trunc, n_drop) == (1, 0)
    assert len(out) == 2
    assert out[0].truncated and not out[1].truncated
    assert len(out[0].input_ids) == cut
    assert out[0].input_ids == ids[:cut] and out[0].labels == labels[:cut]


def test_encode_examples_drop(tok):
    ex = _example(1, "Tell me a story.", "Once upon a time there was a very long story about many things.")
    ids, _ = encode_chat(tok, ex.messages)
    short = _example(2, "Q?", "A.")
    out, n_trunc, n_drop = encode_examples(tok, [ex, short], max_seq_len=len(ids) - 1, overlong="drop")
    assert (n_trunc, n_drop) == (0, 1)
    assert [e.line for e in out] == [2]
    # exactly max_seq_len is not overlong
    out, n_trunc, n_drop = encode_examples(tok, [ex], max_seq_len=len(ids), overlong="drop")
    assert (len(out), n_trunc, n_drop) == (1, 0, 0)


def test_encode_examples_drops_when_all_labels_are_past_the_cut(tok):
    ex = _example(4, "word " * 60, "Yes.")
    ids, labels = encode_chat(tok, ex.messages)
    first_label = next(k for k, lab in enumerate(labels) if lab != IGNORE)
    assert first_label > 40
    out, _, n_drop = encode_examples(tok, [ex], max_seq_len=32, overlong="truncate")
    assert out == [] and n_drop == 1


def test_pack_text_with_eos_separators(tok):
    texts = ["The quick brown fox jumps over the lazy dog.", "Hello world.", "A third, longer document here."]
    eos = tok.eos_token_id
    stream = []
    for t in texts:
        stream += tok(t, add_special_tokens=False)["input_ids"] + [eos]
    blocks = pack_text(tok, texts, block_size=4, separator_eos=True)
    assert len(blocks) == len(stream) // 4
    assert all(len(b.input_ids) == 4 for b in blocks)
    assert [b.input_ids for b in blocks] == [stream[i : i + 4] for i in range(0, 4 * len(blocks), 4)]
    assert all(b.labels == b.input_ids for b in blocks)
    assert [b.line for b in blocks] == list(range(1, len(blocks) + 1))
    flat = [i for b in blocks for i in b.input_ids]
    assert flat.count(eos) == stream[: len(flat)].count(eos) >= 2


def test_pack_text_without_separators(tok):
    texts = ["The quick brown fox jumps over the lazy dog.", "Hello world."]
    stream = [i for t in texts for i in tok(t, add_special_tokens=False)["input_ids"]]
    blocks = pack_text(tok, texts, block_size=3, separator_eos=False)
    assert [b.input_ids for b in blocks] == [stream[i : i + 3] for i in range(0, 3 * (len(stream) // 3), 3)]
    assert all(len(b.input_ids) == 3 for b in blocks)
    assert all(tok.eos_token_id not in b.input_ids for b in blocks)


def test_pack_text_shorter_than_one_block(tok):
    ids = tok("Hi", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    blocks = pack_text(tok, ["Hi"], block_size=64)
    assert len(blocks) == 1
    assert blocks[0].input_ids == ids and blocks[0].labels == ids
    assert pack_text(tok, [], block_size=8) == []
