"""Property-based: whatever a data file holds, the loaders accept it or raise our own error, nothing else.

Random JSONL/JSON rows (biased towards the field names and roles the loaders look for), random CSV records,
random Parquet tables, random CoNLL lines, and random bytes under every supported suffix go through
load_rows, read_examples, read_labelled (single- and multi-label) and read_tagged. A TunesmithError
(DataError) is an answer; any other exception fails the test, and hypothesis shrinks it to a small file.
Bounded: 150 examples per test, no deadline; the file runs in well under 30 s.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tunesmith.data.formats import read_examples
from tunesmith.data.labelled import check_known, label_order, read_labelled, read_tagged
from tunesmith.data.load import load_rows
from tunesmith.errors import TunesmithError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _labelled(path, multi):
    rows = read_labelled(path, None, "label", "pair" if multi else None, multi)
    names = label_order(lab for r in rows for lab in r.labels)
    check_known(path, rows, names)
    return rows


LOADERS = {
    "load_rows": load_rows,
    "read_examples": read_examples,
    "read_examples(system_prompt, columns)": lambda p: read_examples(
        p, {"q": "prompt", "a": "completion"}, "Be brief."
    ),
    "read_labelled": lambda p: _labelled(p, False),
    "read_labelled(multi_label, pair)": lambda p: _labelled(p, True),
    "read_tagged": read_tagged,
}


def accepts_or_refuses(path: Path):
    """Every loader on `path`: a result or a TunesmithError; anything else propagates and fails the test."""
    for name, load in LOADERS.items():
        try:
            load(path)
        except TunesmithError as e:
            assert str(e) and "\n" not in str(e), f"{name}: error message must be one line: {e!r}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------------ strategies

KEYS = [
    "messages",
    "conversations",
    "role",
    "from",
    "content",
    "value",
    "weight",
    "prompt",
    "completion",
    "instruction",
    "input",
    "output",
    "response",
    "text",
    "must_contain",
    "label",
    "pair",
    "tokens",
    "ner_tags",
    "tags",
]
ROLES = ["system", "user", "assistant", "human", "gpt", "bot", "model", "", "USER"]
TAGS = ["O", "B-per", "I-per", "B-loc", "PER", "", "b-x"]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=10,
)
turns = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(ROLES) | json_values,
        "from": st.sampled_from(ROLES) | json_values,
        "content": st.text(max_size=20) | json_values,
        "value": st.text(max_size=20) | json_values,
        "weight": st.sampled_from([0, 1, None, 2, 0.5, True, "1", float("nan")]),
    },
)
fields = (
    json_values
    | st.text(max_size=20)
    | st.lists(turns, max_size=4)
    | st.lists(st.sampled_from(TAGS) | st.text(max_size=4) | st.integers(), max_size=5)
    | st.sampled_from(TAGS)
    | st.floats(allow_nan=True)
)
rows = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), fields, max_size=5)
files_of_rows = st.lists(rows | json_values, max_size=5)


# ------------------------------------------------------------------------------------------ tests


@FUZZ
@given(records=files_of_rows, cut=st.none() | st.integers(min_value=0, max_value=400), blank=st.booleans())
def test_random_jsonl_rows(folder, records, cut, blank):
    text = ("\n\n" if blank else "\n").join(json.dumps(r) for r in records) + "\n"
    if cut is not None:
        text = text[:cut]  # a truncated file: a partial last line
    path = folder / "rows.jsonl"
    path.write_text(text, encoding="utf-8")
    accepts_or_refuses(path)


@FUZZ
@given(
    records=files_of_rows,
    wrap=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    cut=st.none() | st.integers(min_value=0, max_value=400),
)
def test_random_json_files(folder, records, wrap, indent, cut):
    text = json.dumps({"data": records} if wrap else records, indent=indent)
    if cut is not None:
        text = text[:cut]
    path = folder / "rows.json"
    path.write_text(text, encoding="utf-8")
    accepts_or_refuses(path)


@FUZZ
@given(value=json_values, suffix=st.sampled_from([".json", ".jsonl"]))
def test_random_json_value_as_the_whole_file(folder, value, suffix):
    path = folder / f"value{suffix}"
    path.write_text(json.dumps(value), encoding="utf-8")
    accepts_or_refuses(path)


header_names = st.sampled_from(
    ["prompt", "completion", "text", "label", "pair", "instruction", "output", "messages", "tokens"]
) | st.text(max_size=5)


@FUZZ
@given(
    header=st.lists(header_names, min_size=1, max_size=4),
    records=st.lists(
        st.lists(st.text(max_size=15) | st.sampled_from(["nan", "NaN", "a,b", "", " "]), max_size=5), max_size=5
    ),
)
def test_random_csv_records(folder, header, records):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(records)
    path = folder / "rows.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    accepts_or_refuses(path)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from('ab,"\n\r \t\ufeffxé'), max_size=60))
def test_random_csv_text(folder, text):
    """Quotes, commas and line ends in any order: unbalanced quotes, stray BOMs, ragged rows."""
    path = folder / "raw.csv"
    path.write_bytes(("prompt,completion\n" + text).encode("utf-8"))
    accepts_or_refuses(path)


@FUZZ
@given(
    lines=st.lists(
        st.lists(st.sampled_from(TAGS) | st.text(alphabet="abc -DOCSTART", max_size=6), max_size=4).map(" ".join)
        | st.just(""),
        max_size=12,
    ),
    suffix=st.sampled_from([".conll", ".bio", ".tsv"]),
)
def test_random_conll_lines(folder, lines, suffix):
    path = folder / f"tags{suffix}"
    path.write_text("\n".join(lines), encoding="utf-8")
    accepts_or_refuses(path)


@FUZZ
@given(
    data=st.binary(max_size=300) | st.text(max_size=80).map(lambda t: t.encode("utf-8")),
    suffix=st.sampled_from([".jsonl", ".json", ".csv", ".txt", ".parquet", ".conll"]),
)
def test_random_bytes(folder, data, suffix):
    path = folder / f"bytes{suffix}"
    path.write_bytes(data)
    accepts_or_refuses(path)


parquet_rows = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.sampled_from(ROLES) | st.none(), "content": st.text(max_size=10) | st.none()}
                ),
                max_size=3,
            ),
            "text": st.text(max_size=10) | st.none(),
            "label": st.floats(allow_nan=True) | st.none(),
            "tokens": st.lists(st.text(max_size=4), max_size=3),
            "ner_tags": st.lists(st.sampled_from(TAGS), max_size=3),
        },
    ),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(records=parquet_rows)
def test_random_parquet_tables(folder, records):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    try:
        table = pa.Table.from_pylist(records)
    except (pa.ArrowException, TypeError, ValueError):
        assume(False)  # not a table Arrow can build; nothing to feed the loaders
    path = folder / "rows.parquet"
    pq.write_table(table, path)
    accepts_or_refuses(path)


def test_a_long_row_under_the_limit_is_accepted(tmp_path):
    """The row size limit is far above real rows: a 1 MB completion loads."""
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"prompt": "q", "completion": "word " * 200_000}) + "\n")
    assert len(read_examples(path)[1][0].messages[1]["content"]) == 1_000_000
