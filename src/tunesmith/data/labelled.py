"""Labelled rows for the encoder tasks: texts with class labels, and sentences with one tag per word."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .load import _read_text, load_rows

CONLL_SUFFIXES = {".conll", ".conllu", ".bio", ".iob", ".iob2", ".tsv"}
_TAG = re.compile(r"^(O|[BIESL]-\S+)$")


@dataclass
class LabelledText:
    line: int | str
    text: str
    pair: str | None
    labels: list = field(default_factory=list)  # one label, or any number for multi-label


@dataclass
class TaggedSentence:
    line: int | str
    words: list[str]
    tags: list[str]


def label_order(values) -> list:
    """Label names in a stable order: numeric when every name is a number (so "2" follows "1", not "10")."""
    values = set(values)
    if all(isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"-?\d+", v)) for v in values):
        return sorted(values, key=int)
    return sorted(values, key=str)


def _label_value(path, line, key, value):
    if value != value or (isinstance(value, str) and value.strip().lower() == "nan"):  # NaN, or "nan" in a CSV
        raise DataError(path, line, f"field '{key}' is NaN (a missing label); fill it in or drop the row")
    if isinstance(value, float) and value.is_integer():  # an integer column with gaps, as pandas writes it
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(path, line, f"field '{key}' must be a string or an integer label, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise DataError(path, line, f"field '{key}' is empty")
    return value.strip() if isinstance(value, str) else value


def read_labelled(
    path, columns: dict | None, label_column: str, pair_column: str | None, multi_label: bool, labelled: bool = True
) -> list[LabelledText]:
    """Rows with `text` (after --column mapping), an optional pair text, and the label column.

    Multi-label rows give a list (JSONL/Parquet) or a comma-separated string (CSV).
    With labelled=False (prediction) the label column is not needed.
    """
    return [
        labelled_row(path, line, row, label_column, pair_column, multi_label, labelled)
        for line, row in load_rows(path, columns)
    ]


def labelled_row(
    path, line, row: dict, label_column: str, pair_column: str | None, multi_label: bool, labelled: bool = True
) -> LabelledText:
    """One row of read_labelled; `tunesmith check` calls it row by row to collect every bad one."""
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        what = "missing" if text is None else ("empty" if isinstance(text, str) else "not a string")
        raise DataError(
            path, line, f"field 'text' is {what} (fields here: {sorted(row)}; map yours with --column yours=text)"
        )
    pair = None
    if pair_column:
        pair = row.get(pair_column)
        if not isinstance(pair, str):
            raise DataError(path, line, f"field '{pair_column}' (the text pair) is missing or not a string")
    labels = []
    if labelled:
        if row.get(label_column) is None:
            raise DataError(path, line, f"missing field '{label_column}' (choose the column with --label-column)")
        value = row[label_column]
        if multi_label:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise DataError(path, line, f"field '{label_column}' must be a list of labels (multi-label)")
            labels = sorted({_label_value(path, line, label_column, v) for v in value}, key=str)
        else:
            if isinstance(value, list):
                raise DataError(
                    path, line, f"field '{label_column}' is a list; pass --multi-label for several labels per row"
                )
            labels = [_label_value(path, line, label_column, value)]
    return LabelledText(line, text, pair, labels)


def check_known(path, rows: list[LabelledText], names: list) -> None:
    known = set(names)
    for r in rows:
        for lab in r.labels:
            if lab not in known:
                raise DataError(
                    path,
                    r.line,
                    f"label {lab!r} does not occur in the training data (known: {', '.join(map(str, names[:20]))})",
                )


def _conll(path: Path, problems: list | None = None) -> list[TaggedSentence]:
    """Token and tag per line (tag = last column, token = first), blank lines between sentences.

    -DOCSTART- lines are document markers, not sentences; a line holding only whitespace counts as blank.
    With a `problems` list, a malformed line is appended there (its sentence left out) instead of raised.
    """
    out, words, tags, start, bad = [], [], [], None, False
    width = None  # (columns, line) of the first token line: every token line must have as many
    lines = _read_text(path).splitlines()
    for i, raw in enumerate(lines + [""], start=1):
        cols = raw.split()
        if not cols or cols[0] == "-DOCSTART-":  # a document marker also ends a sentence
            if words and not bad:
                out.append(TaggedSentence(start, words, tags))
            words, tags, start, bad = [], [], None, False
            continue
        err = None
        if len(cols) < 2:
            err = DataError(path, i, f"expected a token and a tag separated by whitespace, got {raw.strip()!r}")
        else:
            width = width or (len(cols), i)
            if len(cols) != width[0]:
                err = DataError(
                    path,
                    i,
                    f"{len(cols)} columns, but line {width[1]} has {width[0]} "
                    "(a token with a space in it, or a missing column?)",
                )
        if err is not None:
            if problems is None:
                raise err
            problems.append(err)
            bad = True
        start = start or i
        words.append(cols[0])
        tags.append(cols[-1])
    return out


def tagged_row(path, line, row: dict) -> TaggedSentence | None:
    """One JSONL row as a sentence (None for an empty one, which is skipped)."""
    words = row.get("tokens")
    tags = row.get("ner_tags", row.get("tags"))
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataError(path, line, "field 'tokens' must be a list of strings")
    if not isinstance(tags, list):
        raise DataError(path, line, "field 'ner_tags' (or 'tags') must be a list of tag names")
    if not all(isinstance(t, str) for t in tags):
        raise DataError(path, line, "field 'ner_tags' must hold tag names as strings (e.g. \"B-person\"), not ids")
    if len(words) != len(tags):
        raise DataError(path, line, f"{len(words)} tokens but {len(tags)} tags")
    return TaggedSentence(line, words, tags) if words else None


def _jsonl_tagged(path, columns) -> list[TaggedSentence]:
    sents = (tagged_row(path, line, row) for line, row in load_rows(path, columns))
    return [s for s in sents if s is not None]


def check_bio(path, s: TaggedSentence, conll: bool) -> None:
    """Raise for the first tag that is not O / B-type / I-type (CoNLL: located on the tag's own line)."""
    for j, t in enumerate(s.tags):
        if not _TAG.match(t):
            where = s.line + j if isinstance(s.line, int) and conll else s.line
            raise DataError(path, where, f"tag {t!r} is not a BIO tag (O, B-type, I-type)")


def read_tagged(path, columns: dict | None = None) -> list[TaggedSentence]:
    """CoNLL-style column files or JSONL {"tokens": [...], "ner_tags": [...]}; tags must be BIO/IOBES."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    sents = _conll(path) if path.suffix.lower() in CONLL_SUFFIXES else _jsonl_tagged(path, columns)
    if not sents:
        raise DataError(path, None, "no sentences found")
    for s in sents:
        check_bio(path, s, path.suffix.lower() in CONLL_SUFFIXES)
    return sents


_WORD = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Raw text -> (word, start, end): words and single punctuation marks, the way NER corpora split them."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
