"""Reading data files: every file type and row layout, exact `file:line:` errors, and batching helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tunesmith.data.batch import LengthBucketSampler, collate, holdout_split
from tunesmith.data.formats import Example, read_examples
from tunesmith.data.load import load_rows
from tunesmith.data.tokenize import IGNORE, Encoded
from tunesmith.errors import DataError, TunesmithError


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _msgs(*turns):
    """(role, content[, weight]) tuples -> normalised message dicts."""
    return [{"role": t[0], "content": t[1], "weight": t[2] if len(t) > 2 else 1} for t in turns]


def _error(path, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        read_examples(path, **kw)
    return info.value


# --------------------------------------------------------------------------- formats and layouts


def test_jsonl_messages_multi_turn_with_system_and_weights(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!", "weight": 0},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4", "weight": 1},
            ]
        },
        {
            "messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}],
            "must_contain": "paris",
        },
    ]
    fmt, examples = read_examples(_jsonl(tmp_path / "chat.jsonl", rows))
    assert fmt == "messages"
    assert len(examples) == 2
    assert examples[0] == Example(
        line=1,
        messages=_msgs(
            ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!", 0), ("user", "2+2?"), ("assistant", "4", 1)
        ),
    )
    assert examples[0].text is None and examples[0].must_contain == []
    assert examples[1].line == 2
    assert examples[1].messages == _msgs(("user", "Capital of France?"), ("assistant", "Paris"))
    assert examples[1].must_contain == ["paris"]


def test_jsonl_blank_lines_keep_real_line_numbers(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"text": "one"}\n\n   \n{"text": "two"}\n')
    fmt, examples = read_examples(p)
    assert fmt == "text"
    assert [(e.line, e.text) for e in examples] == [(1, "one"), (4, "two")]


def test_jsonl_text_rows(tmp_path):
    p = _jsonl(tmp_path / "t.jsonl", [{"text": "alpha beta"}, {"text": "gamma\ndelta"}])
    fmt, examples = read_examples(p)
    assert fmt == "text"
    assert [e.text for e in examples] == ["alpha beta", "gamma\ndelta"]
    assert all(e.messages is None for e in examples)


def test_csv_prompt_completion(tmp_path):
    p = tmp_path / "pc.csv"
    p.write_text('prompt,completion\nWhat is 1+1?,2\n"Say ""hi""","hi, there"\n')
    fmt, examples = read_examples(p)
    assert fmt == "prompt_completion"
    assert [e.line for e in examples] == [2, 3]
    assert examples[0].messages == _msgs(("user", "What is 1+1?", 0), ("assistant", "2", 1))
    assert examples[1].messages == _msgs(("user", 'Say "hi"', 0), ("assistant", "hi, there", 1))


def test_csv_multiline_field_keeps_start_line_of_next_row(tmp_path):
    p = tmp_path / "pc.csv"
    p.write_text('prompt,completion\n"two\nlines",a\nq,\n')  # row 2 spans lines 2-3; row on line 4 is bad
    err = _error(p)
    assert str(err) == f"{p}:4: field 'completion' is empty"


def test_json_array_alpaca_with_and_without_input(tmp_path):
    rows = [
        {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
        {"instruction": "Name a colour.", "input": "", "output": "blue"},
        {"instruction": "Name a fruit.", "output": "apple"},
    ]
    p = tmp_path / "alpaca.json"
    p.write_text(json.dumps(rows, indent=2))
    fmt, examples = read_examples(p)
    assert fmt == "alpaca"
    assert examples[0].messages == _msgs(("user", "Translate to French.\n\ncat", 0), ("assistant", "chat", 1))
    assert examples[1].messages == _msgs(("user", "Name a colour.", 0), ("assistant", "blue", 1))
    assert examples[2].messages == _msgs(("user", "Name a fruit.", 0), ("assistant", "apple", 1))
    # indent=2: "[" on line 1, each object is 5 or 4 lines long
    assert [e.line for e in examples] == [2, 7, 12]


def test_json_array_gpteacher_response_variant(tmp_path):
    rows = [
        {"instruction": "Summarise.", "input": "A long text.", "response": "Short."},
        {"instruction": "Greet.", "input": "", "response": "Hello."},
    ]
    p = tmp_path / "gpteacher.json"
    p.write_text(json.dumps(rows))
    fmt, examples = read_examples(p)
    assert fmt == "alpaca"
    assert examples[0].messages == _msgs(("user", "Summarise.\n\nA long text.", 0), ("assistant", "Short.", 1))
    assert examples[1].messages == _msgs(("user", "Greet.", 0), ("assistant", "Hello.", 1))


def test_json_object_with_data_array(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"data": [{"text": "a"}, {"text": "b"}]}))
    fmt, examples = read_examples(p)
    assert fmt == "text"
    assert [e.text for e in examples] == ["a", "b"]


