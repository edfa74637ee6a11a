"""Reading labelled rows and tagged sentences: formats, edge cases, and file:line errors."""

from __future__ import annotations

import json

import pytest
from conftest import write_csv, write_jsonl

from tunesmith.data.labelled import label_order, read_labelled, read_tagged, split_words
from tunesmith.errors import DataError


def _err(fn, *a, **kw) -> str:
    with pytest.raises(DataError) as e:
        fn(*a, **kw)
    return str(e.value)


def test_conll_docstart_blank_runs_extra_columns_and_trailing_blanks(tmp_path):
    p = tmp_path / "d.conll"
    p.write_text(
        "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n \t\nPeter NNP B-NP B-PER\n"
        "Blackburn NNP I-NP I-PER\n\n\n"
    )
    sents = read_tagged(p)
    assert [(s.words, s.tags, s.line) for s in sents] == [
        (["EU", "rejects"], ["B-ORG", "O"], 3),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"], 8),
    ]


def test_conll_without_final_newline_and_tab_separated(tmp_path):
    p = tmp_path / "d.bio"
    p.write_text("a\tO\nParis\tB-loc")
    assert [(s.words, s.tags) for s in read_tagged(p)] == [(["a", "Paris"], ["O", "B-loc"])]


def test_conll_errors_name_the_line(tmp_path):
    p = tmp_path / "d.conll"
    p.write_text("a O\nb O\n\nlonely\n")
    assert _err(read_tagged, p) == f"{p}:4: expected a token and a tag separated by whitespace, got 'lonely'"
    p.write_text("a O\nb PER\n")
    assert _err(read_tagged, p) == f"{p}:2: tag 'PER' is not a BIO tag (O, B-type, I-type)"
    p.write_text("\n\n")
    assert _err(read_tagged, p) == f"{p}: no sentences found"


def test_jsonl_tokens_and_errors(tmp_path):
    p = write_jsonl(
        tmp_path / "d.jsonl",
        [{"tokens": ["Hi", "Ann"], "ner_tags": ["O", "B-person"]}, {"tokens": ["x"], "ner_tags": [0]}],
    )
    assert _err(read_tagged, p) == (
        f"{p}:2: field 'ner_tags' must hold tag names as strings (e.g. \"B-person\"), not ids"
    )
    p.write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": ["O"]}) + "\n")
    assert _err(read_tagged, p) == f"{p}:1: 2 tokens but 1 tags"
    p.write_text(json.dumps({"words": ["a"], "labels": ["O"]}) + "\n")
    sents = read_tagged(p, {"words": "tokens", "labels": "ner_tags"})
    assert sents[0].words == ["a"] and sents[0].tags == ["O"]


def test_classification_rows_string_int_and_pair_labels(tmp_path):
    p = write_jsonl(
        tmp_path / "d.jsonl", [{"sentence": "good", "y": 1, "h": "x"}, {"sentence": "bad", "y": 0, "h": "z"}]
    )
    rows = read_labelled(p, {"sentence": "text"}, "y", "h", multi_label=False)
    assert [(r.text, r.pair, r.labels, r.line) for r in rows] == [("good", "x", [1], 1), ("bad", "z", [0], 2)]
    assert _err(read_labelled, p, {"sentence": "text"}, "label", None, False) == (
        f"{p}:1: missing field 'label' (choose the column with --label-column)"
    )
    assert _err(read_labelled, p, None, "y", None, False).startswith(f"{p}:1: field 'text' is missing")


def test_multi_label_lists_and_csv_commas(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": ["x", "y", "x"]}, {"text": "b", "label": []}])
    assert [r.labels for r in read_labelled(p, None, "label", None, True)] == [["x", "y"], []]
    assert _err(read_labelled, p, None, "label", None, False) == (
        f"{p}:1: field 'label' is a list; pass --multi-label for several labels per row"
    )
    c = write_csv(tmp_path / "d.csv", ["text", "label"], [["a", "x,y"], ["b", "y"]])
    assert [r.labels for r in read_labelled(c, None, "label", None, True)] == [["x", "y"], ["y"]]
    c2 = write_csv(tmp_path / "e.csv", ["text", "label"], [["a", "x"], ["b", " "]])
    assert _err(read_labelled, c2, None, "label", None, False) == f"{c2}:3: field 'label' is empty"


def test_label_order_is_numeric_for_numbers():
    assert label_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert label_order([3, 1]) == [1, 3]
    assert label_order(["spam", "ham"]) == ["ham", "spam"]


def test_split_words_keeps_character_spans():
    text = "I'm in New York, at Google's HQ!"
    words = split_words(text)
    assert [w for w, _, _ in words] == ["I'm", "in", "New", "York", ",", "at", "Google's", "HQ", "!"]
    assert all(text[a:b] == w for w, a, b in words)
