"""`tunesmith check`, the data doctor: exact counts of bad rows, duplicates, leaks, personal data, tokens,
the estimate and --fix, on small files written here (plus one real dataset)."""

from __future__ import annotations

import json
import math
import sys

import pytest
from conftest import qa_rows, sentiment_rows, shared_data, write_csv, write_jsonl

from tunesmith.check import check, invalid_rows, summary
from tunesmith.errors import TunesmithError


def chat(user, answer):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def write_lines(path, lines):
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def test_invalid_rows_lists_every_bad_row_with_line_and_field(tmp_path):
    good = json.dumps(qa_rows(1)[0])
    path = write_lines(
        tmp_path / "d.jsonl",
        [
            good,
            json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}),
            json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
            "",  # blank lines are no rows
            json.dumps({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}),
            '{"messages": [',
            b'{"messages": "caf\xff"}',
            json.dumps({"messages": []}),
            json.dumps([1, 2]),
            good,
        ],
    )
    got = [(e["line"], e["field"], e["problem"]) for e in invalid_rows(path)]
    assert got == [
        (2, "messages[1].role", "messages[1].role: unknown role 'bot' (expected one of assistant, system, user)"),
        (3, "messages", "field 'messages' has no assistant turn"),
        (5, "messages[0].content", "messages[0].content must be a string"),
        (6, None, got[3][2]),
        (7, None, "text is not valid UTF-8 (byte 0xff)"),
        (8, "messages", "field 'messages' must be a non-empty list of turns"),
        (9, None, "expected an object with named fields, got list"),
    ]
    assert got[3][2].startswith("invalid JSON")
    assert all(e["file"] == str(path) for e in invalid_rows(path))
    assert summary(invalid_rows(path), limit=1) == (
        f"7 invalid rows: {path}:2: messages[1].role: unknown role 'bot' "
        "(expected one of assistant, system, user); ... and 6 more "
        "(tunesmith check lists them all)"
    )
    assert invalid_rows(write_jsonl(tmp_path / "ok.jsonl", qa_rows(3))) == []


