"""Read a data file the way training does, but collect every bad row instead of stopping at the first.

Cheap on purpose (no tokenizer, no model), so `train` can call `invalid_rows` to fail early. The task says
how a row is read (tasks.base.Task: ROW_FORMAT, read_row, check_item, row_content).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from . import formats, labelled, load

# Problems that mean "nothing here to learn": the rows `check --fix` drops (others need a human).
_EMPTY = re.compile(r"is empty|empty assistant turn|must be a non-empty list")


@dataclass
class Record:
    file: str
    line: int | str
    row: dict | None = None  # after --column mapping; None when the line itself could not be read
    raw: object = None  # what --fix writes back: the line's text (JSONL/CSV) or the row object (JSON)
    item: object = None  # what the task's read_row made of the row (Example, LabelledText, ...) once valid
    problem: str | None = None
    field: str | None = None
    content: tuple[str, str] = ("", "")  # (input, output) as the task reads them; set by the data doctor

    @property
    def empty(self) -> bool:
        return bool(self.problem and (_EMPTY.search(self.problem) or (self.row is not None and _blank(self.row))))


def _blank(value) -> bool:
    """Nothing but empty strings, nulls and empty containers: a row with no content at all."""
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Parsed:
    path: Path
    kind: str  # jsonl | json | csv | parquet | txt | conll
    fmt: str | None = None  # the task's ROW_FORMAT, or the layout detected from the rows (formats.FORMATS)
    records: list[Record] = field(default_factory=list)
    error: dict | None = None  # a file-level problem: the file as a whole cannot be read
    head: str = ""  # CSV: the header line(s), written back first by --fix

    @property
    def valid(self) -> list[Record]:
        return [r for r in self.records if r.problem is None]

    def invalid(self) -> list[dict]:
        if self.error:
            return [self.error]
        return [entry(r.file, r.line, r.problem, r.field) for r in self.records if r.problem]


def field_of(message: str) -> str | None:
    """The field a loader's message is about: "field 'prompt' is empty", "messages[1].role: unknown role"."""
    m = re.search(r"field '([^']+)'", message) or re.match(r"(\w+\[\d+\](?:\.\w+)?)", message)
    return m.group(1) if m else None


def entry(file, line, problem, fld=None) -> dict:
    return {"file": str(file), "line": line, "field": fld if fld is not None else field_of(problem), "problem": problem}


def _fail(rec: Record, err: DataError):
    rec.problem, rec.field = err.message, field_of(err.message)


def _map(row: dict, columns: dict | None) -> dict:
    return {columns.get(k, k): v for k, v in row.items()} if columns else row


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8-sig", errors="surrogateescape")  # --fix writes undecodable bytes back unchanged


def _read(p: Parsed, columns: dict | None):
    """Every row with its line; the strict loader first, and a line-by-line pass only when it refuses."""
    try:
        rows = load.load_rows(p.path, None)
    except DataError as first:
        if p.kind not in ("jsonl", "csv") or first.line is None:
            raise
        try:
            (_jsonl_lines if p.kind == "jsonl" else _csv_records)(p, columns)
        except Exception:  # csv.Error: after a broken quote no later row can be delimited reliably
            raise first from None
        if not any(r.problem for r in p.records):  # a problem this pass cannot place on a row
            raise
        return
    text = _decode(p.path.read_bytes()) if p.kind in ("jsonl", "csv") else ""
    lines = io.StringIO(text).readlines()  # the lines the CSV reader sees
    starts = [line for line, _ in rows] + [len(lines) + 1]
    if p.kind == "csv":
        p.head = "".join(lines[: starts[0] - 1])
    for (line, row), nxt in zip(rows, starts[1:]):
        if p.kind == "jsonl":
            raw = lines[line - 1].rstrip("\n")
        elif p.kind == "csv":
            raw = "".join(lines[line - 1 : nxt - 1])  # the record's own lines, quoting and all
        else:
            raw = row  # JSON: written back as an object; Parquet/TXT: --fix refuses them
        p.records.append(Record(str(p.path), line, _map(row, columns), raw))


