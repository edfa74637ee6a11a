"""`tunesmith report`: every section, numbers equal to the run's JSON, escaping, graceful gaps, a real tiny run."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from conftest import qa_rows, run_cli, write_jsonl
from report_fixtures import HOSTILE, fake_run

from tunesmith.errors import TunesmithError
from tunesmith.report import render_report, write_report

SECTIONS = ("headline", "config", "data", "training", "evaluation", "forgetting", "samples", "cost")
VOID = {"meta", "br", "img", "hr", "input", "link"}


class Elements(HTMLParser):
    """Every element with its attributes and the text inside it (children's text included)."""

    def __init__(self, html: str):
        super().__init__()
        self.stack, self.found = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        while self.stack:
            t, attrs, text = self.stack.pop()
            self.found.append((t, attrs, "".join(text)))
            if t == tag:
                break

    def handle_data(self, data):
        for _, _, text in self.stack:
            text.append(data)

    def having(self, **attrs) -> list[tuple[str, dict, str]]:
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [x for x in self.found if all(x[1].get(k) == v for k, v in want.items())]

    def one(self, **attrs) -> tuple[str, dict, str]:
        hits = self.having(**attrs)
        assert len(hits) == 1, (attrs, hits)
        return hits[0]


def _eval_cells(doc: Elements, table_id: str) -> dict[str, tuple[str, str]]:
    """data-metric -> (data-value, shown text) for the cells inside one evaluation table."""
    inside, out = False, {}
    for tag, attrs, text in doc.found:  # cells close before their table: collect until the table itself
        if tag == "td" and "data-metric" in attrs:
            out.setdefault(attrs["data-metric"], (attrs["data-value"], text))
        if tag == "table" and attrs.get("id") == table_id:
            inside = True
            break
    assert inside
    return out


def test_every_section_and_every_number_equals_the_json(tmp_path):
    run = fake_run(tmp_path)
    path = write_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    doc = Elements(html)
    for sid in SECTIONS:
        assert doc.one(id=sid)[0] == "section"
    ids = [a["id"] for _, a, _ in doc.found if "id" in a]
    assert len(ids) == len(set(ids))
    assert [a["data-missing"] for _, a, _ in doc.found if "data-missing" in a] == []  # everything measured

    result = json.loads((run / "eval_test.json").read_text())
    cells = _eval_cells(doc, "eval-test")
    expected = {
        f"{system}.{k}": v
        for system in ("base", "few_shot", "rag", "tuned", "tuned_rag")
        for k, v in result[system].items()
        if isinstance(v, (int, float))
    }
    assert len(expected) == 5 + 5 + 3 + 3 + 3
    for key, value in expected.items():
        shown_value, text = cells[key]
        assert json.loads(shown_value) == value, key
        assert text == f"{value:.4g}", key
    assert cells["tuned_rag.loss"] == ("", "\u2013")  # a system that did not measure a metric
    assert [a["data-system"] for t, a, _ in doc.found if t == "th" and a.get("data-system")][:5] == [
        "base",
        "few_shot",
        "rag",
        "tuned",
        "tuned_rag",
    ]
    assert json.loads(doc.one(id="kpi-tuned")[1]["data-value"]) == 0.75
    assert json.loads(doc.one(id="kpi-base")[1]["data-value"]) == 0.0
    assert doc.one(id="verdict")[2] == result["verdict"]["text"]  # the text as written, its "<on ...>" escaped
    assert doc.one(id="verdict-test")[2] == result["verdict"]["text"]
    assert json.loads(doc.one(data_verdict="margin.diff")[1]["data-value"]) == 0.25
    assert json.loads(doc.one(data_retrieval="recall_at_k")[1]["data-value"]) == 0.833

    # The loss chart: every train and validation point, and the kept checkpoint marked.
    summary = json.loads((run / "summary.json").read_text())
    assert doc.one(data_chart="loss")[0] == "svg"
    assert len(doc.having(data_marker_x="15")) == 4  # loss, validation scores, and both forgetting charts
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()[:-1]]  # last line cut short
    val_dots = [a for t, a, _ in doc.found if t == "circle" and a.get("data-y")]
    evals = [r for r in rows if "eval_loss" in r]
    assert [json.loads(a["data-y"]) for a in val_dots[: len(evals)]] == [r["eval_loss"] for r in evals]
    assert summary["best_step"] == 15

    # Forgetting: general_contains per evaluation step, as metrics.jsonl has it.
    for r in evals:
        assert json.loads(doc.one(data_general_step=str(r["step"]))[1]["data-value"]) == r["general_contains"]
        assert json.loads(doc.one(data_general_drop_step=str(r["step"]))[1]["data-value"]) == r["general_drop"]
    for system in ("base", "tuned"):
        for key, value in result["general"][system].items():
            assert json.loads(doc.one(data_general=f"{system}.{key}")[1]["data-value"]) == value
    assert json.loads(doc.one(data_general="drop")[1]["data-value"]) == 0.25

    # Samples: 10 of the 12 saved, side by side; the hostile answer is text, not markup.
    sample_rows = [a for t, a, _ in doc.found if t == "tr" and "data-sample" in a]
    assert len(sample_rows) == 10
    tuned_cells = [text for t, a, text in doc.found if t == "td" and a.get("data-system") == "tuned"]
    assert tuned_cells[0] == HOSTILE and tuned_cells[9] == "tuned answer 9"
    assert [text for t, a, text in doc.found if a.get("data-field") == "question"][0] == "question 0 <q>?"
    assert "<script" not in html.lower() and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html

    # Time, tokens, data, config: the summary's own numbers.
    for key in ("train_seconds", "eval_seconds", "tokens", "tokens_per_s", "peak_memory_gb"):
        assert json.loads(doc.one(data_summary=key)[1]["data-value"]) == summary[key]
    cost = result["verdict"]["cost"]  # the verdict's estimate, as summary.json has no cost
    assert json.loads(doc.one(id="cost-value")[1]["data-value"]) == cost["estimated_usd"]
    assert doc.one(id="cost-value")[2] == "under $0.01"
    assert json.loads(doc.one(data_cost="usd_per_hour")[1]["data-value"]) == 1.29
    assert json.loads(doc.one(data_data="train_rows")[1]["data-value"]) == 40
    assert doc.one(data_config="lora.r")[2] == "8"
    # Self-contained: nothing to fetch.
    assert not re.findall(r'(?:src|href)="(?!data:|#)', html)


