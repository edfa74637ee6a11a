"""classify / tokens / mlm on tiny random BERT and Llama models: alignment, masking, metrics, learning, reload."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import sentiment_rows, write_jsonl

import tunesmith
from tunesmith.data.tokenize import IGNORE
from tunesmith.eval.classification import class_baselines, class_metrics, entity_metrics
from tunesmith.run import Run
from tunesmith.tasks.mlm import mask_tokens
from tunesmith.tasks.tokens import align, tag_order


def _train(model, tmp_path, name, **kw):
    cfg = dict(
        model=str(model),
        output=str(tmp_path / name),
        batch_size=16,
        max_seq_len=64,
        seed=0,
        tensorboard=False,
        early_stopping_patience=None,
    )
    cfg.update(kw)
    return tunesmith.train(cfg)


# --- alignment, masking and metrics, checked by hand -------------------------------------------------


def test_labels_sit_on_first_sub_tokens_only(bert_tokenizer):
    words, tags = ["Obama", "visited", "unbelievably", "Nairobi", "!"], ["B-per", "O", "O", "B-loc", "O"]
    names = tag_order(tags + ["I-per", "I-loc"])
    index = {t: i for i, t in enumerate(names)}
    pieces = [bert_tokenizer.tokenize(w) for w in words]
    assert any(len(p) > 1 for p in pieces)  # the test needs words split into several sub-tokens
    item = align(bert_tokenizer, words, tags, index, max_len=64)
    expected, first, pos = [IGNORE], [], 1  # [CLS]
    for p, t in zip(pieces, tags):
        first.append(pos)
        expected += [index[t]] + [IGNORE] * (len(p) - 1)
        pos += len(p)
    expected.append(IGNORE)  # [SEP]
    assert item.labels == expected and item.first == first
    assert bert_tokenizer.convert_ids_to_tokens(item.input_ids)[1:-1] == [x for p in pieces for x in p]

    every = align(bert_tokenizer, words, tags, index, max_len=64, label_all=True)
    for w, (p, t) in enumerate(zip(pieces, tags)):
        inside = "I-" + t[2:] if t.startswith("B-") else t
        assert every.labels[first[w] : first[w] + len(p)] == [index[t]] + [index[inside]] * (len(p) - 1)


def test_truncated_words_are_marked_unpredicted(bert_tokenizer):
    words = ["word"] * 20
    item = align(bert_tokenizer, words, ["O"] * 20, {"O": 0}, max_len=8)
    assert len(item.input_ids) == 8 and item.first[:6] == list(range(1, 7)) and item.first[6:] == [-1] * 14


def test_masking_proportions_80_10_10_and_whole_words():
    rng = random.Random(0)
    special, mask_id, vocab = {101, 102}, 103, 30522
    ids = [101] + [rng.randrange(1000, 30000) for _ in range(50_000)] + [102]
    starts = [True] * len(ids)
    inputs, labels = mask_tokens(ids, starts, special, mask_id, vocab, 0.15, False, random.Random(1))
    chosen = [i for i, lab in enumerate(labels) if lab != IGNORE]
    assert labels[0] == IGNORE and labels[-1] == IGNORE
    assert all(labels[i] == ids[i] for i in chosen)
    assert abs(len(chosen) / 50_000 - 0.15) < 0.006
    masked = sum(inputs[i] == mask_id for i in chosen) / len(chosen)
    kept = sum(inputs[i] == ids[i] for i in chosen) / len(chosen)
    assert abs(masked - 0.8) < 0.015 and abs(kept - 0.1) < 0.012 and abs(1 - masked - kept - 0.1) < 0.012
    assert all(inputs[i] == ids[i] for i in range(len(ids)) if labels[i] == IGNORE)

    # words of three sub-tokens: each word is masked whole or not at all, ~15% of words
    starts = [True] + [i % 3 == 0 for i in range(50_000)] + [True]
    _, labels = mask_tokens(ids, starts, special, mask_id, vocab, 0.15, True, random.Random(2))
    words = [labels[1 + w * 3 : 4 + w * 3] for w in range(50_000 // 3)]
    picked = [all(x != IGNORE for x in w) for w in words]
    assert all(p or all(x == IGNORE for x in w) for w, p in zip(words, picked))
    assert abs(sum(picked) / len(words) - 0.15) < 0.012


def test_class_metrics_match_hand_computed_values():
    m = class_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6) and m["micro_f1"] == pytest.approx(0.6)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    # multi-label: exact-set accuracy, micro over all label decisions
    ml = class_metrics([[1, 0], [1, 1], [0, 1]], [[1, 0], [1, 0], [0, 1]], ["x", "y"], multi_label=True)
    assert ml["accuracy"] == pytest.approx(2 / 3)
    assert ml["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))  # tp 3, fp 0, fn 1
    base = class_baselines([0, 0, 0, 1], ["ham", "spam"], [9, 1], 10)
    assert base["majority"]["accuracy"] == 0.75
    assert base["majority"]["macro_f1"] == pytest.approx((2 * 0.75 / 1.75) / 2)
    assert 0.3 < base["chance"]["accuracy"] < 0.7


def test_entity_metrics_match_hand_computed_values():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "B-PER"]]
    m = entity_metrics(true, pred)  # true: PER, LOC, LOC; predicted: PER, ORG, LOC, PER; 2 right
    assert m["entity_precision"] == pytest.approx(2 / 4) and m["entity_recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(2 * (0.5 * 2 / 3) / (0.5 + 2 / 3))
    assert m["per_type"]["LOC"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_type"]["PER"]["precision"] == 0.5 and m["token_accuracy"] == pytest.approx(4 / 6)
    # a boundary error is a miss, as in conlleval
    assert entity_metrics([["B-PER", "I-PER"]], [["B-PER", "O"]])["entity_f1"] == 0.0


# --- classification -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert_classifier(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    train = write_jsonl(tmp / "train.jsonl", sentiment_rows(320))
    val = write_jsonl(tmp / "val.jsonl", sentiment_rows(64, seed=1))
    run = _train(
        tiny_bert,
        tmp,
        "run",
        task="classify",
        data=str(train),
        val_data=str(val),
        method="full",
        max_steps=60,
        lr=3e-3,
        eval_every=30,
    )
    return run, val


def test_classifier_learns_and_reports_against_baselines(bert_classifier):
    run, val = bert_classifier
    meta = json.loads((run.path / "task.json").read_text())
    assert meta["labels"] == ["neg", "pos"] and meta["train_counts"] == [160, 160]
    res = run.evaluate(val)
    assert res["tuned"]["accuracy"] >= 0.95 and set(res["tuned"]["per_class"]) == {"neg", "pos"}
    assert res["base"]["majority"]["accuracy"] == 0.5 and 0.35 < res["base"]["chance"]["accuracy"] < 0.65
    assert (run.path / "confusion_val.png").stat().st_size > 1000


def test_classifier_predicts_labels_with_probabilities_after_reload(bert_classifier):
    run, _ = bert_classifier
    again = Run(run.path)  # a fresh load from the run folder
    out = again.predict(["the film was superb", "awful service today"])
    assert [o["label"] for o in out] == ["pos", "neg"]
    assert all(abs(sum(o["scores"].values()) - 1) < 1e-4 and o["scores"][o["label"]] > 0.5 for o in out)


def test_lora_classifier_on_a_decoder_trains_and_saves_its_head(tiny_llama, tmp_path):
    # The decoder's head reads the last real token; a random 2-layer model has not learnt to gather context
    # there, so the deciding word comes last.
    train = write_jsonl(tmp_path / "train.jsonl", sentiment_rows(320, keyword_last=True))
    run = _train(
        tiny_llama,
        tmp_path,
        "run",
        task="classify",
        data=str(train),
        method="lora",
        max_steps=60,
        lr=1e-2,
        eval_every=30,
        val_max_rows=48,
    )
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["trainable_params"] < 0.2 * summary["total_params"]
    from safetensors import safe_open

    with safe_open(run.path / "adapter_model.safetensors", "pt") as f:
        assert any("score" in k for k in f.keys())  # the new head is saved whole, beside the LoRA weights
    evals = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines() if "eval_loss" in x]
    assert evals[-1]["eval_token_accuracy"] >= 0.9 > evals[0]["eval_token_accuracy"]
    texts = ["the film was superb", "today service awful", "really food lovely", "quite phone poor"]
    before = [o["scores"]["pos"] for o in run.predict(texts)]
    assert [o["scores"]["pos"] for o in Run(run.path).predict(texts)] == pytest.approx(before, abs=1e-5)
    assert [p > 0.5 for p in before] == [True, False, True, False]


def test_multi_label_uses_the_threshold(minilm_dir, tmp_path):
    # The real MiniLM (a few seconds here): a random tiny BERT's pooled [CLS] picks up one keyword, not two.
    rng = random.Random(0)
    rows = []
    for _ in range(320):
        tags = [t for t in ("price", "delivery") if rng.random() < 0.5]
        words = [{"price": "expensive", "delivery": "late"}[t] for t in tags] + rng.sample(["the", "a", "it", "was"], 3)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": tags})
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    run = _train(
        minilm_dir,
        tmp_path,
        "run",
        task="classify",
        multi_label=True,
        data=str(train),
        method="full",
        max_steps=60,
        lr=5e-4,
        eval_every=60,
    )
    out = run.predict(["it was expensive late", "the a it was"])
    assert [sorted(o["labels"]) for o in out] == [["delivery", "price"], []]
    for o in out:
        assert o["labels"] == [k for k, p in o["scores"].items() if p >= 0.5]
    run.config = run.config.model_copy(update={"threshold": 0.999999})
    assert run.predict(["it was expensive and late"])[0]["labels"] == []
    run.config = run.config.model_copy(update={"threshold": 0.5})
    assert run.evaluate(train)["tuned"]["accuracy"] >= 0.9


# --- token classification ------------------------------------------------------------------------


def _ner_rows(n, seed):
    rng = random.Random(seed)
    people, places = [["Ada", "Lovelace"], ["Alan"], ["Grace", "Hopper"]], [["Paris"], ["New", "York"], ["Oslo"]]
    rows = []
    for _ in range(n):
        p, c = rng.choice(people), rng.choice(places)
        words = p + ["flew", "to"] + c + rng.sample(["today", "again", "late", "early"], 1)
        tags = ["B-per"] + ["I-per"] * (len(p) - 1) + ["O", "O"] + ["B-loc"] + ["I-loc"] * (len(c) - 1) + ["O"]
        rows.append({"tokens": words, "ner_tags": tags})
    return rows


def test_tagger_learns_entities_and_predicts_character_spans(tiny_bert, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", _ner_rows(240, 0))
    val = write_jsonl(tmp_path / "val.jsonl", _ner_rows(40, 1))
    run = _train(
        tiny_bert,
        tmp_path,
        "run",
        task="tokens",
        data=str(train),
        val_data=str(val),
        method="full",
        max_steps=60,
        lr=5e-3,
        eval_every=30,
    )
    res = run.evaluate(val)
    assert res["tuned"]["entity_f1"] >= 0.9 and set(res["tuned"]["per_type"]) == {"per", "loc"}
    assert res["base"]["majority"]["entity_f1"] == 0.0
    text = "Grace Hopper flew to New York today."
    ents = run.predict([text])[0]["entities"]
    assert [(e["text"], e["type"]) for e in ents] == [("Grace Hopper", "per"), ("New York", "loc")]
    assert all(text[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1 for e in ents)


# --- masked LM -----------------------------------------------------------------------------------


def test_mlm_builds_a_tied_head_and_lowers_masked_loss(tiny_bert, tmp_path):
    from tunesmith.config import build_config
    from tunesmith.models.load import load_tokenizer
    from tunesmith.tasks import mlm

    cfg = build_config(None, model=str(tiny_bert), data="x", task="mlm")
    model = mlm.load_model(cfg, load_tokenizer(str(tiny_bert), chat=False))
    assert torch.equal(model.cls.predictions.transform.dense.weight, torch.eye(32))
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()

    rng = random.Random(0)
    animals = ["cat", "dog", "horse", "sheep"]
    text = "\n\n".join(
        f"the {a} says {dict(cat='meow', dog='woof', horse='neigh', sheep='baa')[a]} loudly."
        for a in (rng.choice(animals) for _ in range(600))
    )
    (tmp_path / "t.txt").write_text(text)
    run = _train(
        tiny_bert,
        tmp_path,
        "run",
        task="mlm",
        data=str(tmp_path / "t.txt"),
        method="full",
        max_steps=60,
        lr=1e-2,
        eval_every=30,
        whole_word_mask=True,
    )
    evals = [
        json.loads(x)["eval_loss"] for x in (run.path / "metrics.jsonl").read_text().splitlines() if "eval_loss" in x
    ]
    assert evals[-1] < 0.6 * evals[0]
    res = run.evaluate(tmp_path / "t.txt")
    assert res["tuned"]["loss"] < res["base"]["loss"] and res["tuned"]["perplexity"] < res["base"]["perplexity"]


def test_mlm_head_rows_are_rounded_up_without_changing_the_loss(tiny_bert):
    """The head sees a multiple of HEAD_ROWS rows (a fixed set of shapes keeps memory flat); the padding rows
    are unmasked positions and change neither the summed loss, the count nor the correct predictions."""
    import torch.nn.functional as F

    from tunesmith.config import build_config
    from tunesmith.models.load import load_tokenizer
    from tunesmith.tasks import mlm

    cfg = build_config(None, model=str(tiny_bert), data="x", task="mlm")
    model = mlm.load_model(cfg, load_tokenizer(str(tiny_bert), chat=False)).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (3, 200), generator=g)
    labels = torch.full_like(ids, IGNORE)
    where = torch.rand(ids.shape, generator=g) < 0.15
    labels[where] = ids[where]
    seen = []
    hook = model.cls.register_forward_hook(lambda m, a, out: seen.append(a[0].shape[0]))
    with torch.no_grad():
        loss, n, correct = mlm.MaskedLMLoss(model)(ids, torch.ones_like(ids), labels)
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[where].float()
    hook.remove()
    assert n == int(where.sum()) and 0 < n < mlm.HEAD_ROWS and seen[0] == mlm.HEAD_ROWS
    assert torch.allclose(loss, F.cross_entropy(logits, ids[where], reduction="sum"), rtol=1e-5)
    assert int(correct) == int((logits.argmax(-1) == ids[where]).sum())


def test_mlm_lora_trains_the_built_head_and_reloads_identically(tiny_bert, tmp_path):
    (tmp_path / "t.txt").write_text("\n\n".join(f"the cat number {i} sat on the mat." for i in range(300)))
    run = _train(
        tiny_bert,
        tmp_path,
        "run",
        task="mlm",
        data=str(tmp_path / "t.txt"),
        method="lora",
        max_steps=10,
        lr=1e-2,
        eval_every=10,
    )
    from safetensors import safe_open

    with safe_open(run.path / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert any("transform.dense" in k for k in keys) and any("lora_A" in k for k in keys)
    assert not any("transform.dense.lora" in k for k in keys)  # the head is trained whole, not adapted
    first = run.evaluate(tmp_path / "t.txt", base=False)["tuned"]["loss"]
    assert Run(run.path).evaluate(tmp_path / "t.txt", base=False)["tuned"]["loss"] == pytest.approx(first, rel=1e-5)


def test_text_pairs_use_segment_ids_on_encoders_and_a_newline_on_decoders(bert_tokenizer, tokenizer):
    from tunesmith.data.labelled import LabelledText
    from tunesmith.tasks.classify import encode

    rows = [LabelledText(1, "is it cheap", "yes it is", ["yes"])]
    item = encode(bert_tokenizer, rows, ["no", "yes"], False, 64)[0]
    toks = bert_tokenizer.convert_ids_to_tokens(item.input_ids)
    assert toks == ["[CLS]", "is", "it", "cheap", "[SEP]", "yes", "it", "is", "[SEP]"]
    assert item.token_type_ids == [0] * 5 + [1] * 4 and item.target == 1
    dec = encode(tokenizer, rows, ["no", "yes"], False, 64)[0]  # SmolLM2 has no pair template
    assert tokenizer.decode(dec.input_ids) == "is it cheap\nyes it is" and dec.token_type_ids is None


def test_mlm_validation_masks_are_fixed_and_training_masks_change(bert_tokenizer, tmp_path):
    from tunesmith.config import build_config
    from tunesmith.tasks import mlm

    (tmp_path / "t.txt").write_text("\n\n".join(f"line {i} of the text, said the fool." for i in range(200)))
    cfg = build_config(None, model="x", data="x", task="mlm", max_seq_len=64)
    _, a, _ = mlm.eval_items(cfg, bert_tokenizer, tmp_path / "t.txt")
    _, b, _ = mlm.eval_items(cfg, bert_tokenizer, tmp_path / "t.txt")
    assert [x.masked for x in a] == [x.masked for x in b]
    assert torch.equal(mlm.collate_batch(a, bert_tokenizer)["labels"], mlm.collate_batch(b, bert_tokenizer)["labels"])
    train = mlm.pack(bert_tokenizer, ["some words to mask " * 60], 64, 0.15, False)
    first, second = mlm.collate_batch(train, bert_tokenizer), mlm.collate_batch(train, bert_tokenizer)
    assert not torch.equal(first["labels"], second["labels"])
    assert torch.equal(first["attention_mask"], second["attention_mask"])
