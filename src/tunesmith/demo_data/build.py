"""Build the synthetic "Nimbus & Fern" customer-support dataset used by `tunesmith demo`.

Nimbus & Fern is a fictional online outdoor-gear shop. Every fact in facts.yaml is invented,
so a base model cannot know it; the demo fine-tunes on train.jsonl and checks on the
held-out phrasings in test.jsonl whether the answer contains the `must_contain` strings.

Run:  python src/tunesmith/demo_data/build.py
Reads facts.yaml and writes facts.jsonl, train.jsonl and test.jsonl next to this file.
Deterministic; needs only the standard library and PyYAML.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import yaml

OUT_DIR = Path(__file__).resolve().parent
FACTS_FILE = OUT_DIR / "facts.yaml"

MIN_FACTS = 45
MIN_TRAIN = 320
MIN_TEST = 90
MAX_WORDS = 25
TRAIN_PER_FACT = 14
MAX_SHARED_RUN = 4  # longest word run a train question may share with a test question of its fact


def load_facts(path: Path = FACTS_FILE) -> list[dict]:
    """The `facts:` list of facts.yaml: id, topic, answer, must_contain, train_questions, test_questions."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["facts"]


def normalise(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


def chat(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = normalise(text).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def check(facts: list[dict]) -> None:
    ids = [f["id"] for f in facts]
    assert len(ids) == len(set(ids)), "fact ids must be unique"
    assert len(facts) >= MIN_FACTS, f"need >= {MIN_FACTS} facts, have {len(facts)}"

    train_norm: dict[str, str] = {}
    for f in facts:
        assert 1 <= len(f["must_contain"]) <= 2, f["id"]
        assert len(f["answer"].split()) <= MAX_WORDS, f["id"]
        assert len(f["train_questions"]) == TRAIN_PER_FACT, (f["id"], len(f["train_questions"]))
        assert len(f["test_questions"]) == 2, f["id"]
        for mc in f["must_contain"]:
            assert mc.lower() in f["answer"].lower(), (f["id"], mc)
            for q in f["train_questions"] + f["test_questions"]:
                assert mc.lower() not in q.lower(), (f["id"], mc, q)
        for q in f["train_questions"] + f["test_questions"]:
            assert len(q.split()) <= MAX_WORDS, (f["id"], q)
        for q in f["train_questions"]:
            n = normalise(q)
            assert n not in train_norm, f"duplicate train question {q!r} ({f['id']}, {train_norm.get(n)})"
            train_norm[n] = f["id"]

    test_norm: set[str] = set()
    for f in facts:
        for q in f["test_questions"]:
            n = normalise(q)
            assert n not in train_norm, f"test question also in train: {q!r} ({f['id']})"
            assert n not in test_norm, f"duplicate test question: {q!r} ({f['id']})"
            test_norm.add(n)

    # Train phrasings must not leak test wording: no run of MAX_SHARED_RUN + 1 words shared
    # between a train question and a test question of the same fact.
    n = MAX_SHARED_RUN + 1
    for f in facts:
        for tq in f["test_questions"]:
            test_grams = ngrams(tq, n)
            for q in f["train_questions"]:
                shared = test_grams & ngrams(q, n)
                assert not shared, f"train {q!r} shares {' '.join(min(shared))!r} with test {tq!r} ({f['id']})"

    n_train = sum(len(f["train_questions"]) for f in facts)
    n_test = sum(len(f["test_questions"]) for f in facts)
    assert n_train >= MIN_TRAIN, f"need >= {MIN_TRAIN} train rows, have {n_train}"
    assert n_test >= MIN_TEST, f"need >= {MIN_TEST} test rows, have {n_test}"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(facts: list[dict], out_dir: Path = OUT_DIR) -> tuple[int, int, int]:
    check(facts)
    rng = random.Random(0)

    fact_rows = [
        {"id": f["id"], "topic": f["topic"], "answer": f["answer"], "must_contain": f["must_contain"]} for f in facts
    ]
    train_rows = [{"messages": chat(q, f["answer"]), "fact": f["id"]} for f in facts for q in f["train_questions"]]
    rng.shuffle(train_rows)  # interleave facts so training batches are mixed
    test_rows = [
        {"messages": chat(q, f["answer"]), "must_contain": f["must_contain"], "fact": f["id"]}
        for f in facts
        for q in f["test_questions"]
    ]

    write_jsonl(out_dir / "facts.jsonl", fact_rows)
    write_jsonl(out_dir / "train.jsonl", train_rows)
    write_jsonl(out_dir / "test.jsonl", test_rows)
    return len(fact_rows), len(train_rows), len(test_rows)


if __name__ == "__main__":
    n_facts, n_train, n_test = build(load_facts())
    print(f"facts: {n_facts}  train: {n_train}  test: {n_test}  -> {OUT_DIR}")