def test_parquet_sharegpt_conversations(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {
            "conversations": [
                {"from": "system", "value": "You are terse."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hey."},
                {"from": "human", "value": "Bye"},
                {"from": "gpt", "value": "Bye."},
            ]
        },
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
    ]
    p = tmp_path / "share.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p)
    fmt, examples = read_examples(p)
    assert fmt == "sharegpt"
    assert [e.line for e in examples] == [1, 2]
    assert examples[0].messages == _msgs(
        ("system", "You are terse."), ("user", "Hi"), ("assistant", "Hey."), ("user", "Bye"), ("assistant", "Bye.")
    )
    assert examples[1].messages == _msgs(("user", "Q"), ("assistant", "A"))


def test_parquet_partial_weights_default_to_one(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {
            "conversations": [
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hey.", "weight": 0},
                {"from": "human", "value": "Bye"},
                {"from": "gpt", "value": "Bye."},
            ]
        }
    ]
    p = tmp_path / "share.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p)
    _, examples = read_examples(p)
    assert [m["weight"] for m in examples[0].messages] == [1, 0, 1, 1]


def test_txt_paragraphs_restore_file(tmp_path):
    content = "First line.\nsecond line.\n\nSecond para.\n\n\nThird para.\nend"
    p = tmp_path / "book.txt"
    p.write_text(content)
    fmt, examples = read_examples(p)
    assert fmt == "text"
    assert [(e.line, e.text) for e in examples] == [
        (1, "First line.\nsecond line.\n\n"),
        (4, "Second para.\n\n"),
        (7, "\nThird para.\nend"),
    ]
    assert "".join(e.text for e in examples) == content


def test_txt_trailing_blank_lines_restore_file(tmp_path):
    content = "a\n\nb\n\n\n"
    p = tmp_path / "t.txt"
    p.write_text(content)
    assert "".join(r["text"] for _, r in load_rows(p)) == content


def test_column_mapping(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text("question,answer,extra\nWho?,Me,x\n")
    fmt, examples = read_examples(p, columns={"question": "prompt", "answer": "completion"})
    assert fmt == "prompt_completion"
    assert examples[0].messages == _msgs(("user", "Who?", 0), ("assistant", "Me", 1))
    # load_rows keeps unmapped columns as they are
    assert load_rows(p, {"question": "prompt"}) == [(2, {"prompt": "Who?", "answer": "Me", "extra": "x"})]


def test_utf8_bom_is_accepted(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"text": "hi"}\n')
    assert read_examples(p)[1][0].text == "hi"


# --------------------------------------------------------------------------- errors: file:line: problem


def test_invalid_json_line_3(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n{"text": "c",}\n{"text": "d"}\n')
    err = _error(p)
    assert isinstance(err, TunesmithError)
    assert err.line == 3
    assert str(err) == f"{p}:3: invalid JSON (Expecting property name enclosed in double quotes at column 14)"


def test_missing_field(tmp_path):
    p = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "p", "completion": "c"}, {"prompt": "p2"}])
    assert str(_error(p)) == f"{p}:2: missing field 'completion'"


def test_null_field_is_missing(tmp_path):
    p = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "p", "completion": None}])
    assert str(_error(p)) == f"{p}:1: missing field 'completion'"


def test_empty_assistant_content(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  \n"}]},
    ]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == f"{p}:2: messages[1].content: empty assistant turn"


def test_empty_completion(tmp_path):
    p = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "p", "completion": " "}])
    assert str(_error(p)) == f"{p}:1: field 'completion' is empty"


