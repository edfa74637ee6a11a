"""Text-overlap scores for generated answers (SQuAD-style normalisation; ROUGE-L as LCS F1 on words)."""
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


def _needle(n: str) -> re.Pattern:
    # Case-insensitive, and a needle may not run on into a longer word or number: "$9" is not in "$95" or "$9.50".
    left = r"(?<!\w)" if n[:1].isalnum() else ""
    right = r"(?!\w|[.,]\d)" if n[-1:].isalnum() else ""
    return re.compile(left + re.escape(n.strip()) + right, re.IGNORECASE)


def contains(pred: str, needles: list[str]) -> float:
    return float(all(_needle(n).search(pred) for n in needles))


def score_generations(preds: list[str], refs: list[str], musts: list[list[str]]) -> dict:
    n = max(len(preds), 1)
    out = {"exact_match": sum(map(exact_match, preds, refs)) / n,
           "token_f1": sum(map(token_f1, preds, refs)) / n,
           "rouge_l": sum(map(rouge_l, preds, refs)) / n}
    with_must = [(p, m) for p, m in zip(preds, musts) if m]
    out["contains"] = sum(contains(p, m) for p, m in with_must) / len(with_must) if with_must else None
    return out
