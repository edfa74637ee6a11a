"""Detect which of the known row layouts a file uses, and normalise every row to one Example."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
}

# (format name, fields that identify it, what the user sees)
FORMATS = [
    ("messages", ("messages",), "chat messages"),
    ("sharegpt", ("conversations",), "ShareGPT conversations"),
    ("prompt_completion", ("prompt", "completion"), "prompt/completion"),
    ("alpaca", ("instruction",), "alpaca instruction/input/output"),
    ("text", ("text",), "plain text"),
]


@dataclass
class Example:
    line: int
    messages: list[dict] | None = None  # {"role", "content", "weight"}; weight 0 = no loss on that turn
    text: str | None = None
    must_contain: list[str] = field(default_factory=list)


def detect_format(path: Path, rows: list[tuple[int, dict]]) -> str:
    keys = set(rows[0][1])
    for name, needed, _ in FORMATS:
        if all(k in keys for k in needed):
            return name
    raise DataError(
        path,
        rows[0][0],
        f"unknown row layout, fields {sorted(keys)}; expected one of: "
        "messages | conversations | prompt+completion | instruction+output | text "
        "(map other names with --column yours=expected)",
    )


def describe(fmt: str) -> str:
    return next(desc for name, _, desc in FORMATS if name == fmt)


def _string(path, line, row, key, allow_empty=False) -> str:
    if key not in row or row[key] is None:
        raise DataError(path, line, f"missing field '{key}'")
    value = row[key]
    if not isinstance(value, str):
        raise DataError(path, line, f"field '{key}' must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(path, line, f"field '{key}' is empty")
    return value


def _messages(path, line, turns, key, role_key, content_key, role_map) -> list[dict]:
    if not isinstance(turns, list) or not turns:
        raise DataError(path, line, f"field '{key}' must be a non-empty list of turns")
    out = []
    for j, turn in enumerate(turns):
        where = f"{key}[{j}]"
        if not isinstance(turn, dict):
            raise DataError(path, line, f"{where} must be an object")
        role = turn.get(role_key)
        if not isinstance(role, str) or role not in role_map:  # a list or object is no role (and unhashable)
            raise DataError(
                path, line, f"{where}.{role_key}: unknown role {role!r} (expected one of {', '.join(sorted(role_map))})"
            )
        content = turn.get(content_key)
        if not isinstance(content, str):
            raise DataError(path, line, f"{where}.{content_key} must be a string")
        weight = turn.get("weight")
        weight = 1 if weight is None else weight  # Parquet fills a missing per-turn weight with null
        if weight not in (0, 1) or isinstance(weight, bool):
            raise DataError(path, line, f"{where}.weight must be 0 or 1, got {weight!r}")
        role = role_map[role]
        if role == "assistant" and not content.strip():
            raise DataError(path, line, f"{where}.{content_key}: empty assistant turn")
        out.append({"role": role, "content": content, "weight": int(weight)})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(path, line, f"field '{key}' has no assistant turn")
    if out[-1]["role"] != "assistant":
        raise DataError(path, line, f"field '{key}': the last turn must be the assistant's")
    return out


def _must_contain(path, line, row) -> list[str]:
    value = row.get("must_contain")
    if value is None:
        return []
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(path, line, "field 'must_contain' must be a string or a list of non-empty strings")
    return value


def normalise(path: Path, line: int, row: dict, fmt: str) -> Example:
    must = _must_contain(path, line, row)
    if fmt == "messages":
        msgs = _messages(path, line, row.get("messages"), "messages", "role", "content", {r: r for r in ROLES})
    elif fmt == "sharegpt":
        msgs = _messages(path, line, row.get("conversations"), "conversations", "from", "value", SHAREGPT_ROLES)
    elif fmt == "prompt_completion":
        msgs = [
            {"role": "user", "content": _string(path, line, row, "prompt"), "weight": 0},
            {"role": "assistant", "content": _string(path, line, row, "completion"), "weight": 1},
        ]
    elif fmt == "alpaca":
        answer_key = "output" if "output" in row else "response"
        prompt = _string(path, line, row, "instruction")
        extra = row.get("input") or ""
        if not isinstance(extra, str):
            raise DataError(path, line, "field 'input' must be a string")
        if extra.strip():
            prompt = f"{prompt}\n\n{extra}"
        msgs = [
            {"role": "user", "content": prompt, "weight": 0},
            {"role": "assistant", "content": _string(path, line, row, answer_key), "weight": 1},
        ]
    else:
        return Example(line=line, text=_string(path, line, row, "text"), must_contain=must)
    return Example(line=line, messages=msgs, must_contain=must)


def with_system(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """Prepend the run's system prompt to a conversation that has none (same in training and use)."""
    if not system_prompt or (messages and messages[0]["role"] == "system"):
        return messages
    return [{"role": "system", "content": system_prompt, "weight": 0}, *messages]


def read_examples(
    path: str | Path, columns: dict[str, str] | None = None, system_prompt: str | None = None
) -> tuple[str, list[Example]]:
    """Load, detect and validate a whole file; the first bad row raises `file:line: problem`."""
    from .load import load_rows

    path = Path(path)
    rows = load_rows(path, columns)
    fmt = detect_format(path, rows)
    examples = [normalise(path, line, row, fmt) for line, row in rows]
    for ex in examples:
        if ex.messages is not None:
            ex.messages = with_system(ex.messages, system_prompt)
    return fmt, examples
