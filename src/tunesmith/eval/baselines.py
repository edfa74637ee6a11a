"""`tunesmith eval --baselines`: what you could have had without fine-tuning, on the same test rows, scored the
same way (docs/evaluation.md, "Baselines: should you fine-tune at all?").

Generating tasks (sft): `zero-shot` (the base model, as the "base" column always was), `few-shot` (the base
model with training examples as earlier turns), `rag` (the base model with retrieved training pairs or document
passages in the question's turn) and `tuned+rag` (the fine-tuned model with the same retrieved context).
Classification: `linear-probe` (logistic regression on the frozen base model's mean-pooled embeddings).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunesmithError
from .verdict import LABELS

GENERATION = ("zero-shot", "few-shot", "rag", "tuned+rag")
CLASSIFICATION = ("linear-probe",)
KNOWN = GENERATION + CLASSIFICATION
KEYS = {name: key for key, name in LABELS.items()}  # --baselines name -> result key
RAG_INTRO = "Use this reference if it helps:"  # the retrieved block, then "Question: " and the user's own message
EMBEDDER = "minilm-l6"


def parse(names) -> list[str]:
    """`--baselines` (a comma list, or a list) -> known names in the order given, once each."""
    if not names:
        return []
    items = names.split(",") if isinstance(names, str) else list(names)
    out = []
    for raw in items:
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in KNOWN:
            raise TunesmithError(f"unknown baseline '{name}' (known: {', '.join(KNOWN)})")
        if name not in out:
            out.append(name)
    return out


def check_applies(names: list[str], allowed, task: str) -> None:
    """Refuse a baseline the task has no use for (rag for classify, any for tokens)."""
    for name in names:
        if name not in allowed:
            have = f"its baselines: {', '.join(allowed)}" if allowed else "it has no baselines beyond its own table"
            raise TunesmithError(f"baseline '{name}' does not apply to task {task} ({have})")


# -- prompts ---------------------------------------------------------------------------------------------


def question(prompt: list[dict]) -> str:
    """A prompt's last user turn: what retrieval searches with and what samples show."""
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


def pair_text(messages: list[dict]) -> str:
    """A training conversation as retrieval text and as context: its user turns, then its last answer."""
    question = "\n".join(m["content"] for m in messages[:-1] if m["role"] == "user")
    return f"Q: {question}\nA: {messages[-1]['content']}"


def shot_turns(messages: list[dict]) -> list[dict]:
    """A training conversation as few-shot turns: every turn but system ones."""
    return [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]


def pick_shots(train: list[list[dict]], k: int, seed: int) -> list[list[dict]]:
    """k training conversations drawn with `seed` (the run's), the same for every test row."""
    idx = random.Random(seed).sample(range(len(train)), min(k, len(train)))
    return [shot_turns(train[i]) for i in idx]


def few_shot_prompt(messages: list[dict], shots: list[list[dict]], fits: Callable) -> tuple[list[dict], int]:
    """The test conversation with the shots' turns after its system message(s): as many shots as `fits`
    allows, the last ones dropped first; (conversation, shots used)."""
    n_sys = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    head, rest = list(messages[:n_sys]), list(messages[n_sys:])
    for n in range(len(shots), 0, -1):
        conv = head + [t for s in shots[:n] for t in s] + rest
        if fits(conv):
            return conv, n
    return list(messages), 0


def rag_prompt(messages: list[dict], contexts: list[str], fits: Callable) -> tuple[list[dict], int]:
    """The test conversation with its last user turn replaced by: RAG_INTRO, the retrieved texts (best first,
    a blank line between), "Question: " and the turn's own text; as many texts as `fits` allows, the
    lowest-ranked dropped first; (conversation, texts used)."""
    i = max((j for j, m in enumerate(messages) if m["role"] == "user"), default=len(messages) - 1)
    for n in range(len(contexts), 0, -1):
        block = "\n\n".join(contexts[:n])
        content = f"{RAG_INTRO}\n\n{block}\n\nQuestion: {messages[i]['content']}"
        conv = [*messages[:i], {"role": messages[i]["role"], "content": content}, *messages[i + 1 :]]
        if fits(conv):
            return conv, n
    return list(messages), 0


