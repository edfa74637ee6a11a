"""`tunesmith curve`: nested subsets, the least-squares trend and its sentence, curve.json, bad input."""

from __future__ import annotations

import json

import pytest
from conftest import qa_rows, run_cli, write_csv, write_jsonl

from tunesmith.data.load import load_rows
from tunesmith.errors import TunesmithError
from tunesmith.train.curve import (
    _read_units,
    _write_subset,
    fit_trend,
    learning_curve,
    main_metric,
    parse_sizes,
    subset_indices,
    trend_sentence,
)


def test_subsets_are_nested_seeded_and_keep_file_order():
    subsets = subset_indices(40, [0.25, 0.5, 1.0], seed=7)
    assert [len(s) for s in subsets] == [10, 20, 40]
    assert set(subsets[0]) < set(subsets[1]) < set(subsets[2]) == set(range(40))
    assert all(s == sorted(s) for s in subsets)
    assert subsets == subset_indices(40, [0.25, 0.5, 1.0], seed=7)
    assert subsets[0] != subset_indices(40, [0.25, 0.5, 1.0], seed=8)[0]
    with pytest.raises(TunesmithError, match="0.02 of 40 training rows is 1 rows"):
        subset_indices(40, [0.02, 1.0], seed=0)
    with pytest.raises(TunesmithError, match="0.5 and 0.51 of 40 training rows are both 20 rows"):
        subset_indices(40, [0.5, 0.51], seed=0)


def test_fit_is_least_squares_on_log2_rows_and_the_sentence_follows_its_sign():
    up = fit_trend([(10, 0.2), (20, 0.3), (40, 0.4)])
    assert up["slope"] == pytest.approx(0.1) and up["r2"] == pytest.approx(1.0)
    assert up["intercept"] == pytest.approx(0.2 - 0.1 * 3.321928094887362)
    assert trend_sentence(up, "contains") == "doubling the data adds about +10.0 points of contains on this trend"
    # Noisy points: the slope is the least-squares one, (x - mean x)(y - mean y) / (x - mean x)^2 over log2 rows.
    noisy = fit_trend([(8, 0.5), (16, 0.4), (32, 0.7), (64, 0.6)])
    assert noisy["slope"] == pytest.approx(0.06)
    assert trend_sentence(noisy, "token_f1") == "doubling the data adds about +6.0 points of token_f1 on this trend"
    down = fit_trend([(10, 0.5), (20, 0.4), (40, 0.3)])
    assert down["slope"] < 0 and trend_sentence(down, "contains") == "no gain from more data on this trend"
    flat = fit_trend([(10, 0.5), (20, 0.5)])
    assert flat["slope"] == 0 and trend_sentence(flat, "accuracy") == "no gain from more data on this trend"
    loss = fit_trend([(10, 2.0), (20, 1.5)])  # lower is better
    assert trend_sentence(loss, "loss") == "doubling the data lowers loss by about 0.500 on this trend"
    assert trend_sentence(fit_trend([(10, 1.0), (20, 1.5)]), "loss") == "no gain from more data on this trend"
    assert fit_trend([(10, 0.5)]) is None and trend_sentence(None, "contains").startswith("too few sizes")


def test_main_metric_follows_the_task():
    assert main_metric({"loss": 1.0, "token_f1": 0.3, "contains": 0.5}) == "contains"
    assert main_metric({"loss": 1.0, "token_f1": 0.3, "contains": None}) == "token_f1"
    assert main_metric({"accuracy": 0.9, "macro_f1": 0.8}) == "accuracy"
    assert main_metric({"entity_f1": 0.4, "precision": 0.5}) == "entity_f1"
    assert main_metric({"loss": 2.0, "perplexity": 7.4}) == "loss"
    # The curve asks the task (SELECT_METRICS); the report's default list, which imports no task, agrees.
    from tunesmith.tasks import get_task

    for name in ("sft", "classify", "tokens", "clm", "mlm"):
        select = get_task(name).SELECT_METRICS
        measured = {m: 0.5 for m in (*select, "loss", "perplexity", "macro_f1")}
        assert main_metric(measured, select) == main_metric(measured) == (*select, "loss")[0], name


def test_parse_sizes():
    assert parse_sizes("0.5, 0.25,1") == [0.25, 0.5, 1.0]
    for bad, msg in (
        ("0", "not a fraction"),
        ("1.5", "not a fraction"),
        ("0.5,abc", "'abc' is not a number"),
        ("0.5,0.5", "given twice"),
        ("", "at least one"),
        ("nan", "not a fraction"),
    ):
        with pytest.raises(TunesmithError, match=msg):
            parse_sizes(bad)


def test_subsets_keep_the_file_format(tmp_path):
    from tunesmith.tasks import get_task

    csv_file = write_csv(tmp_path / "d.csv", ["text", "label"], [[f"t{i}", "a,b" if i % 2 else "c"] for i in range(6)])
    kind, units = _read_units(csv_file, get_task("classify"))
    out = _write_subset(kind, units, [1, 4], tmp_path / "sub")
    assert out.name == "sub.csv"
    assert [r for _, r in load_rows(out)] == [{"text": "t1", "label": "a,b"}, {"text": "t4", "label": "c"}]
    txt = tmp_path / "d.txt"
    txt.write_text("one\nstill one\n\ntwo\n\n\nthree\n")
    kind, units = _read_units(txt, get_task("clm"))
    out = _write_subset(kind, units, [0, 2], tmp_path / "sub")
    assert [r["text"].strip() for _, r in load_rows(out)] == ["one\nstill one", "three"]


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """The exit code and the last line on stderr."""
    code, _, err = run_cli(monkeypatch, capsys, *args)
    return code, err.strip().splitlines()[-1]


