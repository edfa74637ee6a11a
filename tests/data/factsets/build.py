"""Build train/test JSONL files for the synthetic fact sets.

Run from the repository root:

    python tests/data/factsets/build.py

For every folder ``tests/data/factsets/<name>/`` holding a ``facts.yaml``, this
validates the facts and writes ``<name>/train.jsonl`` (rows shuffled with
``random.Random(0)``) and ``<name>/test.jsonl`` (rows in fact order).
Any validation problem stops the build with a message naming the fact id.
Needs only the standard library and PyYAML.
"""

import json
import random
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
MIN_TRAIN, MIN_TEST, MAX_WORDS, NGRAM = 8, 2, 30, 5


def words(text):
    """Lower-cased words with punctuation removed (apostrophes dropped)."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("\u2019", ""))


def norm(text):
    return " ".join(words(text))


def ngrams(text, n=NGRAM):
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def fail(setname, fid, msg):
    raise SystemExit(f"{setname}: fact {fid!r}: {msg}")


def validate(setname, facts):
    seen_ids, seen_answers = set(), {}
    all_train = {}
    for f in facts:
        fid = f.get("id")
        if not fid:
            raise SystemExit(f"{setname}: a fact has no id")
        if fid in seen_ids:
            fail(setname, fid, "duplicate id")
        seen_ids.add(fid)
        answer, train, test = f.get("answer", ""), f.get("train") or [], f.get("test") or []
        must = f.get("must_contain") or []
        if not isinstance(answer, str) or not answer.strip():
            fail(setname, fid, "empty answer")
        if len(train) < MIN_TRAIN:
            fail(setname, fid, f"{len(train)} train questions, need at least {MIN_TRAIN}")
        if len(test) < MIN_TEST:
            fail(setname, fid, f"{len(test)} test questions, need at least {MIN_TEST}")
        if not must:
            fail(setname, fid, "must_contain is empty")
        for m in must:
            if str(m).lower() not in answer.lower():
                fail(setname, fid, f"must_contain {m!r} not in answer")
        if len(answer.split()) > MAX_WORDS:
            fail(setname, fid, f"answer has {len(answer.split())} words (max {MAX_WORDS})")
        key = norm(answer)
        if key in seen_answers:
            fail(setname, fid, f"same answer as fact {seen_answers[key]!r}")
        seen_answers[key] = fid
        for q in train:
            all_train.setdefault(norm(q), fid)
    for f in facts:
        fid = f["id"]
        train_grams = set().union(*(ngrams(q) for q in f["train"]))
        for q in f["test"]:
            if norm(q) in all_train:
                fail(setname, fid, f"test question {q!r} equals a train question of fact {all_train[norm(q)]!r}")
            shared = ngrams(q) & train_grams
            if shared:
                fail(
                    setname,
                    fid,
                    f"test question {q!r} shares {NGRAM} words {' '.join(sorted(shared)[0])!r} with a train question",
                )


def row(q, f):
    return {
        "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f["answer"]}],
        "must_contain": list(f["must_contain"]),
        "fact": f["id"],
    }


def write(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def build(folder):
    spec = yaml.safe_load((folder / "facts.yaml").read_text(encoding="utf-8"))
    facts = spec.get("facts") or []
    if not facts:
        raise SystemExit(f"{folder.name}: no facts")
    validate(folder.name, facts)
    train = [row(q, f) for f in facts for q in f["train"]]
    random.Random(0).shuffle(train)
    test = [row(q, f) for f in facts for q in f["test"]]
    write(folder / "train.jsonl", train)
    write(folder / "test.jsonl", test)
    print(f"{folder.name}: {len(facts)} facts, {len(train)} train rows, {len(test)} test rows")


def main():
    folders = sorted(p.parent for p in HERE.glob("*/facts.yaml"))
    if not folders:
        raise SystemExit(f"no */facts.yaml under {HERE}")
    for folder in folders:
        build(folder)


if __name__ == "__main__":
    sys.exit(main())
