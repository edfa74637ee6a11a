"""Text-overlap scores for generated answers (SQuAD-style normalisation; ROUGE-L as LCS F1 on words).

`contains` checks that each `must_contain` fact is in the answer after `normalise_fact` has put both into one
canonical form, so a right fact in other words is not counted wrong: case, Unicode dashes and quotes, whitespace,
punctuation, thousands separators ("1,200" = "1200"), number words ("forty-five" = "45", "first" = "1st"),
"percent" = "%" and "a.m."/"am" spellings of times all compare equal. It stays strict where it matters: a needle
must match whole tokens ("$9" is not in "$95" or "$9.50", "9" is not in "1990"), words are not stemmed ("47 days"
is not in "a 47-day trip"), units are not converted ("€12" is not "12 euros"), a number's sign counts ("-5°C" is
not "5°C", "+44" is not "44") and "C++"/"C#" are not "C". `normalise_fact` lists the rules.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(pred: str, ref: str) -> float:
    return float(normalise(pred) == normalise(ref))


def token_f1(pred: str, ref: str) -> float:
    p, r = normalise(pred).split(), normalise(ref).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, ref: str) -> float:
    p, r = pred.lower().split(), ref.lower().split()
    p, r = [t.strip(string.punctuation) for t in p], [t.strip(string.punctuation) for t in r]
    p, r = [t for t in p if t], [t for t in r if t]
    if not p or not r:
        return float(p == r)
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


_DASHES_QUOTES = str.maketrans(
    {
        **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
        **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u00b4\u0060"},
        **{c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"},
    }
)
_AMPM = re.compile(r"(\d)\s*([ap])\.?\s?m\b\.?")  # 7am, 7 a.m., 7 A. M. -> "7 am"
_DOT_TIME = re.compile(r"(?<![\d.:])(\d{1,2})\.(\d{2}) ([ap]m)\b")  # 7.15 am -> 7:15 am
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?!\d|,\d)")  # 12,500,000 -> 12500000; 3,4 and 1,2345 stay
# Punctuation becomes a space, except . , : between two digits (9.50, 3,4, 7:15); % $ € £ become tokens of their own.
# Group 1 is kept as it is: a sign that starts a number ("-5", "+44": at the start or after whitespace or "(", right
# before a digit) and a run of + or # that ends a word after a letter ("c++", "c#", but "a+b" -> "a b").
_PUNCT_FACT = re.compile(
    r"((?<![^\s(])[-+](?=\d)|(?<=[^\W\d_])[+#]+(?![+#\w]))"
    r"|(?<!\d)[.,:]|[.,:](?!\d)|[^\w\s.,:%$\u20ac\u00a3]|_"
)
_SYMBOLS = re.compile("([%$\u20ac\u00a3])")

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_ORD_UNITS = {
    w: i
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth".split(),
        1,
    )
}
_ORD_TENS = {
    w: 10 * i
    for i, w in enumerate("twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split(), 2)
}
_ONE_AS_PRONOUN_AFTER = {"no", "the", "any", "every", "each", "some", "this", "that", "which", "such"}
_SECOND_AS_TIME_AFTER = {"a", "per", "split"}


def _ordinal(n: int) -> str:
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _below_100(t: list[str], i: int):
    """(value, is_ordinal, next index) for a number word under 100 at t[i], else None."""
    w = t[i] if i < len(t) else None
    nxt = t[i + 1] if i + 1 < len(t) else None
    if w in _TENS:
        if nxt in _UNITS and 1 <= _UNITS[nxt] <= 9:
            return _TENS[w] + _UNITS[nxt], False, i + 2
        if nxt in _ORD_UNITS and 1 <= _ORD_UNITS[nxt] <= 9 and nxt != "second":  # "twenty second" may be time
            return _TENS[w] + _ORD_UNITS[nxt], True, i + 2
        return _TENS[w], False, i + 1
    if w in _UNITS:
        return _UNITS[w], False, i + 1
    if w in _ORD_TENS:
        return _ORD_TENS[w], True, i + 1
    if w in _ORD_UNITS:
        return _ORD_UNITS[w], True, i + 1
    return None


def _below_1000(t: list[str], i: int, head_ok: bool):
    """(value, is_ordinal, next index, bare) for a number under 1000 at t[i], else None. With head_ok, "a" or a
    digit string may stand before "hundred" ("a hundred", "5 hundred"); alone it is returned as bare (not a number
    unless "thousand" follows)."""
    r = _below_100(t, i)
    if r is not None and not r[1]:
        value, j, bare = r[0], r[2], False
    elif r is not None:
        return (*r, False)
    elif head_ok and i < len(t) and (t[i] == "a" or (t[i].isascii() and t[i].isdigit())):
        value, j, bare = (1 if t[i] == "a" else int(t[i])), i + 1, True
    else:
        return None
    if j < len(t) and t[j] == "hundred":
        value, j, bare = value * 100, j + 1, False
        k = j + 1 if j < len(t) and t[j] == "and" else j
        rest = _below_100(t, k)
        if rest is not None:
            return value + rest[0], rest[1], rest[2], False
    return value, False, j, bare


def _number(t: list[str], i: int):
    """(text, next index) for the longest number in words (or digits + hundred/thousand) at t[i], else None."""
    r = _below_1000(t, i, head_ok=True)
    if r is None:
        return None
    value, is_ord, j, bare = r
    if not is_ord and j < len(t) and t[j] == "thousand":
        value, j = value * 1000, j + 1
        k = j + 1 if j < len(t) and t[j] == "and" else j
        rest = _below_1000(t, k, head_ok=False)
        if rest is not None:
            value, is_ord, j = value + rest[0], rest[1], rest[2]
    elif bare:
        return None
    return (_ordinal(value) if is_ord else str(value)), j


def _is_number(tok: str) -> bool:
    return tok.lstrip("+-")[:1].isdigit()


def normalise_fact(text: str) -> str:
    """Canonical form of a fact for `contains`: space-separated tokens, applied alike to answer and needle.

    Rules, in order:
      1. Unicode dashes and quotes become ASCII; everything is lower-cased.
      2. Times: "am"/"pm" after a digit is split off and its dots dropped ("7:15am", "7:15 a.m.", "7:15 AM" all
         give "7:15 am"), and a dot between hour and minutes before am/pm becomes a colon ("7.15 pm" -> "7:15 pm").
      3. Thousands separators go: a comma followed by exactly three digits inside a number written in groups of
         three ("1,200" -> "1200", "12,500,000" -> "12500000"); "3,4" and "1,2345" are left alone.
      4. Punctuation becomes a space (so "47-day" is "47 day", "Dr." is "dr"), except that ".", "," or ":"
         between two digits stays in the number ("9.50", "3,4", "7:15"), and % $ € £ stay as tokens of their own
         ("$9.50" -> "$ 9.50", "9%" -> "9 %"). Two more exceptions keep meaning that a space would lose:
         a "-" or "+" at the start of the text or after whitespace or "(", directly followed by a digit, is the
         number's sign and stays on it ("-5°C" -> "-5 c", so "-5°C" != "5°C"; "(+3)" -> "+3"), while a hyphen
         anywhere else still splits ("647-3291" -> "647 3291", "5-8" -> "5 8", "- 5" -> "5"); and a run of "+"/"#"
         right after a letter that ends the word stays on it ("C++" -> "c++", "C#" -> "c#", so neither is "c";
         "a+b" -> "a b"). A leading "+" is kept too, so "+5" != "5" and a phone number's "+44" != "44": write the
         needle with the "+" if and only if the answer should have it.
      5. "percent" and "per cent" become "%".
      6. Number words become digits: zero..nineteen, twenty..ninety with or without a unit ("forty-five", "forty
         five" -> "45"), hundreds ("a hundred" -> "100", "one hundred and five" -> "105", "twenty-five hundred" ->
         "2500") and thousands ("two thousand five hundred" -> "2500", "a thousand and one" -> "1001"); digits
         before hundred/thousand count too ("5 thousand" -> "5000"). "a" alone is never a number; "million" and
         larger are left as words (so "two million" = "2 million"). Number words in a row that do not form one
         number stay separate ("five six" -> "5 6").
         Ordinal words become digit ordinals: "first".."nineteenth", "twentieth".."ninetieth" and compounds
         ("twenty-first" -> "21st"); digit ordinals ("21st") are kept as they are.
         Exceptions, so that pronouns and time units are not read as numbers: "one" stays a word after
         no/the/any/every/each/some/this/that/which/such ("no one", "the one") unless hundred/thousand follows;
         "second" stays a word after a number or a/per/split ("one second" -> "1 second", "a second"); only whole
         words are read, so "someone", "money", "tone" never change.
      7. Whitespace is collapsed to single spaces.
    Words are not stemmed or singularised and units are not converted ("day" != "days", "€12" != "12 euros").
    """
    text = text.translate(_DASHES_QUOTES).lower()
    text = _DOT_TIME.sub(r"\1:\2 \3", _AMPM.sub(r"\1 \2m ", text))
    text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    text = _SYMBOLS.sub(r" \1 ", _PUNCT_FACT.sub(lambda m: m.group(1) or " ", text))
    t, out, i = text.split(), [], 0
    while i < len(t):
        w, prev = t[i], (out[-1] if out else None)
        nxt = t[i + 1] if i + 1 < len(t) else None
        if w == "percent" or (w == "per" and nxt == "cent"):
            out.append("%")
            i += 1 if w == "percent" else 2
            continue
        if (w == "one" and prev in _ONE_AS_PRONOUN_AFTER and nxt not in ("hundred", "thousand")) or (
            w == "second" and prev is not None and (prev in _SECOND_AS_TIME_AFTER or _is_number(prev))
        ):
            out.append(w)
            i += 1
            continue
        r = _number(t, i)
        if r is None:
            out.append(w)
            i += 1
        else:
            out.append(r[0])
            i = r[1]
    return " ".join(out)


def contains(pred: str, needles: list[str]) -> float:
    """1.0 iff every needle, after `normalise_fact`, occurs in the normalised prediction as a run of whole tokens
    ("$9" is in "It costs $9." but not in "$95" or "$9.50"). A needle that normalises to nothing counts as found."""
    hay = f" {normalise_fact(pred)} "
    return float(all(not (n := normalise_fact(needle)) or f" {n} " in hay for needle in needles))


def row_scores(preds: list[str], refs: list[str], musts: list[list[str]]) -> dict[str, list]:
    """Each row's score, per metric (`mean_scores` averages them): exact_match, token_f1, rouge_l, and contains
    (None on rows without must_contain). For paired comparisons of two systems."""
    return {
        "exact_match": list(map(exact_match, preds, refs)),
        "token_f1": list(map(token_f1, preds, refs)),
        "rouge_l": list(map(rouge_l, preds, refs)),
        "contains": [contains(p, m) if m else None for p, m in zip(preds, musts)],
    }


def mean_scores(rows: dict[str, list]) -> dict:
    """The means of `row_scores`: contains over the rows that have must_contain (None when none has)."""
    n = max(len(rows["exact_match"]), 1)
    out = {k: sum(rows[k]) / n for k in ("exact_match", "token_f1", "rouge_l")}
    found = [c for c in rows["contains"] if c is not None]
    out["contains"] = sum(found) / len(found) if found else None
    return out


def score_generations(preds: list[str], refs: list[str], musts: list[list[str]]) -> dict:
    return mean_scores(row_scores(preds, refs, musts))
