"""Exact and near duplicates, train/eval leakage and conflicting answers, compared on each row's content.

A row's content is (input, output): the conversation before its last answer and that answer, a text and its
label(s), a sentence and its tags, or a plain text with no output. Comparing content rather than raw lines
makes two rows with the same fields in another order, or another column name, count as the same row.
"""

from __future__ import annotations

import json
import re

NEAR_THRESHOLD = 0.8  # Jaccard similarity of word 3-gram sets
SHINGLE, MIN_WORDS = 3, 8  # shorter texts are compared only by their normalised form
# 120 MinHash values in 20 bands of 6: a pair at similarity 0.8 shares a band with probability 0.998, at 0.5
# with 0.27, at 0.3 with 0.015, so candidate buckets stay small even when many rows share a template.
BANDS, ROWS = 20, 6
BUCKET_ALL_PAIRS = 100  # larger buckets: each row is compared with the first and the previous one only
SHOWN = 5  # example groups kept in the report


_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed: "Hello,  World!" == "hello world"."""
    return " ".join(_PUNCT.sub("", text.lower()).split())


def keys(records) -> list[tuple[str, str, str]]:
    """(exact key, normalised key, normalised input) per record."""
    out = []
    for r in records:
        inp, outp = r.content
        out.append((json.dumps([inp, outp]), normalise(inp) + "\x1f" + normalise(outp), normalise(inp)))
    return out


def _where(r) -> str:
    return f"{r.file}:{r.line}"


class _Groups:
    """Union-find over row indices."""

    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return [g for g in out.values() if len(g) > 1]


def _shingles(text: str, vocab: dict):
    """The text's word 3-grams as a sorted array of unique integers: three word ids of 21 bits each, so
    distinct 3-grams stay distinct up to two million different words."""
    import numpy as np

    words = normalise(text).split()
    if len(words) < MIN_WORDS:
        return None
    ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.uint64) & np.uint64((1 << 21) - 1)
    return np.unique((ids[:-2] << np.uint64(42)) | (ids[1:-1] << np.uint64(21)) | ids[2:])


def similar_pairs(texts: list[str], threshold: float = NEAR_THRESHOLD) -> list[tuple[int, int]]:
    """Pairs (i < j) of texts whose word 3-gram sets overlap at least `threshold` (Jaccard): MinHash LSH
    finds candidates that share a band, and each candidate pair is verified on its real 3-gram sets."""
    import numpy as np

    rng = np.random.default_rng(0)  # fixed: the same file always gives the same report
    a = rng.integers(1, 1 << 63, BANDS * ROWS, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    b = rng.integers(0, 1 << 63, BANDS * ROWS, dtype=np.uint64)
    vocab: dict[str, int] = {}
    sets = [_shingles(t, vocab) for t in texts]
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i, sh in enumerate(sets):
        if sh is None:
            continue
        # multiply-shift hashing: (a * x + b) mod 2^64, top 32 bits; numpy's uint64 wraps, no modulo needed
        sig = ((sh[:, None] * a[None, :] + b) >> np.uint64(32)).min(axis=0)
        for band, part in enumerate(sig.reshape(BANDS, ROWS)):
            buckets.setdefault((band, part.tobytes()), []).append(i)
    pairs, compared = set(), set()
    for members in buckets.values():
        for k in range(1, len(members)):
            i = members[k]
            others = members[:k] if len(members) <= BUCKET_ALL_PAIRS else {members[0], members[k - 1]}
            for j in others:
                if (j, i) in compared:  # the same pair often shares several bands
                    continue
                compared.add((j, i))
                both = np.intersect1d(sets[i], sets[j], assume_unique=True).size
                if both >= threshold * (sets[i].size + sets[j].size - both):
                    pairs.add((j, i))
    return sorted(pairs)


def duplicates(records, threshold: float = NEAR_THRESHOLD, near: bool = True) -> dict:
    """Exact duplicates (extra copies of the same content) and near duplicates (further rows that match an
    earlier one once normalised, or by word 3-gram similarity): the two counts never overlap."""
    ks = keys(records)
    exact, similar = _Groups(len(ks)), _Groups(len(ks))
    first_exact, first_norm = {}, {}
    for i, (ek, nk, _) in enumerate(ks):
        for seen, k, g in ((first_exact, ek, exact), (first_norm, nk, similar)):
            if k in seen:
                g.join(seen[k], i)
            else:
                seen[k] = i
    if near:  # one text per normalised form: its copies are joined already, and would only fill buckets
        reps = list(first_norm.values())
        texts = ["\n".join(records[i].content) for i in reps]
        for i, j in similar_pairs(texts, threshold):
            similar.join(reps[i], reps[j])
    for g in exact.groups():  # exact copies belong to their near group too
        for i in g[1:]:
            similar.join(g[0], i)
    exact_groups = exact.groups()
    n_exact = sum(len(g) - 1 for g in exact_groups)
    near_groups = [g for g in similar.groups() if len({ks[i][0] for i in g}) > 1]
    n_near = sum(len({ks[i][0] for i in g}) - 1 for g in near_groups)
    return {
        "duplicates": n_exact,
        "near_duplicates": n_near,
        "near_threshold": threshold,
        "duplicate_groups": [[_where(records[i]) for i in g] for g in exact_groups[:SHOWN]],
        "near_duplicate_groups": [[_where(records[i]) for i in g] for g in near_groups[:SHOWN]],
        "_copies": {i: g[0] for g in exact_groups for i in g[1:]},
    }


def leakage(train, other) -> tuple[list, set]:
    """Rows of `other` whose normalised content also occurs in training, and those training row indices."""
    where = {}
    for i, (_, nk, _) in enumerate(keys(train)):
        where.setdefault(nk, []).append(i)
    leaked, hit = [], set()
    for r, (_, nk, _) in zip(other, keys(other)):
        if nk in where:
            leaked.append(r)
            hit.update(where[nk])
    return leaked, hit


def conflicts(records) -> tuple[int, list]:
    """Inputs that occur with different outputs (answers, labels or tags), after normalising both."""
    outs: dict[str, dict[str, int]] = {}
    for i, (_r, (_, nk, ni)) in enumerate(zip(records, keys(records))):
        out = nk.split("\x1f", 1)[1]
        if out:  # plain text has no output to disagree on
            outs.setdefault(ni, {}).setdefault(out, i)
    bad = [sorted(v.values()) for v in outs.values() if len(v) > 1]
    return len(bad), [[_where(records[i]) for i in g] for g in bad[:SHOWN]]
