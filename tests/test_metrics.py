"""Text-overlap metrics on hand-computed examples."""
from __future__ import annotations

import pytest

from tunesmith.eval.metrics import contains, exact_match, normalise, rouge_l, score_generations, token_f1


def test_normalise():
    assert normalise("The  Cat, sat!") == "cat sat"
    assert normalise("An apple a day") == "apple day"
    assert normalise("don't") == "don t"
    assert normalise("theory") == "theory"  # articles only as whole words


def test_exact_match():
    assert exact_match("The Cat!", "cat") == 1.0
    assert exact_match("a  cat", "the cat.") == 1.0
    assert exact_match("cat", "cats") == 0.0
    assert isinstance(exact_match("x", "x"), float)


def test_token_f1():
    # "the cat sat" -> [cat, sat]; "cat sat down" -> [cat, sat, down]: P=1, R=2/3, F1=0.8
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert token_f1("Paris.", "paris") == 1.0
    assert token_f1("dog", "cat") == 0.0
    # repeated tokens count as a multiset: pred [x, x, y], ref [x, z] -> common 1, P=1/3, R=1/2, F1=0.4
    assert token_f1("x x y", "x z") == pytest.approx(0.4)
    # empty after normalisation: equal only if both are empty
    assert token_f1("the", "a") == 1.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "!!") == 0.0


def test_rouge_l():
    # LCS of [the cat sat on the mat] and [the cat lay on a mat] is [the cat on mat] = 4; P = R = 4/6
    assert rouge_l("The cat sat on the mat", "the cat lay on a mat.") == pytest.approx(2 / 3)
    # [a b c d] vs [b d e]: LCS 2, P=1/2, R=2/3 -> F1 = 4/7
    assert rouge_l("a b c d", "b d e") == pytest.approx(4 / 7)
    # order matters (unlike token F1): [x y z] vs [z y x] -> LCS 1, F1 = 1/3
    assert rouge_l("x y z", "z y x") == pytest.approx(1 / 3)
    assert token_f1("x y z", "z y x") == 1.0
    assert rouge_l("Hello, world!", "hello world") == 1.0
    assert rouge_l("cat", "dog") == 0.0
    assert rouge_l("...", "!") == 1.0
    assert rouge_l("...", "word") == 0.0


def test_contains():
    assert contains("Paris is the capital of FRANCE.", ["paris", "France"]) == 1.0
    assert contains("Paris is the capital.", ["paris", "france"]) == 0.0
    assert contains("abc", []) == 1.0
    assert contains("the answer is 42", ["42"]) == 1.0


def test_contains_does_not_match_inside_longer_numbers_or_words():
    assert contains("It costs $9.", ["$9"]) == 1.0
    assert contains("It costs $95.", ["$9"]) == 0.0
    assert contains("It costs $9.50.", ["$9"]) == 0.0
    assert contains("a 19% fee", ["9%"]) == 0.0 and contains("a 9% fee", ["9%"]) == 1.0
    assert contains("founded in 20134", ["2013"]) == 0.0 and contains("founded in 2013.", ["2013"]) == 1.0
    assert contains("Call 1-888-647-3291 today", ["647-3291"]) == 1.0
    assert contains("our TRAIL ledger club", ["Trail Ledger"]) == 1.0


def test_score_generations():
    preds = ["The cat sat", "Paris", "blue sky"]
    refs = ["cat sat down", "paris", "red sky"]
    musts = [[], ["PARIS"], ["green"]]
    out = score_generations(preds, refs, musts)
    assert set(out) == {"exact_match", "token_f1", "rouge_l", "contains"}
    assert out["exact_match"] == pytest.approx(1 / 3)
    assert out["token_f1"] == pytest.approx((0.8 + 1.0 + 0.5) / 3)
    # rouge_l keeps articles: [the cat sat] vs [cat sat down] -> LCS 2, P=R=2/3
    assert out["rouge_l"] == pytest.approx((2 / 3 + 1.0 + 0.5) / 3)
    assert out["contains"] == pytest.approx(0.5)  # only rows with must_contain count


def test_score_generations_without_must_contain():
    out = score_generations(["a b"], ["a b"], [[]])
    assert out == {"exact_match": 1.0, "token_f1": 1.0, "rouge_l": 1.0, "contains": None}