def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", qa_rows(8))
    out = tmp_path / "curve"
    code, err = _cli(
        monkeypatch, capsys, "curve", "--data", data, "--val-data", data, "--sizes", "0.5,x", "--output", out
    )
    assert (code, err) == (2, "error: --sizes: 'x' is not a number (expected fractions such as 0.25,0.5,1.0)")
    code, err = _cli(monkeypatch, capsys, "curve", "--data", data, "--output", out)
    assert (code, err) == (2, "error: curve needs --val-data: one validation file every size is scored on")
    code, err = _cli(monkeypatch, capsys, "curve", "--data", tmp_path / "no.jsonl", "--val-data", data, "--output", out)
    assert (code, err) == (2, f"error: {tmp_path / 'no.jsonl'}: training file not found")
    code, err = _cli(
        monkeypatch, capsys, "curve", "--data", data, "--val-data", data, "--sizes", "0.1,1", "--output", out
    )
    assert (code, err) == (2, "error: --sizes: 0.1 of 8 training rows is 1 rows; each size needs at least 2")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    code, err = _cli(monkeypatch, capsys, "curve", "--data", data, "--val-data", data, "--output", tmp_path / "full")
    assert code == 2 and err.endswith("folder is not empty; choose another --output or pass --force")
    with pytest.raises(TunesmithError, match="--force would delete it"):
        learning_curve(dict(data=str(data), val_data=str(data)), [1.0], tmp_path, force=True)
    assert not out.exists() and data.is_file()


def test_curve_trains_nested_subsets_and_writes_curve_json(tiny_llama, tmp_path):
    val_rows = qa_rows(8, start=100)
    for r in val_rows:
        r["must_contain"] = r["messages"][1]["content"].split()[-1].rstrip(".")
    cfg = dict(
        model=str(tiny_llama),
        data=str(write_jsonl(tmp_path / "train.jsonl", qa_rows(32))),
        val_data=str(write_jsonl(tmp_path / "val.jsonl", val_rows)),
        max_steps=3,
        eval_every=3,
        lr=1e-2,
        batch_size=8,
        max_seq_len=64,
        select_by="loss",
        tensorboard=False,
        lora={"r": 4, "alpha": 8},
    )
    lines = []
    result = learning_curve(cfg, "0.25,0.5,1.0", tmp_path / "curve", log=lines.append)
    out = tmp_path / "curve"
    saved = json.loads((out / "curve.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved) == {
        "task",
        "metric",
        "higher_is_better",
        "train_data",
        "val_data",
        "train_rows",
        "seed",
        "sizes",
        "trend",
        "sentence",
        "plot",
        "seconds",
    }
    assert saved["metric"] == "contains" and saved["higher_is_better"] is True and saved["train_rows"] == 32
    assert [s["rows"] for s in saved["sizes"]] == [8, 16, 32]
    subsets = [{line for line in (out / s["data"]).read_text().splitlines()} for s in saved["sizes"]]
    assert subsets[0] < subsets[1] < subsets[2] == set((tmp_path / "train.jsonl").read_text().splitlines())
    for s in saved["sizes"]:
        run = out / s["run"]
        evaluation = json.loads((run / "eval_val.json").read_text())
        assert s["score"] == evaluation["tuned"]["contains"] and evaluation["base"] is None
        assert s["steps"] == 3 and s["train_seconds"] > 0 and (run / "summary.json").is_file()
    trend = fit_trend([(s["rows"], s["score"]) for s in saved["sizes"]])
    assert saved["trend"] == pytest.approx(trend) and saved["sentence"] == trend_sentence(trend, "contains")
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    progress = [x for x in lines if x.startswith("curve: ")]
    assert progress[0] == f"curve: size 1/3: 0.25 of the training rows = 8 rows -> {out / 'n8'}"
    assert progress[-1].startswith(f"curve: {saved['sentence']}")


def test_cli_curve_writes_into_runs_curve_by_default(tiny_llama, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "train.jsonl", qa_rows(8))
    val = write_jsonl(tmp_path / "val.jsonl", qa_rows(4, start=50))
    args = ["curve", "--model", tiny_llama, "--data", data, "--val-data", val, "--sizes", "0.5,1", "--max-steps", "1"]
    args += ["--batch-size", "4", "--max-seq-len", "64", "--select-by", "loss", "--no-tensorboard"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert out.strip() == "runs/curve/curve.json"
    saved = json.loads((tmp_path / "runs" / "curve" / "curve.json").read_text())
    assert saved["metric"] == "token_f1"  # no must_contain in these validation rows
    assert [s["rows"] for s in saved["sizes"]] == [4, 8] and (tmp_path / "runs/curve/n4/summary.json").is_file()
    assert "curve: size 2/2: 1 of the training rows = 8 rows -> runs/curve/n8" in err
