"""Likely personal data: e-mail addresses, phone numbers, card-like numbers. Reported, never changed:
a regex cannot tell a customer's address from a documented example, so the decision stays with a person."""

from __future__ import annotations

import re

EXAMPLES = 3  # rows shown per kind

EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Domains reserved for documentation (RFC 2606): nobody's address, and common in code and examples.
RESERVED = re.compile(
    r"@(?:[\w-]+\.)*(?:example\.(?:com|net|org)|[\w-]+\.(?:example|test|invalid|localhost))$", re.IGNORECASE
)
# 13-19 digits, optionally in groups split by one space or hyphen; confirmed by the Luhn checksum below and
# by an issuer's prefix and length, since one in ten order numbers and IDs passes Luhn by chance.
ISSUER = re.compile(
    r"4(\d{12}|\d{15}|\d{18})$|(5[1-5]|2[2-7])\d{14}$|3[47]\d{13}$|3[0689]\d{12,14}$"
    r"|6\d{15,18}$"
)
CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)")
# Phone shapes, not just any digit run (order numbers, years and IP addresses stay out):
# +44 20 7946 0958 | (555) 123-4567 | 555-123-4567, 555.123.4567 | 020 7946 0958.
PHONE = re.compile(
    r"""(?<![\w+.-])(?<!\d[ .])(?:
      \+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}
    | \(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}
    | \d{3}([ .-])\d{3}\1\d{4}
    | 0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}
    )(?![\w-]|[ .]\d)""",
    re.VERBOSE,
)  # not a slice of a longer run of digit groups


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def find(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) for each hit; a span taken as a card number is not also a phone number."""
    hits, taken = [], []
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if ISSUER.match(digits) and luhn(digits):
            hits.append(("card", m.group()))
            taken.append(m.span())
    for m in PHONE.finditer(text):
        n = sum(ch.isdigit() for ch in m.group())
        if 8 <= n <= 15 and not any(a < m.end() and m.start() < b for a, b in taken):
            hits.append(("phone", m.group()))
    hits += [("email", m.group()) for m in EMAIL.finditer(text) if not RESERVED.search(m.group())]
    return hits


def mask(s: str) -> str:
    """Enough to find it in the file, not enough to leak it into a CI log."""
    keep = 2 if len(s) > 6 else 1
    return s[:keep] + "*" * (len(s) - 2 * keep) + s[-keep:]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def scan(records) -> dict:
    """Counts by kind (every occurrence) and up to EXAMPLES rows per kind as file:line with a masked match."""
    counts = {"email": 0, "phone": 0, "card": 0}
    examples: dict[str, list] = {k: [] for k in counts}
    for r in records:
        source = r.row if r.row is not None else r.raw
        for text in strings(source):
            for kind, match in find(text):
                counts[kind] += 1
                shown = examples[kind]
                if len(shown) < EXAMPLES and not any(e["line"] == r.line and e["file"] == r.file for e in shown):
                    shown.append({"file": r.file, "line": r.line, "match": mask(match)})
    return {"pii": counts, "pii_examples": examples}