def context_limit(model, fallback: int) -> int:
    """Tokens the model takes: its max_position_embeddings (a PEFT wrapper passes it through), else `fallback`."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None) or fallback


def fitter(tokenizer, limit: int, budget: int) -> Callable:
    """conversation -> whether its prompt tokens plus the answer budget fit in `limit`."""
    from .generate import encode

    return lambda conv: len(encode(tokenizer, conv)) + budget <= limit


def require_train_file(train_path, readers: str) -> None:
    """Refuse a training file that is not there, naming the baselines that read it."""
    if not train_path or not Path(train_path).is_file():
        raise TunesmithError(
            f"{train_path}: the run's training file is not there ({readers} read it); pass --train-data FILE"
        )


def read_train(train_path, columns=None, system_prompt=None) -> list[list[dict]]:
    """The training file's conversations that end in an answer (few-shot and rag draw on them)."""
    from ..data.formats import read_examples

    require_train_file(train_path, "few-shot and rag")
    _, examples = read_examples(train_path, columns, system_prompt)
    train = [e.messages for e in examples if e.messages and e.messages[-1]["role"] == "assistant"]
    if not train:
        raise TunesmithError(f"{train_path}: no conversations with an answer to use as examples or context")
    return train


# -- generation baselines ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """The baselines' prompts, built (and retrieval done) before any answer is generated."""

    questions: list[str]
    refs: list[str]
    musts: list[list[str]]
    prompts: dict[str, list] = field(default_factory=dict)  # result key -> conversations
    notes: dict[str, dict] = field(default_factory=dict)  # result key -> how its prompts were built
    retrieval: dict | None = None

    def base_keys(self) -> list[str]:
        """The systems the base model answers: few_shot, rag."""
        return [k for k in self.prompts if k != "tuned_rag"]

    def tuned_keys(self) -> list[str]:
        """The systems the fine-tuned model answers: tuned_rag."""
        return [k for k in self.prompts if k == "tuned_rag"]


def plan(
    run,
    prompts: list[list[dict]],
    refs: list[str],
    musts: list[list[str]],
    names: list[str],
    *,
    shots: int = 4,
    top_k: int = 4,
    docs=None,
    train_path=None,
    max_new_tokens: int,
    embedder: str = EMBEDDER,
    retrieval: str = "hybrid",
    log=print,
) -> Plan:
    """Few-shot and RAG prompts for the test prompts (conversations up to the answer), fitted to the model's
    context with `max_new_tokens` left for the answer."""
    cfg = run.config
    if not prompts:
        raise TunesmithError("baselines need conversation rows with an answer in the test file")
    out = Plan([question(p) for p in prompts], refs, musts)
    rag = [name for name in ("rag", "tuned+rag") if name in names]
    need_train = "few-shot" in names or (rag and not docs)
    train = read_train(train_path, cfg.columns, cfg.system_prompt) if need_train else []
    limit = context_limit(run.model, cfg.max_seq_len)
    fits = fitter(run.tokenizer, limit, max_new_tokens)
    if "few-shot" in names:
        chosen = pick_shots(train, shots, cfg.seed)
        built = [few_shot_prompt(p, chosen, fits) for p in prompts]
        out.prompts["few_shot"] = [c for c, _ in built]
        out.notes["few_shot"] = {
            "shots": len(chosen),
            "rows_cut": sum(n < len(chosen) for _, n in built),
            "context": limit,
            "seed": cfg.seed,
        }
        log(f"few-shot: {len(chosen)} training examples (seed {cfg.seed}) before each question")
    if rag:
        from .retrieve import describe, read_docs, recall_at_k, retriever

        if docs:
            texts = checked = read_docs(docs)
            source, what = f"docs: {docs}", f"{len(texts)} passages of {docs}"
        else:
            texts, checked = [pair_text(m) for m in train], [m[-1]["content"] for m in train]
            source, what = "training pairs", f"{len(texts)} training pairs"
        log(
            f"rag: retrieving the top {top_k} of {what} for {len(prompts)} questions "
            f"({describe(retrieval, embedder)})..."
        )
        hits = retriever(texts, retrieval, embedder).search(out.questions, top_k)
        built = [rag_prompt(p, [texts[j] for j in h], fits) for p, h in zip(prompts, hits)]
        rows_cut = sum(n < len(h) for (_, n), h in zip(built, hits))
        for name in rag:  # rag and tuned+rag: the same prompts, retrieved once
            out.prompts[KEYS[name]] = [c for c, _ in built]
            out.notes[KEYS[name]] = {"top_k": top_k, "source": source, "rows_cut": rows_cut, "context": limit}
        recall, rows = recall_at_k([[checked[j] for j in h] for h in hits], musts)
        out.retrieval = {
            "k": top_k,
            "recall_at_k": recall,
            "rows": rows,
            "method": retrieval,
            "source": source,
            "texts": len(texts),
        }
    return out


