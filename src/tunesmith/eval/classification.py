"""Metrics for labels and tags: scikit-learn for classes, seqeval (conlleval rules) for entities."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np


def class_metrics(y_true, y_pred, names: list, multi_label: bool = False) -> dict:
    """y_*: class ids (single-label) or 0/1 indicator rows (multi-label). Accuracy is exact-set for multi-label."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    ids = list(range(len(names)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    kw = {} if multi_label else {"labels": ids}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0, **kw)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0, **kw)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0, **kw)),
        "per_class": {
            str(n): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)
        },
    }


# A classifier whose answers are one class for this share of rows, on data where no class is that common, has
# collapsed (issue 28): it learnt the label prior, not the text. The tagger's form: no entity at all.
COLLAPSE_SHARE = 0.95


def class_collapse(y_true, y_pred) -> dict:
    """{"top_share": share of rows given the commonest predicted answer, "collapsed": 1.0 or 0.0}; an answer is
    a class id, or a multi-label 0/1 row taken whole."""
    from collections import Counter

    key = lambda y: tuple(y) if isinstance(y, (list, tuple, np.ndarray)) else y  # noqa: E731
    pred, true = Counter(map(key, y_pred)), Counter(map(key, y_true))
    n = max(len(y_pred), 1)
    top, true_top = max(pred.values(), default=0) / n, max(true.values(), default=0) / n
    return {"top_share": top, "collapsed": float(top >= COLLAPSE_SHARE and true_top < COLLAPSE_SHARE)}


def tag_collapse(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """{"entities_found": predicted entities, "collapsed": 1.0 when none is found where the truth has some}."""
    found, real = sum(map(len, map(entities, pred_tags))), sum(map(len, map(entities, true_tags)))
    return {"entities_found": float(found), "collapsed": float(found == 0 and real > 0)}


def class_baselines(
    y_true, names: list, train_counts: list[int], train_rows: int, multi_label: bool = False, repeats: int = 20
) -> dict:
    """What an untrained head amounts to: uniform guessing (mean of `repeats` draws) and the majority class."""
    n, k = len(y_true), len(names)
    rng = random.Random(0)
    draws = []
    for _ in range(repeats):
        if multi_label:
            guess = [[rng.random() < 0.5 for _ in range(k)] for _ in range(n)]
        else:
            guess = [rng.randrange(k) for _ in range(n)]
        draws.append(class_metrics(y_true, guess, names, multi_label))
    chance = _mean_metrics(draws)
    majority = class_metrics(
        y_true, [majority_prediction(train_counts, train_rows, multi_label)] * n, names, multi_label
    )
    return {"chance": chance, "majority": majority}


def majority_prediction(train_counts: list[int], train_rows: int, multi_label: bool = False):
    """The majority baseline's one answer: the commonest training class, or (multi-label) the labels on most
    training rows as a 0/1 row."""
    if multi_label:
        return [1 if c > 0.5 * train_rows else 0 for c in train_counts]
    return int(np.argmax(train_counts))


def _mean_metrics(rows: list[dict]) -> dict:
    out = {}
    for key, val in rows[0].items():
        if isinstance(val, dict):
            out[key] = _mean_metrics([r[key] for r in rows])
        else:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def confusion_png(y_true, y_pred, names: list, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(names))))
    size = max(4.0, 0.5 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), [str(n) for n in names], rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [str(n) for n in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = cm.max() or 1
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > top / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def entity_metrics(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """Entity-level precision/recall/F1, overall (micro) and per type, as conlleval counts them."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)
    per_type = {
        k: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for k, v in report.items()
        if not k.endswith(" avg")
    }
    flat_t = [t for s in true_tags for t in s]
    flat_p = [t for s in pred_tags for t in s]
    return {
        "entity_f1": float(f1_score(true_tags, pred_tags, zero_division=0)),
        "entity_precision": float(precision_score(true_tags, pred_tags, zero_division=0)),
        "entity_recall": float(recall_score(true_tags, pred_tags, zero_division=0)),
        "token_accuracy": float(np.mean([a == b for a, b in zip(flat_t, flat_p)])) if flat_t else 0.0,
        "per_type": per_type,
    }


def tag_baselines(true_tags: list[list[str]], tag_names: list[str], repeats: int = 5) -> dict:
    rng = random.Random(0)
    draws = [entity_metrics(true_tags, [[rng.choice(tag_names) for _ in s] for s in true_tags]) for _ in range(repeats)]
    return {"chance": _mean_metrics(draws), "majority": entity_metrics(true_tags, [["O"] * len(s) for s in true_tags])}


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) spans from BIO/IOBES tags, by seqeval's rules."""
    from seqeval.metrics.sequence_labeling import get_entities

    return get_entities(tags)