def test_unknown_role(tmp_path):
    rows = [{"messages": [{"role": "human", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == (
        f"{p}:1: messages[0].role: unknown role 'human' (expected one of assistant, system, user)"
    )


def test_unknown_sharegpt_role(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}]}]
    p = _jsonl(tmp_path / "s.jsonl", rows)
    assert str(_error(p)) == (
        f"{p}:1: conversations[1].from: unknown role 'robot' "
        "(expected one of assistant, bot, gpt, human, model, system, user)"
    )


def test_no_assistant_turn(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == f"{p}:1: field 'messages' has no assistant turn"


def test_last_turn_not_assistant(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "more?"},
            ]
        }
    ]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == f"{p}:1: field 'messages': the last turn must be the assistant's"


def test_empty_messages_list(tmp_path):
    p = _jsonl(tmp_path / "m.jsonl", [{"messages": []}])
    assert str(_error(p)) == f"{p}:1: field 'messages' must be a non-empty list of turns"


def test_content_wrong_type(tmp_path):
    rows = [{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "a"}]}]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == f"{p}:1: messages[0].content must be a string"


def test_prompt_wrong_type(tmp_path):
    p = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "ok", "completion": "ok"}, {"prompt": 7, "completion": "c"}])
    assert str(_error(p)) == f"{p}:2: field 'prompt' must be a string, got int"


@pytest.mark.parametrize("weight", [2, -1, "1", 0.5])
def test_bad_weight(tmp_path, weight):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": weight}]}]
    p = _jsonl(tmp_path / "m.jsonl", rows)
    assert str(_error(p)) == f"{p}:1: messages[1].weight must be 0 or 1, got {weight!r}"


def test_bad_must_contain(tmp_path):
    p = _jsonl(tmp_path / "pc.jsonl", [{"prompt": "p", "completion": "c", "must_contain": ["ok", ""]}])
    assert str(_error(p)) == f"{p}:1: field 'must_contain' must be a string or a list of non-empty strings"


def test_row_not_an_object(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "a"}\n[1, 2]\n')
    assert str(_error(p)) == f"{p}:2: expected an object with named fields, got list"


def test_invalid_utf8_line(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "ok"}\n{"text": "fine"}\n{"text": "bad \xff byte"}\n{"text": "after"}\n')
    err = _error(p)
    assert err.line == 3
    assert str(err) == f"{p}:3: text is not valid UTF-8 (byte 0xff)"


def test_csv_bad_value_line_4(tmp_path):
    p = tmp_path / "pc.csv"
    p.write_text("prompt,completion\na,b\nc,d\ne,\nf,g\n")
    err = _error(p)
    assert err.line == 4
    assert str(err) == f"{p}:4: field 'completion' is empty"


def test_csv_line_after_blank_line(tmp_path):
    p = tmp_path / "pc.csv"
    p.write_text("prompt,completion\na,b\n\ne,\n")  # the bad row is on line 4
    assert str(_error(p)) == f"{p}:4: field 'completion' is empty"


def test_csv_row_with_extra_fields(tmp_path):
    p = tmp_path / "pc.csv"
    p.write_text("prompt,completion\na,b\nc,d,e\n")
    assert str(_error(p)) == f"{p}:3: row has 3 fields, the header has 2"


def test_json_array_broken_second_element_line_5(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n  {"prompt": "p1",\n   "completion": "c1"},\n\n  {"prompt": "p2", "completion": }\n]\n')
    err = _error(p)
    assert err.line == 5
    assert str(err) == f"{p}:5: invalid JSON (Expecting value)"


def test_json_array_invalid_second_element_reports_its_start_line(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n  {"prompt": "p1",\n   "completion": "c1"},\n\n  {"prompt": "p2",\n   "completion": ""}\n]\n')
    assert str(_error(p)) == f"{p}:5: field 'completion' is empty"


def test_json_array_unterminated(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n  {"text": "a"},\n')
    assert str(_error(p)) == f"{p}:3: invalid JSON (unterminated array)"


def test_json_object_data_array_reports_row_number(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('{"data": [\n  {"prompt": "p", "completion": "c"},\n  {"prompt": "p",\n   "completion": ""}\n]}\n')
    assert str(_error(p)) == f"{p}:row 2: field 'completion' is empty"


def test_unknown_layout_lists_fields(tmp_path):
    p = _jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}])
    err = _error(p)
    assert err.line == 1
    msg = str(err)
    assert msg.startswith(f"{p}:1: unknown row layout, fields ['answer', 'question']; expected one of: ")
    assert "--column yours=expected" in msg