def test_every_section_says_not_measured_when_its_data_is_absent(tmp_path):
    run = fake_run(tmp_path, full=False)
    for name in ("summary.json", "metrics.jsonl", "eval_test.json"):
        (run / name).unlink()
    doc = Elements(render_report(run))
    assert {a["data-missing"] for _, a, _ in doc.found if "data-missing" in a} == {
        "headline",
        "data",
        "loss-curve",
        "training-summary",
        "evaluation",
        "forgetting",
        "samples",
        "timing",
        "cost",
    }
    assert "did not finish" in doc.one(id="run-state")[2]


def test_classification_baselines_and_per_class_table(tmp_path):
    run = fake_run(tmp_path, full=False)
    (run / "eval_test.json").unlink()
    result = {
        "rows": 4,
        "tuned": {
            "accuracy": 0.75,
            "macro_f1": 0.7,
            "per_class": {"neg": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2}},
        },
        "base": {"chance": {"accuracy": 0.5, "macro_f1": 0.5}, "majority": {"accuracy": 0.5, "macro_f1": 0.333}},
        "confusion_matrix": "/etc/passwd",  # outside the run folder: not embedded
    }
    (run / "eval_dev set.json").write_text(json.dumps(result))
    (run / "eval_dev-set.json").write_text(json.dumps(result))  # the same element-id slug: made unique
    doc = Elements(write_report(run, tmp_path / "r.html").read_text())
    ids = [a["id"] for _, a, _ in doc.found if "id" in a]
    assert len(ids) == len(set(ids)) and doc.one(id="eval-dev-set-2")[1]["data-eval"] == "dev-set"
    cells = _eval_cells(doc, "eval-dev-set")
    assert {k: json.loads(v) for k, (v, _) in cells.items()} == {
        "chance.accuracy": 0.5,
        "majority.accuracy": 0.5,
        "tuned.accuracy": 0.75,
        "chance.macro_f1": 0.5,
        "majority.macro_f1": 0.333,
        "tuned.macro_f1": 0.7,
    }
    assert [json.loads(a["data-value"]) for _, a, _ in doc.having(data_per_class="neg.f1")] == [0.667, 0.667]
    assert json.loads(doc.one(id="kpi-tuned")[1]["data-value"]) == 0.75  # accuracy is classify's main metric
    assert not [a for t, a, _ in doc.found if t == "img"]