def test_file_level_problem_is_one_entry_and_the_rest_is_skipped(tmp_path):
    cases = {
        "empty.jsonl": b"",
        "array.json": b'[{"text": "a"},\n{"text": ]',
        "latin1.csv": b"text\ncaf\xe9\n",
        "layout.jsonl": b'{"question": "a", "answer": "b"}\n',
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        res = check(tmp_path / name, estimate=False)
        assert not res["ok"] and res["errors"] == 1, name
        assert res["token_stats"] is None and res["duplicates"] is None and res["estimate"] is None
    res = check(tmp_path / "layout.jsonl", estimate=False)
    assert "unknown row layout" in res["invalid_rows"][0]["problem"]
    # a CSV with one undecodable row: that row only, the others are still checked
    (tmp_path / "latin1.csv").write_bytes(b"text,label\ngood one,a\ncaf\xe9,b\nfine,b\n")
    assert [(e["line"], e["problem"]) for e in invalid_rows(tmp_path / "latin1.csv", "classify")] == [
        (3, "text is not valid UTF-8")
    ]


def content_rows():
    """15 training rows: 2 exact copies, 2 near copies, 1 conflict, 3 kinds of personal data (and no more:
    example.com is a reserved domain, the second card number fails the Luhn check)."""
    rows = [json.dumps(r) for r in qa_rows(8)]  # lines 1-8
    rows.append(json.dumps(qa_rows(1)[0], separators=(",", ":")))  # 9: line 1 again, other spacing
    rows.append(rows[1])  # 10: line 2 again
    rows.append(json.dumps(chat("Code 2?", "the code is STONE!!")))  # 11: line 3 once normalised
    words = [f"word{i}" for i in range(40)]
    rows.append(json.dumps(chat(" ".join(words), "ok")))  # 12
    rows.append(json.dumps(chat(" ".join(words[:36] + ["other"] + words[37:]), "ok")))  # 13: 3-gram Jaccard 0.85
    rows.append(json.dumps(chat("code 3?", "The code is ember.")))  # 14: line 4 says cloud
    rows.append(
        json.dumps(
            chat(
                "mail jane.doe@mailhost.net (docs@example.com is reserved) or call +44 20 7946 0958",
                "card 4111 1111 1111 1111 noted; 4111 1111 1111 1112 is no card",
            )
        )
    )  # 15
    return rows


def test_duplicates_leakage_conflicts_pii_and_token_stats(tiny_llama, tokenizer, tmp_path):
    from tunesmith.data.formats import read_examples
    from tunesmith.data.tokenize import encode_chat, encode_examples

    data = write_lines(tmp_path / "train.jsonl", content_rows())
    val = write_jsonl(
        tmp_path / "val.jsonl", [qa_rows(1, 4)[0], chat("CODE 5?", "The code is ember."), chat("code 99?", "none")]
    )
    test = write_jsonl(tmp_path / "test.jsonl", [qa_rows(1, 6)[0]])
    lengths = [len(encode_chat(tokenizer, json.loads(x)["messages"])[0]) for x in content_rows()]
    max_len = sorted(lengths)[-4]
    res = check(data, val=val, test=test, model=str(tiny_llama), cfg={"max_seq_len": max_len}, estimate=False)
    assert res["ok"] and res["format"] == "messages" and res["rows"] == 15
    assert res["duplicates"] == 2 and res["near_duplicates"] == 2 and res["conflicts"] == 1
    assert sorted(res["duplicate_groups"]) == [[f"{data}:1", f"{data}:9"], [f"{data}:2", f"{data}:10"]]
    assert sorted(res["near_duplicate_groups"]) == [[f"{data}:12", f"{data}:13"], [f"{data}:3", f"{data}:11"]]
    assert res["conflict_groups"] == [[f"{data}:4", f"{data}:14"]]
    assert res["leakage"] == {"val": 2, "test": 1}
    assert res["leakage_examples"]["val"] == [f"{val}:1", f"{val}:2"]
    assert res["pii"] == {"email": 1, "phone": 1, "card": 1}
    assert res["pii_examples"]["card"] == [{"file": str(data), "line": 15, "match": "41***************11"}]
    ts = res["token_stats"]
    s = sorted(lengths)
    assert (ts["min"], ts["max"], ts["median"], ts["p95"]) == (s[0], s[-1], s[7], s[math.ceil(0.95 * 15) - 1])
    # the same counts training reports: 3 rows cut, and all 3 lose their answer to the cut, so they are dropped
    _, n_trunc, n_drop = encode_examples(tokenizer, read_examples(data)[1], max_seq_len=max_len)
    assert (ts["truncated"], ts["dropped"]) == (n_trunc, n_drop) == (3, 3)
    assert sum(b["count"] for b in ts["histogram"]) == 15
    assert any("exact duplicate" in w for w in res["warnings"]) and res["estimate"]["seconds"] is None
    # without MinHash only the normalised-text copy is found
    assert check(data, model=str(tiny_llama), near=False, estimate=False)["near_duplicates"] == 1


def test_fix_writes_a_clean_copy_and_a_log_and_never_the_input(tiny_llama, tmp_path):
    rows = content_rows() + [
        json.dumps({"messages": []}),
        json.dumps({"messages": [{"role": "bot", "content": "x"}]}),
    ]  # 16 empty, 17 invalid
    data = write_lines(tmp_path / "train.jsonl", rows)
    before = data.read_bytes()
    val = write_jsonl(tmp_path / "val.jsonl", [qa_rows(1, 4)[0], chat("CODE 5?", "The code is ember.")])
    test = write_jsonl(tmp_path / "test.jsonl", [qa_rows(1, 6)[0]])
    out = tmp_path / "clean" / "train.jsonl"
    res = check(data, val=val, test=test, model=str(tiny_llama), estimate=False, fix=out)
    assert data.read_bytes() == before
    assert res["errors"] == 2  # the empty row and the unknown role: fixing does not hide them
    kept = [1, 2, 3, 4, 8, 11, 12, 13, 14, 15, 17]
    assert out.read_text().splitlines() == [rows[i - 1] for i in kept]
    log = [json.loads(x) for x in (tmp_path / "clean" / "train.jsonl.changes.jsonl").read_text().splitlines()]
    assert [(x["line"], x["reason"]) for x in log] == [
        (5, "leak"),
        (6, "leak"),
        (7, "leak"),
        (9, "duplicate"),
        (10, "duplicate"),
        (16, "empty"),
    ]
    assert log[3]["detail"] == "same content as line 1" and log[2]["detail"] == "also in test.jsonl"
    assert res["fix"]["removed"] == {"leak": 3, "duplicate": 2, "empty": 1} and res["fix"]["rows_out"] == 11
    for bad in (data, val, tmp_path / "x.csv"):
        with pytest.raises(TunesmithError):
            check(data, val=val, model=str(tiny_llama), estimate=False, fix=bad)


def test_classify_unseen_label_balance_and_csv_fix(tiny_bert, bert_tokenizer, tmp_path):
    train = [(r["text"], r["label"]) for r in sentiment_rows(12)]
    train += [("quoted, with a comma", "pos"), ("quoted, with a comma", "pos"), ("no label here", "")]
    data = write_csv(tmp_path / "train.csv", ["text", "label"], train)
    val = write_csv(tmp_path / "val.csv", ["text", "label"], [("fine", "pos"), ("so so", "meh")])
    out = tmp_path / "clean.csv"
    res = check(data, val=val, model=str(tiny_bert), task="classify", estimate=False, fix=out)
    assert [(e["file"], e["line"], e["field"]) for e in res["invalid_rows"]] == [
        (str(data), 16, "label"),
        (str(val), 3, "label"),
    ]
    assert res["invalid_rows"][1]["problem"] == "label 'meh' does not occur in the training data"
    assert res["class_balance"]["labels"] == {"pos": 8, "neg": 6} and res["duplicates"] == 1
    texts = [t for t, _ in train[:14]]
    want = sorted(len(x) for x in bert_tokenizer(texts)["input_ids"])
    assert (res["token_stats"]["min"], res["token_stats"]["max"]) == (want[0], want[-1])
    lines = data.read_text().splitlines()
    assert out.read_text().splitlines() == lines[:14]  # the copy (line 15) and the empty label (16) go
    assert '"quoted, with a comma"' in out.read_text()


def test_tokens_conll_every_bad_line(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBadLine\n\nJohn B-PER\nwent X-LOC\n\nMary B-PER\n")
    assert [(e["line"], e["problem"]) for e in invalid_rows(path, "tokens")] == [
        (5, "expected a token and a tag separated by whitespace, got 'BadLine'"),
        (8, "tag 'X-LOC' is not a BIO tag (O, B-type, I-type)"),
    ]


def test_estimate_from_a_measured_calibration(tiny_llama, tokenizer, tmp_path):
    from tunesmith.data.batch import holdout_split
    from tunesmith.data.tokenize import encode_chat

    rows = qa_rows(24)
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    res = check(data, model=str(tiny_llama), cfg={"batch_size": 4})
    e = res["estimate"]
    train_idx, _ = holdout_split(list(range(24)), 0.1, 200, 42)  # train's own hold-out: 22 rows
    tokens = sum(len(encode_chat(tokenizer, rows[i]["messages"])[0]) for i in train_idx)
    assert (e["train_rows"], e["epochs"], e["epochs_auto"]) == (22, 10, True)  # auto: a cap of 10 epochs
    assert e["steps"] == 6 * 10 and e["tokens"] == 10 * tokens  # the cap: an upper bound
    cal = e["calibration"]
    assert cal["batch_rows"] == 4 and cal["steps_timed"] == 2 and e["tokens_per_s"] > 0
    assert e["seconds"] == round(e["tokens"] / e["tokens_per_s"], 1)
    fixed = check(data, model=str(tiny_llama), cfg={"batch_size": 4, "epochs": 2, "method": "full"}, estimate=False)
    assert (fixed["estimate"]["steps"], fixed["estimate"]["epochs_auto"]) == (12, False)


def _task_data(task: str, tmp_path):
    if task == "sft":
        return write_jsonl(tmp_path / "d.jsonl", qa_rows(30))
    if task == "classify":
        return write_csv(tmp_path / "d.csv", ["text", "label"], [[r["text"], r["label"]] for r in sentiment_rows(30)])
    if task == "tokens":
        rows = [
            {"tokens": ["Ada", "visited", ["Oslo", "Paris"][i % 2], "today"], "ner_tags": ["B-per", "O", "B-loc", "O"]}
            for i in range(30)
        ]
        return write_jsonl(tmp_path / "d.jsonl", rows)
    texts = [{"text": f"Document {i}: the shop opens at {8 + i % 3} and closes late on Fridays."} for i in range(30)]
    return write_jsonl(tmp_path / "d.jsonl", texts)


@pytest.mark.parametrize("task", ["sft", "clm", "classify", "tokens", "mlm"])
def test_each_task_estimate_counts_what_training_builds_and_calibrates(task, tiny_llama, tiny_bert, tmp_path):
    """check's plan (items per epoch, their tokens) equals what the task's own prepare() makes, and the timed
    calibration runs the task's model, loss and batches (train.setup.setup_model)."""
    from tunesmith import build_config
    from tunesmith.models.load import load_tokenizer
    from tunesmith.tasks import get_task

    model = str(tiny_llama if task in ("sft", "clm") else tiny_bert)
    data = _task_data(task, tmp_path)
    cfg = build_config(None, data=str(data), task=task, model=model, batch_size=4, max_seq_len=64, method="full")
    res = check(data, cfg=cfg)
    assert res["ok"], res["invalid_rows"]
    prepared = get_task(task).prepare(cfg, load_tokenizer(model, chat=task == "sft"), lambda m: None)
    e = res["estimate"]
    assert e["train_rows"] == len(prepared.train)
    assert e["tokens_per_epoch"] == sum(len(x.input_ids) for x in prepared.train)
    assert e["calibration"]["batch_rows"] == 4 and e["tokens_per_s"] > 0, e["calibration"]


def test_clm_text_file_blocks_match_training(tiny_llama, tokenizer, tmp_path):
    from tunesmith.data.load import load_rows
    from tunesmith.data.tokenize import pack_text

    paragraphs = [
        "To be, or not to be, that is the question.\n",
        "Whether 'tis nobler in the mind to suffer\n",
        "The slings and arrows of outrageous fortune.\n",
    ]
    data = tmp_path / "play.txt"
    data.write_text("\n".join(paragraphs))
    res = check(data, model=str(tiny_llama), task="clm", cfg={"max_seq_len": 8}, estimate=False)
    texts = [row["text"] for _, row in load_rows(data)]  # the paragraphs as training reads them
    # training holds out the last document and packs the rest with no EOS between paragraphs of one .txt
    blocks = pack_text(tokenizer, texts[:2], block_size=8, separator_eos=False)
    assert res["estimate"]["train_rows"] == len(blocks) and res["estimate"]["tokens_per_epoch"] == 8 * len(blocks)
    assert res["token_stats"]["truncated"] == 0 and res["rows"] == 3


def tunesmith(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """The command's own entry point (exit codes included), in this process: no second torch import."""
    from tunesmith import cli

    monkeypatch.setattr(sys, "argv", ["tunesmith", *map(str, args)])
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_report_and_exit_codes(tiny_llama, tmp_path, monkeypatch, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(6) + qa_rows(1))
    code, out, err = tunesmith(monkeypatch, capsys, "check", data, "--model", tiny_llama, "--json", "--no-estimate")
    assert code == 0, err
    res = json.loads(out)  # exactly one JSON object on stdout
    assert {
        "format",
        "rows",
        "invalid_rows",
        "token_stats",
        "duplicates",
        "near_duplicates",
        "leakage",
        "conflicts",
        "pii",
        "estimate",
    } <= set(res)
    assert (res["rows"], res["duplicates"], res["leakage"]) == (7, 1, {"val": None, "test": None})
    write_jsonl(
        data,
        [
            {"prompt": "q1", "completion": "a1"},
            {"prompt": "q2", "completion": "a2"},
            {"prompt": "q", "completion": " "},
        ],
    )
    code, out, err = tunesmith(monkeypatch, capsys, "check", data, "--model", tiny_llama, "--no-estimate")
    assert code == 2 and out == ""
    assert "invalid rows (1)" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: 1 invalid row: {data}:3: field 'completion' is empty"


def test_real_dataset_sms_spam(tiny_bert):
    train, val = shared_data("sms_spam", "train.jsonl"), shared_data("sms_spam", "validation.jsonl")
    rows = [json.loads(x) for x in train.read_text().splitlines()]
    res = check(train, val=val, model=str(tiny_bert), task="classify", estimate=False)
    assert res["ok"] and res["rows"] == 4128 and res["format"] == "labelled"
    assert res["duplicates"] == len(rows) - len({(r["text"], r["label"]) for r in rows})
    labels = [r["label"] for r in rows]
    assert res["class_balance"]["labels"] == {"ham": labels.count("ham"), "spam": labels.count("spam")}
    # The split kept texts together that match after lower-casing and collapsing whitespace; 5 validation texts
    # still match a training text once punctuation is ignored too ("Thats cool!" / "Thats cool.").
    assert res["leakage"]["val"] == 5 and len(res["leakage_examples"]["val"]) == 5