def test_unsupported_extension_and_missing_file(tmp_path):
    p = tmp_path / "data.xml"
    p.write_text("<x/>")
    err = _error(p)
    assert err.line is None
    assert str(err).startswith(f"{p}: unsupported file type '.xml'")
    missing = tmp_path / "nope.jsonl"
    assert str(_error(missing)) == f"{missing}: file not found"


def test_empty_file_has_no_rows(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text("\n\n")
    assert str(_error(p)) == f"{p}: file has no rows"


# --------------------------------------------------------------------------- holdout_split


def test_holdout_split_deterministic_disjoint_sized():
    items = [f"row{i}" for i in range(100)]
    train, val = holdout_split(items, 0.1, 200, seed=7)
    assert len(val) == 10 and len(train) == 90
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(items)
    # both parts keep the original order
    assert train == sorted(train, key=items.index) and val == sorted(val, key=items.index)
    assert holdout_split(items, 0.1, 200, seed=7) == (train, val)
    assert holdout_split(items, 0.1, 200, seed=8)[1] != val


def test_holdout_split_sizes():
    items = list(range(100))
    assert len(holdout_split(items, 0.5, 7, seed=0)[1]) == 7  # capped by max_rows
    assert len(holdout_split(list(range(3)), 0.1, 200, seed=0)[1]) == 1  # at least one row
    assert len(holdout_split(list(range(25)), 0.2, 200, seed=0)[1]) == 5
    assert holdout_split(["only"], 0.5, 10, seed=0) == (["only"], [])
    assert holdout_split([], 0.5, 10, seed=0) == ([], [])


# --------------------------------------------------------------------------- LengthBucketSampler


def test_sampler_covers_every_index_once_per_epoch():
    lengths = [(i * 37) % 101 + 1 for i in range(103)]
    s = LengthBucketSampler(lengths, batch_size=8, seed=3, window=2)
    assert len(s) == 13
    epochs = [list(iter(s)) for _ in range(3)]
    for batches in epochs:
        assert len(batches) == 13
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(103))
        assert all(1 <= len(b) <= 8 for b in batches)
    assert [i for b in epochs[0] for i in b] != [i for b in epochs[1] for i in b]
    # set_epoch replays an epoch exactly
    s.set_epoch(1)
    assert list(iter(s)) == epochs[1]
    # and the same seed gives the same first epoch
    assert list(iter(LengthBucketSampler(lengths, 8, seed=3, window=2))) == epochs[0]


def test_sampler_batches_have_similar_lengths():
    import random

    lengths = list(range(100))
    random.Random(0).shuffle(lengths)
    s = LengthBucketSampler(lengths, batch_size=10, seed=1)  # one window holds everything
    batches = list(iter(s))
    got = sorted(sorted(lengths[i] for i in b) for b in batches)
    assert got == [list(range(k, k + 10)) for k in range(0, 100, 10)]
    # shuffled batch order
    assert [min(lengths[i] for i in b) for b in batches] != list(range(0, 100, 10))


def test_sampler_no_shuffle_is_sorted():
    lengths = [5, 1, 4, 2, 3]
    s = LengthBucketSampler(lengths, batch_size=2, seed=0, shuffle=False)
    assert list(iter(s)) == [[1, 3], [4, 2], [0]]
    assert list(iter(s)) == [[1, 3], [4, 2], [0]]


# --------------------------------------------------------------------------- collate


def test_collate_pads_by_position_not_token_id():
    pad = 2  # SmolLM2: pad == eos == <|im_end|>
    items = [
        Encoded([10, 11, 12, pad], [IGNORE, 11, 12, pad], line=1),
        Encoded([20, pad], [IGNORE, pad], line=2),
        Encoded([30, 31, 32, 33, 34, pad], [IGNORE, IGNORE, IGNORE, 33, 34, pad], line=3),
    ]
    out = collate(items, pad_id=pad)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    assert all(t.dtype == torch.long for t in out.values())
    assert out["input_ids"].tolist() == [[10, 11, 12, 2, 2, 2], [20, 2, 2, 2, 2, 2], [30, 31, 32, 33, 34, 2]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert out["labels"].tolist() == [
        [-100, 11, 12, 2, -100, -100],
        [-100, 2, -100, -100, -100, -100],
        [-100, -100, -100, 33, 34, 2],
    ]
