"""Supervised chat fine-tuning: loss on the assistant's tokens, end-of-turn included."""

from __future__ import annotations

from ..data.batch import collate, holdout_split
from ..data.formats import describe, read_examples, with_system
from ..data.tokenize import IGNORE, Encoded, assistant_spans, encode_examples, label_spans
from ..errors import DataError
from ..eval.evaluate import evaluate_run
from ..models.heads import CausalLMLoss
from ..models.load import load_causal_lm
from .base import Lengths, Prepared, Task, load_settings, median_rows, register


def load_model(cfg, tokenizer, meta=None, source=None):
    return load_causal_lm(source or cfg.model, **load_settings(cfg))


def loss_module(model, meta=None):
    return CausalLMLoss(model)


def collate_batch(items, tokenizer):
    return collate(items, tokenizer.pad_token_id)


def prepare(cfg, tokenizer, log) -> Prepared:
    fmt, examples = read_examples(cfg.data, cfg.columns, cfg.system_prompt)
    if cfg.val_data:  # both files are read before anything is printed: a bad one gives a single error line
        vfmt, val_examples = read_examples(cfg.val_data, cfg.columns, cfg.system_prompt)
    log(f"data: {cfg.data}: detected format '{describe(fmt)}', {len(examples)} rows")
    if cfg.val_data:
        log(f"validation: {cfg.val_data}: detected format '{describe(vfmt)}', {len(val_examples)} rows")
    else:
        examples, val_examples = holdout_split(examples, cfg.val_fraction, cfg.val_max_rows, cfg.seed)
        log(f"validation: held out {len(val_examples)} rows (seed {cfg.seed}); training on {len(examples)}")
    kw = dict(max_seq_len=cfg.max_seq_len, overlong=cfg.overlong, train_on=cfg.train_on)
    train, n_trunc, n_drop = encode_examples(tokenizer, examples, path=cfg.data, **kw)
    val, v_trunc, v_drop = encode_examples(tokenizer, val_examples, path=cfg.val_data or cfg.data, **kw)
    if n_trunc or n_drop or v_trunc or v_drop:
        log(
            f"max_seq_len {cfg.max_seq_len}: truncated {n_trunc + v_trunc}, dropped {n_drop + v_drop} examples "
            f"(overlong={cfg.overlong})"
        )
    if not train:
        from ..errors import TunesmithError

        raise TunesmithError(f"{cfg.data}: no trainable examples left after max_seq_len={cfg.max_seq_len}")
    return Prepared(
        train,
        val,
        {
            "format": fmt,
            "truncated": n_trunc + v_trunc,
            "dropped": n_drop + v_drop,
            "train_rows": len(train),
            "val_rows": len(val),
        },
        val_examples=[e for e in val_examples if e.messages],
    )


def default_select(prepared) -> str:
    """Fact accuracy when validation rows say what the answer must contain, else token F1 to the reference
    (loss for plain-text rows, which have no answer to generate)."""
    if not prepared.val_examples:
        return "loss"
    return "contains" if any(e.must_contain for e in prepared.val_examples) else "token_f1"


def check_select(metric, prepared) -> None:
    from ..errors import TunesmithError

    if not prepared.val_examples:
        raise TunesmithError(f"select_by {metric} needs conversation rows in the validation data; use loss")
    if metric == "contains" and not any(e.must_contain for e in prepared.val_examples):
        raise TunesmithError("select_by contains needs validation rows with must_contain; use token_f1 or loss")


VAL_ANSWER_CAP = 256  # new tokens at most per validation answer (less when the references are short)


def val_questions(prepared, cfg) -> tuple[list, int]:
    """The validation rows `val_scores` answers, and their answer cap."""
    return prepared.val_examples[: cfg.val_generate_rows], VAL_ANSWER_CAP


def val_scores(model, tokenizer, prepared, cfg, answered: dict | None = None) -> dict:
    """Greedy answers to the first `val_generate_rows` validation rows, scored against their references;
    `answered`: those scores, when the loop answered the rows already (in one pass with the general probe)."""
    from ..eval.evaluate import answer_scores

    if answered is not None:
        return answered
    rows, cap = val_questions(prepared, cfg)
    return answer_scores(model, tokenizer, rows, cap=cap)


