"""Read a data file into (line number, row dict) pairs, whatever its file format."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import DataError

KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
         ".parquet": "parquet", ".txt": "txt", ".text": "txt", ".md": "txt"}


def file_kind(path: Path) -> str:
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(path, None, f"unsupported file type '{path.suffix}' (use one of "
                        f"{', '.join(sorted(set(KINDS)))})")
    return kind


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, line, f"text is not valid UTF-8 (byte {raw[e.start]:#04x})") from None


def _jsonl(path: Path, text: str):
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, i, f"invalid JSON ({e.msg} at column {e.colno})") from None
        yield i, row


def _json(path: Path, text: str):
    # Decode element by element so every row keeps the line it starts on.
    dec = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text[pos:pos + 1] == "[":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, f"invalid JSON ({e.msg})") from None
        rows = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(rows, list):
            raise DataError(path, 1, "expected a JSON array of rows (or an object with a 'data' array)")
        # Rows inside a wrapper object are located by position ("row N"), not by line.
        yield from ((f"row {i}", r) for i, r in enumerate(rows, start=1))
        return
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise DataError(path, text.count("\n") + 1, "invalid JSON (unterminated array)")
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            row, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, f"invalid JSON ({e.msg})") from None
        yield line, row


def _csv(path: Path, text: str):
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(path, 1, "CSV has no header row")
    while True:
        start = reader.line_num + 1  # the line the next record begins on (blank lines counted)
        values = next(reader, None)
        if values is None:
            return
        if not values:
            continue
        if len(values) > len(header):
            raise DataError(path, start, f"row has {len(values)} fields, the header has {len(header)}")
        yield start, dict(zip(header, values + [None] * (len(header) - len(values))))


def _parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(path, None, f"cannot read Parquet ({e})") from None
    for i, row in enumerate(table.to_pylist(), start=1):
        yield i, row


def _txt(text: str):
    # One row per paragraph, keeping its own newlines, so joining the rows restores the file exactly.
    rows, start, buf = [], 1, []
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        buf.append(line)
        if not line.strip():
            if any(b.strip() for b in buf):
                rows.append((start, {"text": "".join(buf)}))
                buf = []
            start = i + 1  # a paragraph's line is where its text begins
    if any(b.strip() for b in buf):
        rows.append((start, {"text": "".join(buf)}))
    elif buf and rows:  # trailing blank lines belong to the last paragraph
        rows[-1][1]["text"] += "".join(buf)
    return rows


def load_rows(path: str | Path, columns: dict[str, str] | None = None) -> list[tuple[int, dict]]:
    """All rows of a file, with column names mapped (`columns`: your name -> expected name)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    kind = file_kind(path)
    if kind == "parquet":
        rows = _parquet(path)
    else:
        text = _read_text(path)
        rows = {"jsonl": _jsonl, "json": _json, "csv": _csv}.get(kind, lambda p, t: _txt(t))(path, text)
    out = []
    for line, row in rows:
        if not isinstance(row, dict):
            raise DataError(path, line, f"expected an object with named fields, got {type(row).__name__}")
        if columns:
            row = {columns.get(k, k): v for k, v in row.items()}
        out.append((line, row))
    if not out:
        raise DataError(path, None, "file has no rows")
    return out