def _jsonl_lines(p: Parsed, columns):
    for i, raw in enumerate(_decode(p.path.read_bytes()).split("\n"), start=1):
        if not raw.strip():
            continue
        rec = Record(str(p.path), i, raw=raw)
        p.records.append(rec)
        bad = next((j for j, ch in enumerate(raw) if "\udc80" <= ch <= "\udcff"), None)
        if bad is not None:
            rec.problem = f"text is not valid UTF-8 (byte {ord(raw[bad]) - 0xDC00:#04x})"
            continue
        try:
            row = next(load._jsonl(p.path, raw))[1]  # the loader's own checks, on this one line
        except DataError as e:
            _fail(rec, e)
            continue
        if not isinstance(row, dict):
            rec.problem = f"expected an object with named fields, got {type(row).__name__}"
        else:
            rec.row = _map(row, columns)


def _csv_records(p: Parsed, columns):
    """CSV rows one by one: an undecodable or over-wide record is marked; a broken quote stops the file."""
    import csv

    text = _decode(p.path.read_bytes())
    lines = io.StringIO(text).readlines()
    reader = csv.reader(io.StringIO(text), strict=True)
    header = next(reader, None)  # a csv.Error here or below ends the pass; the loader's message is reported
    p.head = "".join(lines[: reader.line_num])
    while header:
        start = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        if not values:
            continue
        raw = "".join(lines[start - 1 : reader.line_num])
        rec = Record(str(p.path), start, raw=raw)
        p.records.append(rec)
        if any("\udc80" <= ch <= "\udcff" for ch in raw):
            rec.problem = "text is not valid UTF-8"
        elif len(values) > len(header):
            rec.problem = f"row has {len(values)} fields, the header has {len(header)}"
        else:
            rec.row = _map(dict(zip(header, values + [None] * (len(header) - len(values)))), columns)


def _conll(p: Parsed):
    problems: list[DataError] = []
    for s in labelled._conll(p.path, problems):
        p.records.append(Record(str(p.path), s.line, row={"tokens": s.words}, item=s))
    for e in problems:
        p.records.append(Record(str(p.path), e.line, problem=e.message))
    p.records.sort(key=lambda r: r.line)


def _validate(p: Parsed, task, cfg):
    readable = [r for r in p.records if r.row is not None and r.item is None and r.problem is None]
    p.fmt = task.ROW_FORMAT
    if p.fmt is None and readable:
        p.fmt = formats.detect_format(p.path, [(readable[0].line, readable[0].row)])
        if task.TEXT_ONLY and p.fmt != "text":
            raise DataError(
                p.path,
                None,
                f"task {task.NAME} needs raw text (a .txt file or rows with 'text'), found {formats.describe(p.fmt)}",
            )
    for r in readable:
        try:
            r.item = task.read_row(p.path, r.line, r.row, cfg, p.fmt)
        except DataError as e:
            _fail(r, e)
        except Exception as e:  # a shape no loader check foresaw: still one row's problem, not a crash
            r.problem = f"cannot read this row ({type(e).__name__}: {e})"
    p.records = [r for r in p.records if r.problem or r.item is not None]  # tokens: empty sentences skipped
    for r in p.valid:
        try:
            task.check_item(p.path, r.item, p.kind == "conll")
        except DataError as e:
            r.line, r.item = e.line, None  # CoNLL: the tag's own line
            _fail(r, e)


def parse(path, task, cfg) -> Parsed:
    """Read and validate one file for `task` (a tasks.Task) as `cfg` says; a file-level problem lands in
    `.error`, row problems on the records."""
    path = Path(path)
    conll = task.CONLL and path.suffix.lower() in labelled.CONLL_SUFFIXES
    p = Parsed(path, "conll" if conll else "")
    try:
        if not path.is_file():
            raise DataError(path, None, "file not found")
        if not conll:
            p.kind = load.file_kind(path)
        _conll(p) if conll else _read(p, cfg.columns)
        if not p.records:
            raise DataError(path, None, "file has no rows" if not conll else "no sentences found")
        _validate(p, task, cfg)
    except DataError as e:
        p.error, p.records = entry(path, e.line, e.message), []
    return p


def invalid_rows(path, task, cfg) -> list[dict]:
    """Every problem in one file as {file, line, field, problem}; [] when training would accept it."""
    return parse(path, task, cfg).invalid()


def summary(problems: list[dict], limit: int = 5) -> str:
    """One message for an error: the count, then the first few as `file:line: problem`."""
    shown = [
        f"{p['file']}:{p['line']}: {p['problem']}" if p["line"] else f"{p['file']}: {p['problem']}"
        for p in problems[:limit]
    ]
    more = f"; ... and {len(problems) - limit} more (tunesmith check lists them all)" if len(problems) > limit else ""
    return f"{len(problems)} invalid row{'s' * (len(problems) != 1)}: " + "; ".join(shown) + more