def generation_verdict(result: dict, plan: Plan, summary: dict, gpu: dict | None, method: str | None) -> dict:
    """The verdict for a generating task, on the main metric (contains, else token F1), from per-row scores."""
    from .verdict import main_metric, training_cost, verdict

    metric = main_metric(plan.musts)
    rows = {k: result[k]["_rows"][metric] for k in ("base", *plan.base_keys()) if result.get(k)}
    tuned_rag = result["tuned_rag"]["_rows"][metric] if result.get("tuned_rag") else None
    return verdict(
        result["tuned"]["_rows"][metric], rows, metric, tuned_rag=tuned_rag, cost=training_cost(summary, gpu, method)
    )


# -- classification ---------------------------------------------------------------------------------------


def pooled(model, items, collate_fn, batch_size: int = 64):
    """(n, hidden) array: the mean of the model's last hidden layer over each item's real tokens (mean pooling,
    as sentence-transformers pools), by `infer.per_item`'s length-sorted batches."""
    import numpy as np

    from .infer import per_item

    vecs = per_item(model, items, collate_fn, lambda h: h.mean(0).cpu().numpy(), batch_size, hidden=True)
    return np.stack(vecs) if vecs else np.zeros((0, 0), dtype=np.float32)


def linear_probe(x_train, y_train, x_test, *, multi_label: bool = False, threshold: float = 0.5, seed: int = 0):
    """Predicted class ids (multi-label: 0/1 rows at `threshold`) of a scikit-learn logistic regression on
    standardised features, fitted on the training embeddings."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = LogisticRegression(max_iter=2000, random_state=seed)
    if multi_label:
        from sklearn.multiclass import OneVsRestClassifier

        probe = make_pipeline(StandardScaler(), OneVsRestClassifier(clf)).fit(x_train, np.asarray(y_train, dtype=int))
        return [[int(p >= threshold) for p in row] for row in probe.predict_proba(x_test)]
    if len(set(y_train)) < 2:  # one class in training: logistic regression cannot be fitted, it is that class
        return [int(y_train[0])] * len(x_test)
    probe = make_pipeline(StandardScaler(), clf).fit(x_train, list(y_train))
    return [int(p) for p in probe.predict(x_test)]


def correct(y_true, y_pred) -> list[float]:
    """1.0 per row whose prediction is right (multi-label: the whole label set), else 0.0."""
    return [
        float(list(t) == list(p)) if isinstance(t, (list, tuple)) else float(t == p) for t, p in zip(y_true, y_pred)
    ]
