"""Read a data file into (line number, row dict) pairs, whatever its file format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import DataError

KINDS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "txt",
    ".text": "txt",
    ".md": "txt",
}

# One row (a JSONL line, a JSON array element, a CSV record) may hold at most this many
# characters: far more than any max_seq_len can use, and small enough to fail fast instead of tokenizing
# a runaway line for minutes.
MAX_ROW_CHARS = 10_000_000


def file_kind(path: Path) -> str:
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            path, None, f"unsupported file type '{path.suffix}' (use one of {', '.join(sorted(set(KINDS)))})"
        )
    return kind


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, line, f"text is not valid UTF-8 (byte {raw[e.start]:#04x})") from None


def _too_long(path: Path, line, size: int):
    if size > MAX_ROW_CHARS:
        raise DataError(
            path,
            line,
            f"row is {size:,} characters long, over the limit of {MAX_ROW_CHARS:,} "
            "for one row; split it into several rows",
        )


def _json_problem(e: Exception) -> str:
    """What went wrong in a JSON text, for exceptions other than a plain syntax error too."""
    if isinstance(e, RecursionError):
        return "invalid JSON (nested too deeply)"
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON ({e.msg})"
    return "invalid JSON (a number with too many digits)"  # int() refuses over 4300 digits


def _jsonl(path: Path, text: str):
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        _too_long(path, i, len(line))
        if line.startswith("\ufeff"):
            raise DataError(
                path,
                i,
                "a byte-order mark (U+FEFF) in the middle of the file; were files joined with their BOMs? Remove it",
            )
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, i, f"invalid JSON ({e.msg} at column {e.colno})") from None
        except (ValueError, RecursionError) as e:
            raise DataError(path, i, _json_problem(e)) from None
        yield i, row


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json(path: Path, text: str):
    # Decode element by element so every row keeps the line it starts on.
    dec = json.JSONDecoder()
    pos = _skip_space(text, 0)

    def line_at(p: int) -> int:
        return text.count("\n", 0, p) + 1

    if not text[pos : pos + 1] == "[":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(path, e.lineno, f"invalid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:
            raise DataError(path, None, _json_problem(e)) from None
        rows = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(rows, list):
            raise DataError(path, 1, "expected a JSON array of rows (or an object with a 'data' array)")
        # Rows inside a wrapper object are located by position ("row N"), not by line.
        yield from ((f"row {i}", r) for i, r in enumerate(rows, start=1))
        return
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            if pos >= len(text):
                raise DataError(path, line_at(pos), "invalid JSON (unterminated array)")
            line = line_at(pos)
            try:
                row, end = dec.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise DataError(path, e.lineno, f"invalid JSON ({e.msg})") from None
            except (ValueError, RecursionError) as e:
                raise DataError(path, line, _json_problem(e)) from None
            _too_long(path, line, end - pos)
            yield line, row
            pos = _skip_space(text, end)
            if text[pos : pos + 1] == "]":
                pos += 1
                break
            if pos >= len(text):
                raise DataError(path, line_at(pos), "invalid JSON (unterminated array)")
            if text[pos] != ",":
                raise DataError(path, line_at(pos), "invalid JSON (expected ',' or ']' after a row)")
            comma, pos = pos, _skip_space(text, pos + 1)
            if text[pos : pos + 1] == "]":
                raise DataError(path, line_at(comma), "invalid JSON (trailing comma before ']')")
    pos = _skip_space(text, pos)
    if pos < len(text):
        raise DataError(path, line_at(pos), "invalid JSON (extra data after the closing ']')")


def _csv_problem(e: csv.Error) -> str:
    msg = str(e)
    if "unexpected end of data" in msg:
        return "invalid CSV (a quoted field that starts in this row is never closed)"
    if "field larger than field limit" in msg:
        return f"invalid CSV (a field longer than {MAX_ROW_CHARS:,} characters, the limit for one row)"
    return f"invalid CSV ({msg})"


def _csv(path: Path, text: str):
    csv.field_size_limit(MAX_ROW_CHARS)
    reader = csv.reader(io.StringIO(text), strict=True)  # strict: a stray quote is an error, not a merged row

    def record(start):
        try:
            return next(reader, None)
        except csv.Error as e:
            raise DataError(path, start, _csv_problem(e)) from None

    header = record(1)
    if not header:
        raise DataError(path, 1, "CSV has no header row")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(path, 1, f"the header names column {repeated[0]!r} more than once")
    while True:
        start = reader.line_num + 1  # the line the next record begins on (blank lines counted)
        values = record(start)
        if values is None:
            return
        if not values:
            continue
        if len(values) > len(header):
            raise DataError(path, start, f"row has {len(values)} fields, the header has {len(header)}")
        _too_long(path, start, sum(map(len, values)))
        yield start, dict(zip(header, values + [None] * (len(header) - len(values))))


def _parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(path, None, f"cannot read Parquet ({' '.join(str(e).split())})") from None
    yield from enumerate(table.to_pylist(), start=1)


def _txt(path: Path, text: str):
    # One row per paragraph, keeping its own newlines, so joining the rows restores the file exactly.
    # No row size limit here: a long paragraph is just more of one document (clm packs it into blocks).
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
        if not text.strip():
            raise DataError(path, None, "file has no rows")
        rows = {"jsonl": _jsonl, "json": _json, "csv": _csv, "txt": _txt}[kind](path, text)
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
