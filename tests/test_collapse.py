"""Issue 28's collapse guard: predictions that collapse to one answer are seen, said, never kept over an earlier
sound evaluation, and marked by eval."""

from __future__ import annotations

from conftest import sentiment_rows, train_tiny, write_jsonl

from tunesmith.eval.classification import class_collapse, tag_collapse
from tunesmith.tasks import get_task
from tunesmith.train.select import Selector, stop_reason


def test_collapse_is_one_answer_for_most_rows_where_the_data_has_more():
    assert class_collapse([0, 1] * 50, [0] * 100) == {"top_share": 1.0, "collapsed": 1.0}
    assert class_collapse([0, 1] * 50, [0] * 95 + [1] * 5)["collapsed"] == 1.0  # 95%: the threshold
    assert class_collapse([0, 1] * 50, [0] * 94 + [1] * 6)["collapsed"] == 0.0
    assert class_collapse([0] * 97 + [1] * 3, [0] * 100)["collapsed"] == 0.0  # the data is that lopsided itself
    assert class_collapse([[1, 0], [0, 1]] * 10, [[1, 0]] * 20)["collapsed"] == 1.0  # multi-label rows taken whole
    tags = [["B-per", "O"], ["O", "B-loc"]]
    assert tag_collapse(tags, [["O", "O"], ["O", "O"]]) == {"entities_found": 0.0, "collapsed": 1.0}
    assert tag_collapse(tags, [["B-per", "O"], ["O", "O"]])["collapsed"] == 0.0
    assert tag_collapse([["O"]], [["O"]])["collapsed"] == 0.0  # no entity in the data: nothing to miss
    assert "one class: 96%" in get_task("classify").collapse_note({"collapsed": 1.0, "top_share": 0.96})
    assert "'O'" in get_task("tokens").collapse_note({"collapsed": 1.0})
    assert get_task("classify").collapse_note({"collapsed": 0.0, "top_share": 0.5}) is None


def _row(acc, loss, collapsed):
    return {"eval_accuracy": acc, "eval_loss": loss, "eval_collapsed": float(collapsed)}


def test_a_collapsed_evaluation_is_never_kept_over_an_earlier_sound_one():
    # The sentiment run: 0.52 -> 0.58 -> 0.72 -> 0.50 with every row one class at the end.
    sel = Selector("accuracy", patience=3)
    assert sel.update(_row(0.52, 0.69, True), 0)  # step 0: an untrained head, neither sound nor collapsed
    assert sel.update(_row(0.58, 0.68, False), 100)
    assert sel.update(_row(0.72, 0.60, False), 200)
    assert not sel.update(_row(0.90, 0.50, True), 300)  # collapsed: not kept, whatever its score
    assert (sel.best_step, sel.best_collapsed, sel.collapsed_at, sel.bad_evals) == (200, False, 300, 1)
    reason = stop_reason(
        sel, stopped_early=False, step=300, auto_cap=None, has_val=True, last_eval_step=300, collapse="collapsed"
    )
    assert reason.endswith("predictions collapsed at step 300, so step 200, which had not, is kept: try a lower --lr")

    # Collapsed from the first trained evaluation (spam: all "ham"): kept for want of better, and said so; the
    # first sound evaluation replaces it even with a lower score; the state survives a checkpoint.
    sel = Selector("accuracy", patience=None)
    sel.update(_row(0.50, 0.69, False), 0)
    assert sel.update(_row(0.876, 0.40, True), 50)
    assert sel.best_collapsed and sel.collapsed_at == 50
    resumed = Selector("accuracy", patience=None, state=sel.state())
    assert resumed.update(_row(0.85, 0.45, False), 100)
    assert (resumed.best_step, resumed.best_collapsed) == (100, False)
    assert not resumed.update(_row(0.99, 0.10, True), 150)


def test_a_run_whose_classifier_collapses_says_so_and_eval_marks_it(tiny_bert, tmp_path, capsys):
    val = write_jsonl(tmp_path / "val.jsonl", sentiment_rows(64, seed=1))
    run = train_tiny(
        tiny_bert,
        tmp_path,
        sentiment_rows(160),
        task="classify",
        method="full",
        lr=0.3,  # far too high: every row gets one class from the first evaluation on
        val_data=str(val),
        max_steps=30,
        eval_every=10,
    )
    lines = capsys.readouterr().err.splitlines()
    collapsed = run.summary["collapsed"]
    assert collapsed["step"] == 10 and "one class: 100%" in collapsed["note"]
    assert any(line.startswith("warning: step 10: predictions collapsed to one class") for line in lines)
    assert not any(line.startswith("warning: step 0:") for line in lines)  # an untrained head proves nothing
    assert run.summary["best_step"] == 0 and "try a lower --lr" in run.summary["stop_reason"]
    # The kept weights (step 0's untrained head) also give every held-out row one class: eval says so.
    res = run.evaluate(val)
    assert res["tuned"]["collapsed"] == 1.0 and res["tuned"]["accuracy"] == 0.5
    assert res["collapsed"].startswith("the fine-tuned model's predictions collapsed to one class")