def test_cli_writes_the_page_and_refuses_a_folder_that_is_no_run(tmp_path, monkeypatch, capsys):
    run = fake_run(tmp_path)
    code, out, _ = run_cli(monkeypatch, capsys, "report", run, "--out", tmp_path / "page.html")
    assert code == 0 and out.strip() == str(tmp_path / "page.html") and (tmp_path / "page.html").stat().st_size > 10_000
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "report", tmp_path / "empty")
    assert (
        code == 2
        and err.splitlines()[-1] == f"error: {tmp_path / 'empty'}: not a tunesmith run folder (no config.yaml)"
    )
    code, _, err = run_cli(monkeypatch, capsys, "report", run, "--out", tmp_path / "nowhere" / "r.html")
    assert code == 2 and err.splitlines()[-1] == f"error: {tmp_path / 'nowhere'}: folder not found for --out"
    with pytest.raises(TunesmithError, match="no such run folder"):
        write_report(tmp_path / "absent")


def test_report_of_a_trained_tiny_run(tiny_llama, tmp_path):
    import tunesmith

    val_rows = qa_rows(8, start=40)
    for r in val_rows:
        r["must_contain"] = r["messages"][1]["content"].split()[-1].rstrip(".")
    run = tunesmith.train(
        dict(
            model=str(tiny_llama),
            data=str(write_jsonl(tmp_path / "train.jsonl", qa_rows(24))),
            val_data=str(write_jsonl(tmp_path / "val.jsonl", val_rows)),
            output=str(tmp_path / "run"),
            max_steps=6,
            eval_every=3,
            lr=1e-2,
            batch_size=8,
            max_seq_len=64,
            select_by="loss",
            tensorboard=False,
            lora={"r": 8, "alpha": 16},
        )
    )
    result = run.evaluate(tmp_path / "val.jsonl", save=True, max_new_tokens=8)
    doc = Elements(write_report(run.path).read_text())
    saved = json.loads((run.path / "eval_val.json").read_text())
    cells = _eval_cells(doc, "eval-val")
    for system in ("base", "tuned"):
        for key, value in saved[system].items():
            if isinstance(value, (int, float)):
                assert json.loads(cells[f"{system}.{key}"][0]) == value == result[system][key]
    assert json.loads(doc.one(id="kpi-tuned")[1]["data-value"]) == saved["tuned"]["contains"]
    summary = run.summary
    assert doc.having(data_marker_x=str(summary["best_step"]))
    assert json.loads(doc.one(data_summary="tokens")[1]["data-value"]) == summary["tokens"]
    samples = [a for t, a, _ in doc.found if t == "tr" and "data-sample" in a]
    assert len(samples) == min(10, len(saved["tuned"]["samples"]))
    assert {a["data-missing"] for _, a, _ in doc.found if "data-missing" in a} <= {"forgetting", "cost"}
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    for r in rows:  # the general-ability probe, where the run scored it (config `general`)
        if "general_contains" in r:
            assert json.loads(doc.one(data_general_step=str(r["step"]))[1]["data-value"]) == r["general_contains"]


def test_chart_ticks_and_points():
    from tunesmith.report.charts import _tick, _ticks, line_chart

    assert [_tick(v, 0.25) for v in _ticks(0, 1)] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert [_tick(v, 250) for v in _ticks(695_500, 696_500)] == ["695,500", "695,750", "696,000", "696,250", "696,500"]
    assert line_chart([{"name": "x", "points": [(1, float("nan"))]}], chart_id="c", x_label="a", y_label="b") == ""
    svg = line_chart(
        [{"name": "<loss>", "points": [(0, 2.0), (5, float("inf")), (10, 1.0)], "dots": True}],
        chart_id="c",
        x_label="step",
        y_label="loss",
        marker=(10, "kept: step 10"),
    )
    doc = Elements(svg)
    assert [json.loads(a["data-y"]) for t, a, _ in doc.found if t == "circle"] == [2.0, 1.0]  # inf left out
    assert doc.one(data_series="<loss>") and "&lt;loss&gt;" in svg and doc.one(data_marker_x="10")
