"""`tunesmith eval --baselines`: few-shot and RAG prompts, retrieval and its recall, the paired bootstrap, the
verdict, the linear probe, and the wiring on tiny runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import qa_rows, sentiment_rows, write_jsonl

import tunesmith
from tunesmith.errors import TunesmithError
from tunesmith.eval import baselines as bl
from tunesmith.eval.retrieve import BM25, Retriever, chunk_words, read_docs, recall_at_k, retriever, rrf
from tunesmith.eval.verdict import paired_bootstrap, training_cost, verdict

METRICS = {"exact_match", "token_f1", "rouge_l", "contains"}

# A hand-made corpus: each question's right pair shares its content words, the others do not.
PAIRS = [
    [{"role": "user", "content": "How long is the return window?"}, {"role": "assistant", "content": "47 days."}],
    [{"role": "user", "content": "What does the Zephyr 28 weigh?"}, {"role": "assistant", "content": "940 grams."}],
    [{"role": "user", "content": "Do you ship to Canada?"}, {"role": "assistant", "content": "Yes, in 6 days."}],
    [{"role": "user", "content": "When does the shop open?"}, {"role": "assistant", "content": "At 9 a.m."}],
    [{"role": "user", "content": "Is the tent waterproof?"}, {"role": "assistant", "content": "Up to 3000 mm."}],
]
QUERIES = ["how long is your return window", "weight of the zephyr 28 backpack", "shipping to canada"]


# -- names -------------------------------------------------------------------------------------------------


def test_baseline_names_are_parsed_and_checked():
    assert bl.parse(" few-shot,RAG,rag,, tuned+rag") == ["few-shot", "rag", "tuned+rag"]
    assert bl.parse(["zero-shot"]) == ["zero-shot"] and bl.parse(None) == []
    with pytest.raises(TunesmithError) as e:
        bl.parse("few-shot,bm25")
    assert str(e.value) == ("unknown baseline 'bm25' (known: zero-shot, few-shot, rag, tuned+rag, linear-probe)")
    with pytest.raises(TunesmithError, match="baseline 'rag' does not apply to task classify"):
        bl.check_applies(["rag"], ("linear-probe",), "classify")


@pytest.mark.e2e
def test_bad_baseline_name_exits_2_with_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "tunesmith", "eval", tmp_path, "--data", "x.jsonl", "--baselines", "zero-shot,oracle"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: unknown baseline 'oracle' (known: zero-shot, few-shot, rag, tuned+rag, linear-probe)"
    ]


# -- prompts -----------------------------------------------------------------------------------------------


def test_few_shot_prompt_holds_k_training_turns_and_fits_the_context(tokenizer):
    train = [r["messages"] for r in qa_rows(20)]
    shots = bl.pick_shots(train, 4, seed=42)
    assert shots == bl.pick_shots(train, 4, seed=42) and shots != bl.pick_shots(train, 4, seed=7)
    test = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "code 99?"}]
    conv, n = bl.few_shot_prompt(test, shots, bl.fitter(tokenizer, 10_000, 32))
    assert n == 4 and len(conv) == 2 + 2 * 4
    assert conv[0] == test[0] and conv[-1] == test[-1]  # system first, the question last
    assert conv[1:-1] == [t for s in shots for t in s]
    # A context that holds the four shots but not the answer budget too: the last shot is dropped.
    from tunesmith.eval.generate import encode

    limit = len(encode(tokenizer, conv))
    cut, m = bl.few_shot_prompt(test, shots, bl.fitter(tokenizer, limit, 8))
    assert m == 3 and cut[1:-1] == [t for s in shots[:3] for t in s]
    assert len(encode(tokenizer, cut)) + 8 <= limit
    assert bl.few_shot_prompt(test, shots, lambda c: False) == (test, 0)


def test_rag_prompt_holds_the_retrieved_pairs_best_first(tokenizer):
    contexts = [bl.pair_text(p) for p in PAIRS[:3]]
    assert contexts[0] == "Q: How long is the return window?\nA: 47 days."
    test = [{"role": "user", "content": "Return window?"}]
    conv, n = bl.rag_prompt(test, contexts, bl.fitter(tokenizer, 10_000, 32))
    assert n == 3 and len(conv) == 1
    body = conv[0]["content"]
    assert body.startswith(bl.RAG_INTRO) and body.endswith("Question: Return window?")
    assert body.index(contexts[0]) < body.index(contexts[1]) < body.index(contexts[2])
    short, m = bl.rag_prompt(test, contexts, lambda c: len(c[0]["content"]) < len(body) - 5)
    assert m == 2 and contexts[2] not in short[0]["content"] and contexts[1] in short[0]["content"]


# -- retrieval ---------------------------------------------------------------------------------------------


def test_bm25_and_fusion_rank_the_right_pair_first():
    texts = [bl.pair_text(p) for p in PAIRS]
    bm25 = BM25(texts)
    assert int(np.argmax(bm25.scores(QUERIES[1]))) == 1
    assert not bm25.scores("xyzzy plugh").any()  # no shared word: all zero
    assert [h[0] for h in Retriever(texts).search(QUERIES, 2)] == [0, 1, 2]

    # Fusion: a dense ranking that puts the right pair second still leaves it first after RRF with BM25.
    def embed(batch):
        out = np.zeros((len(batch), len(texts)), dtype=np.float32)
        for i, t in enumerate(batch):
            if t in texts:
                out[i, texts.index(t)] = 1.0
            else:  # a query: most like pair 4, then its right pair
                right = QUERIES.index(t)
                out[i, 4], out[i, right] = 0.8, 0.6
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    hits = Retriever(texts, embed).search(QUERIES, 3)
    assert [h[0] for h in hits] == [0, 1, 2] and all(h[1] == 4 for h in hits)
    assert Retriever(texts, embed, bm25=False).search(QUERIES, 2) == [[4, 0], [4, 1], [4, 2]]  # dense alone
    with pytest.raises(TunesmithError, match="unknown retrieval method 'sparse'"):
        retriever(texts, "sparse")


def test_rrf_sums_reciprocal_ranks():
    assert rrf([[2, 0, 1], [2, 1, 0]]) == [2, 0, 1]  # 0 and 1 tie on 1/62 + 1/63: the lower index first
    assert rrf([[5], [7, 5]], k=1) == [5, 7]  # 5: 1/2 + 1/3 > 7: 1/2


@pytest.mark.slow
def test_minilm_fusion_ranks_the_right_pair_first():
    from tunesmith.eval.retrieve import sentence_embedder

    texts = [bl.pair_text(p) for p in PAIRS]
    embed = sentence_embedder("minilm-l6")
    vecs = embed(texts)
    assert vecs.shape == (5, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    hits = Retriever(texts, embed).search(QUERIES + ["is my tent going to keep the rain out"], 1)
    assert [h[0] for h in hits] == [0, 1, 2, 4]


def test_recall_at_k_counts_rows_whose_fact_was_retrieved():
    retrieved = [["47 days.", "940 grams."], ["At 9 a.m."], ["Yes, in six days."], ["anything"]]
    musts = [["47 days"], ["940 grams"], ["6 days"], []]
    assert recall_at_k(retrieved, musts) == (pytest.approx(2 / 3), 3)  # "six" = "6"; the last row is not counted
    assert recall_at_k([["x"]], [[]]) == (None, 0)


def test_docs_are_chunked_into_overlapping_passages(tmp_path):
    words = [f"w{i}" for i in range(450)]
    chunks = chunk_words(" ".join(words), 200, 50)
    assert [c.split()[0] for c in chunks] == ["w0", "w150", "w300"] and chunks[-1].split()[-1] == "w449"
    assert chunks[0].split()[-50:] == chunks[1].split()[:50]
    (tmp_path / "a.md").write_text("alpha beta")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("gamma")
    (tmp_path / "c.pdf").write_text("ignored")
    assert read_docs(tmp_path) == ["alpha beta", "gamma"]
    with pytest.raises(TunesmithError, match="--docs not found"):
        read_docs(tmp_path / "missing")


# -- bootstrap, cost, verdict ------------------------------------------------------------------------------


def test_paired_bootstrap_is_deterministic_and_holds_the_estimate():
    rng = np.random.default_rng(1)
    a = [float(x) for x in rng.random(80) < 0.7]
    b = [float(x) for x in rng.random(80) < 0.4]
    m = paired_bootstrap(a, b)
    assert m == paired_bootstrap(a, b)  # fixed seed
    assert m["diff"] == pytest.approx(np.mean(a) - np.mean(b)) and m["rows"] == 80
    assert m["low"] < m["diff"] < m["high"] and m["high"] - m["low"] < 0.5
    assert paired_bootstrap(a, b, seed=1) != m
    same = paired_bootstrap([1.0, 0.0, None], [1.0, 0.0, 1.0])  # None rows are left out of both
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0, "rows": 2}


def test_training_cost_from_the_summary_and_the_price_table():
    from tunesmith.config import REFERENCE_GPU

    gpu = {"name": "G", "usd_per_hour": 3.6, "peak_tflops": 100, "utilisation": 0.5}
    summary = {"train_seconds": 377.0, "tokens": 60_000, "total_params": 100_000_000, "method": "full"}
    c = training_cost(summary, gpu)
    # 100e12 x 0.5 / (6 x 1e8) = 83,333 tokens/s -> 0.72 s -> 0.72 / 3600 h x $3.6 = $0.00072
    assert c["assumed_tokens_per_s"] == 83_333 and c["estimated_gpu_seconds"] == pytest.approx(0.72)
    assert c["estimated_usd"] == pytest.approx(0.00072)
    assert training_cost({**summary, "method": "lora"}, gpu)["assumed_tokens_per_s"] == 125_000  # 4 x params
    assert training_cost({}, gpu) is None and "estimated_usd" not in training_cost(summary, None)
    assert {"name", "usd_per_hour", "peak_tflops", "utilisation"} <= REFERENCE_GPU.keys()


def test_verdict_when_fine_tuning_wins():
    tuned = [1.0] * 70 + [0.0] * 30
    rag = [1.0] * 55 + [0.0] * 45
    base = [0.0] * 100
    v = verdict(tuned, {"base": base, "rag": rag}, "contains")
    assert v["best_baseline"] == "rag" and v["best_baseline_score"] == 0.55 and v["tuned"] == 0.70
    assert v["margin"]["diff"] == pytest.approx(0.15) and v["margin"]["low"] > 0
    text = v["text"]
    assert "The best option without fine-tuning is RAG: fact accuracy (contains) 55.0%" in text
    assert "RAG alone reaches 79% of the fine-tuned score without training." in text
    lo, hi = 100 * v["margin"]["low"], 100 * v["margin"]["high"]
    assert f"Fine-tuning beats the best baseline (rag) by +15.0 points (95% CI {lo:+.1f} to {hi:+.1f}" in text
    assert "not clear" not in text


def test_verdict_when_a_baseline_wins_says_so():
    tuned = [1.0] * 40 + [0.0] * 60
    rag = [1.0] * 80 + [0.0] * 20
    few = [1.0] * 30 + [0.0] * 70
    v = verdict(tuned, {"base": [0.0] * 100, "few_shot": few, "rag": rag}, "contains", tuned_rag=[1.0] * 100)
    assert v["best_baseline"] == "rag" and v["margin"]["diff"] == pytest.approx(-0.4) and v["margin"]["high"] < 0
    lo, hi = -100 * v["margin"]["high"], -100 * v["margin"]["low"]  # stated as RAG minus fine-tuned
    assert f"RAG beats fine-tuning by 40.0 points (95% CI {lo:+.1f} to {hi:+.1f}" in v["text"] and lo > 0
    assert "fine-tuning did not pay; RAG is the better choice" in v["text"]
    assert "Fine-tuning + RAG reaches 100.0%, +60.0 points over fine-tuning alone" in v["text"]
    f1 = verdict([0.5, 0.6], {"few_shot": [0.7, 0.9]}, "token_f1")
    assert f1["best_baseline"] == "few_shot" and "Few-shot prompting beats fine-tuning by 25.0 points" in f1["text"]


# -- linear probe ------------------------------------------------------------------------------------------


def test_linear_probe_separates_a_separable_toy_set():
    rng = np.random.default_rng(0)
    y = [i % 3 for i in range(150)]
    centres = rng.normal(size=(3, 16)) * 3
    x = np.stack([centres[c] + rng.normal(size=16) for c in y])
    pred = bl.linear_probe(x[:100], y[:100], x[100:], seed=0)
    acc = np.mean(bl.correct(y[100:], pred))
    assert acc >= 0.95  # chance is 1/3
    multi = [[int(c == 0), int(c != 2)] for c in y]
    pm = bl.linear_probe(x[:100], multi[:100], x[100:], multi_label=True)
    assert np.mean(bl.correct(multi[100:], pm)) >= 0.9


# -- wiring on tiny runs -----------------------------------------------------------------------------------


def _train(model, train, tmp_path, **settings):
    """A tiny full fine-tune of `model` on `train` into tmp_path/run."""
    common = dict(model=str(model), data=str(train), output=str(tmp_path / "run"), method="full", tensorboard=False)
    return tunesmith.train({**common, **settings})


def test_sft_run_with_every_generation_baseline(tiny_llama, tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(24))
    test_rows = qa_rows(6, start=24)
    for row in test_rows:
        row["must_contain"] = row["messages"][-1]["content"].split()[-1].rstrip(".")
    test = write_jsonl(tmp_path / "test.jsonl", test_rows)
    run = _train(tiny_llama, train, tmp_path, max_steps=4, batch_size=8, max_seq_len=64, seed=3, general="none")
    logs = []
    res = run.evaluate(
        test,
        baselines="zero-shot,few-shot,rag,tuned+rag",
        shots=3,
        top_k=2,
        max_new_tokens=4,
        embedder=str(tiny_bert),  # a random encoder: the wiring, not the ranking
        log=logs.append,
        save=True,
    )
    for key in ("base", "tuned", "few_shot", "rag", "tuned_rag"):
        assert METRICS <= res[key].keys(), key
        assert len(res[key]["_rows"]["contains"]) == 6
    assert {"loss", "perplexity"} <= res["base"].keys() and "loss" not in res["rag"]
    assert res["few_shot"]["prompt_info"]["shots"] == 3 and res["rag"]["prompt_info"]["top_k"] == 2
    # Every test answer ("The code is <word>.") has 8 training pairs with the same answer: retrieval is scored.
    ret = res["retrieval"]
    assert ret["k"] == 2 and ret["rows"] == 6 and ret["texts"] == 24 and 0 <= ret["recall_at_k"] <= 1
    v = res["verdict"]
    assert v["metric"] == "contains" and v["best_baseline"] in {"base", "few_shot", "rag"}
    assert v["tuned"] == pytest.approx(res["tuned"]["contains"])
    assert v["best_baseline_score"] == pytest.approx(max(res[k]["contains"] for k in ("base", "few_shot", "rag")))
    assert "Fine-tuning took" in v["text"] and "estimated $" in v["text"]
    assert any(line.startswith("few-shot: generating 6 answers") for line in logs)
    assert any(line.startswith("rag: retrieving the top 2 of 24 training pairs") for line in logs)
    saved = json.loads((run.path / "eval_test.json").read_text())
    assert {"few_shot", "rag", "tuned_rag", "retrieval", "verdict"} <= saved.keys()
    assert "_rows" not in saved["rag"]

    with pytest.raises(TunesmithError, match="the run's training file is not there"):
        run.evaluate(test, baselines=["few-shot"], train_path=str(tmp_path / "gone.jsonl"))


def test_classify_run_with_a_linear_probe(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(160))
    test = write_jsonl(tmp_path / "test.jsonl", sentiment_rows(60, seed=1))
    run = _train(tiny_bert, train, tmp_path, task="classify", max_steps=2, batch_size=16, max_seq_len=32, seed=0)
    res = run.evaluate(test, baselines=["linear-probe"], log=lambda m: None)
    probe = res["base"]["linear_probe"]
    assert {"accuracy", "macro_f1"} <= probe.keys() and {"chance", "majority"} <= res["base"].keys()
    assert probe["accuracy"] >= 0.8 > res["base"]["chance"]["accuracy"]  # a keyword decides the label
    v = res["verdict"]
    assert v["metric"] == "accuracy" and v["best_baseline"] == "linear_probe"
    assert v["best_baseline_score"] == pytest.approx(probe["accuracy"])
    with pytest.raises(TunesmithError, match="baseline 'rag' does not apply to task classify"):
        run.evaluate(test, baselines="rag")