def eval_items(cfg, tokenizer, path):
    """A held-out file as (row count, encoded items for the loss, conversations to generate answers for)."""
    _, examples = read_examples(path, cfg.columns, cfg.system_prompt)
    encoded, _, _ = encode_examples(
        tokenizer, examples, max_seq_len=cfg.max_seq_len, overlong="truncate", train_on=cfg.train_on, path=path
    )
    return len(examples), encoded, [e for e in examples if e.messages]


def predict(run, inputs) -> list[dict]:
    """Answers to user messages (or to conversations given as {"messages": [...]} rows)."""
    from ..eval.generate import generate_batch

    chats = [
        x["messages"]
        if isinstance(x, dict) and "messages" in x
        else [{"role": "user", "content": x["text"] if isinstance(x, dict) else x}]
        for x in inputs
    ]
    answers = generate_batch(run.model, run.tokenizer, [run.with_system(c) for c in chats], max_new_tokens=256)
    return [{"answer": a} for a in answers]


def measure(cfg, tokenizer, records) -> Lengths:
    """As tokenize.encode_examples, except that all rows are tokenized in one batched call (10x faster)."""
    out, texts, spans = Lengths(), [], []
    for r in records:
        ex = r.item
        if ex.messages is None:  # a plain-text row in an SFT file: learn all of it, then stop
            texts.append(ex.text)
            spans.append(None)
            continue
        try:
            full, sp = assistant_spans(tokenizer, with_system(ex.messages, cfg.system_prompt))
        except ValueError as e:  # a template that cannot be rendered prefix by prefix: train stops too
            raise DataError(r.file, r.line, str(e)) from None
        texts.append(full)
        spans.append(sp)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    for i, (r, sp) in enumerate(zip(records, spans)):
        if sp is None:
            ids = enc["input_ids"][i] + [tokenizer.eos_token_id]
            labels = list(ids)
        else:
            ids, labels = label_spans(
                tokenizer, enc["input_ids"][i], enc["offset_mapping"][i], sp, train_on=cfg.train_on
            )
        out.full.append(len(ids))
        cut = len(ids) > cfg.max_seq_len  # the same rules, in the same order, as encode_examples
        if cut and cfg.overlong == "drop":
            out.dropped += 1
            out.kept.append(0)
            continue
        out.truncated += cut
        ids, labels = ids[: cfg.max_seq_len], labels[: cfg.max_seq_len]
        if all(label == IGNORE for label in labels[1:]):
            out.dropped += 1
            out.kept.append(0)
            continue
        out.kept.append(len(ids))
        out.items[i] = Encoded(ids, labels, r.item.line, cut)
    return out


@register
class SFT(Task):
    """Supervised chat fine-tuning: loss on the assistant's tokens, end-of-turn included."""

    NAME = "sft"
    DESCRIPTION = "chat fine-tuning on conversations (messages, prompt/completion, alpaca, ShareGPT)"
    PEFT_TASK = "CAUSAL_LM"
    AUTO_CLASS = "AutoModelForCausalLM"
    CHAT = CAUSAL = True
    SERVE_KIND = "generate"
    PADDING_FREE = True  # examples stand alone: a batch can be one packed row
    GENERATES = True
    SELECT_METRICS = ("contains", "token_f1")
    BASELINES = ("zero-shot", "few-shot", "rag", "tuned+rag")
    # r 64 / alpha 128 beat 16/32 on the validation splits of both fact sets (docs/evaluation.md, "Levers")
    DEFAULTS = {"lora.r": 64, "lora.alpha": 128, "lr.lora": 1e-3, "lr.full": 5e-5}

    prepare = staticmethod(prepare)
    load_model = staticmethod(load_model)
    loss_module = staticmethod(loss_module)
    collate_batch = staticmethod(collate_batch)
    default_select = staticmethod(default_select)
    check_select = staticmethod(check_select)
    val_scores = staticmethod(val_scores)
    val_questions = staticmethod(val_questions)
    eval_items = staticmethod(eval_items)
    evaluate = staticmethod(evaluate_run)  # loss, then generated answers scored
    predict = staticmethod(predict)
    measure = staticmethod(measure)

    def calibration_items(self, cfg, tokenizer, records, lengths, idx):
        return [lengths.items[i] for i in median_rows(lengths, idx, cfg.batch_size)], {}
