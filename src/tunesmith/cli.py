"""The `tunesmith` command: a thin layer over the Python API. Exit 0 ok, 2 bad input/usage, 1 internal."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import TunesmithError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune language models on your own data, and see whether it helped.")


def _quiet_libraries():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _columns(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for p in pairs:
        if "=" not in p:
            raise TunesmithError(f"--column expects yours=expected (e.g. question=prompt), got '{p}'")
        mine, expected = p.split("=", 1)
        out[mine.strip()] = expected.strip()
    return out


@app.command()
def train(
    model: Optional[str] = typer.Option(None, help="alias (smollm2-135m), local HF folder or hub id"),
    data: Optional[str] = typer.Option(None, help="training file: JSONL/JSON/CSV/Parquet/TXT"),
    val_data: Optional[str] = typer.Option(None, help="validation file (default: hold out a slice of --data)"),
    task: Optional[str] = typer.Option(None, help="sft | clm | classify | tokens | mlm"),
    method: Optional[str] = typer.Option(None, help="lora | full"),
    output: Optional[str] = typer.Option(None, help="run folder to create"),
    epochs: Optional[float] = typer.Option(None, help="passes over the data (default: auto)"),
    max_steps: Optional[int] = typer.Option(None, help="optimizer steps instead of epochs"),
    lr: Optional[float] = typer.Option(None, help="peak learning rate (default: auto)"),
    batch_size: Optional[int] = typer.Option(None),
    grad_accum: Optional[int] = typer.Option(None, help="micro-batches per optimizer step"),
    max_seq_len: Optional[int] = typer.Option(None),
    overlong: Optional[str] = typer.Option(None, help="truncate | drop examples over max_seq_len"),
    train_on: Optional[str] = typer.Option(None, help="assistant (default) | all tokens"),
    scheduler: Optional[str] = typer.Option(None, help="cosine | linear | constant"),
    seed: Optional[int] = typer.Option(None),
    eval_every: Optional[int] = typer.Option(None, help="optimizer steps between evaluations"),
    patience: Optional[int] = typer.Option(None, help="early-stopping patience, in evaluations"),
    select_by: Optional[str] = typer.Option(None, help="validation metric that picks the kept weights and stops "
                                                       "training: loss | contains | token_f1 (sft) | accuracy | "
                                                       "macro_f1 (classify) | entity_f1 (tokens); default: the "
                                                       "task's own"),
    val_generate_rows: Optional[int] = typer.Option(None, help="sft: validation rows answered at each evaluation "
                                                               "(default 64)"),
    neftune_alpha: Optional[float] = typer.Option(None, help="sft/clm: NEFTune embedding noise in training (e.g. 5)"),
    lora_r: Optional[int] = typer.Option(None),
    lora_alpha: Optional[float] = typer.Option(None),
    lora_dropout: Optional[float] = typer.Option(None),
    target_modules: Optional[str] = typer.Option(None, help="'all-linear' or a comma list, e.g. q_proj,v_proj"),
    lora_variant: Optional[str] = typer.Option(None, help="lora | rslora (alpha/sqrt(r)) | dora (weight-decomposed)"),
    column: Optional[list[str]] = typer.Option(None, help="map a column: yours=expected (repeatable)"),
    system_prompt: Optional[str] = typer.Option(None, help="system turn for conversations without one"),
    label_column: Optional[str] = typer.Option(None, help="classify: column with the label (default 'label')"),
    text_pair_column: Optional[str] = typer.Option(None, help="classify: column with a second text"),
    multi_label: Optional[bool] = typer.Option(None, "--multi-label", help="classify: several labels per row"),
    class_weight: Optional[str] = typer.Option(None, help="classify: none | balanced (for imbalanced data)"),
    threshold: Optional[float] = typer.Option(None, help="classify multi-label: probability to predict a label"),
    label_subwords: Optional[str] = typer.Option(None, help="tokens: first (default) | all sub-tokens labelled"),
    whole_word_mask: Optional[bool] = typer.Option(None, "--whole-word-mask", help="mlm: mask whole words"),
    mlm_probability: Optional[float] = typer.Option(None, help="mlm: share of tokens masked (0.15)"),
    padding_free: Optional[bool] = typer.Option(None, "--padding-free/--padded",
                                                help="sft/clm: one packed row per batch, no pad tokens (default)"),
    compile: Optional[bool] = typer.Option(None, "--compile", help="torch.compile the layers (warm-up ~1 min)"),
    gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing",
                                                          help="less memory, slower steps"),
    save_steps: Optional[int] = typer.Option(None, help="optimizer steps between checkpoints (default: each eval)"),
    keep_checkpoints: Optional[int] = typer.Option(None, help="newest checkpoints to keep (default 2)"),
    on_nonfinite: Optional[str] = typer.Option(None, help="stop (default) | skip a step with a NaN/inf loss"),
    allow_pickle: Optional[bool] = typer.Option(None, "--allow-pickle",
                                                help="accept a base model's .bin weights (weights_only load)"),
    resume: Optional[Path] = typer.Option(None, help="continue an interrupted run folder from its newest "
                                                     "checkpoint; its saved config is reused"),
    config: Optional[Path] = typer.Option(None, help="YAML config; flags override it"),
    force: bool = typer.Option(False, help="replace an existing run folder"),
):
    """Fine-tune a model; writes a run folder with weights, metrics, plots and a summary."""
    from . import build_config

    targets = target_modules
    if targets and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if resume is not None:
        if config is not None or output is not None:
            raise TunesmithError("--resume reuses the run's saved config and folder; drop --config/--output")
        if not (resume / "config.yaml").is_file():
            raise TunesmithError(f"{resume}: not a tunesmith run folder (no config.yaml)")
        config, output = resume / "config.yaml", str(resume)
    cfg = build_config(config, model=model, data=data, val_data=val_data, task=task, method=method, output=output,
                       epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
                       max_seq_len=max_seq_len, overlong=overlong, train_on=train_on, scheduler=scheduler,
                       seed=seed, eval_every=eval_every, early_stopping_patience=patience, select_by=select_by,
                       val_generate_rows=val_generate_rows, neftune_alpha=neftune_alpha,
                       columns=_columns(column), system_prompt=system_prompt, label_column=label_column,
                       text_pair_column=text_pair_column, multi_label=multi_label, class_weight=class_weight,
                       threshold=threshold,
                       label_subwords=label_subwords, whole_word_mask=whole_word_mask,
                       mlm_probability=mlm_probability, padding_free=padding_free, compile=compile,
                       gradient_checkpointing=gradient_checkpointing, save_steps=save_steps,
                       keep_checkpoints=keep_checkpoints, on_nonfinite=on_nonfinite, allow_pickle=allow_pickle,
                       **{"lora.r": lora_r, "lora.alpha": lora_alpha, "lora.dropout": lora_dropout,
                          "lora.target_modules": targets, "lora.variant": lora_variant})
    from .train.loop import train as run_training  # torch loads here: a bad config fails before it, at once

    _quiet_libraries()
    run = run_training(cfg, force=force, resume=resume is not None)
    typer.echo(str(run.path))


def _strip_private(res):
    if isinstance(res, dict):
        return {k: _strip_private(v) for k, v in res.items() if not k.startswith("_")}
    return res


LOWER_BETTER = {"loss", "perplexity"}


def _change(key, b, t):
    better = (t < b) if key in LOWER_BETTER else (t > b)
    return f"[{'green' if better else 'red'}]{t - b:+.4g}[/]"


def print_comparison(result: dict, title: str):
    """One row per scalar metric: the base model (or the chance/majority baselines) beside the tuned run."""
    from rich.console import Console
    from rich.table import Table

    base, tuned = result.get("base") or {}, result["tuned"]
    baselines = [k for k in ("chance", "majority") if isinstance(base.get(k), dict)]
    cols = baselines or ["base"]
    table = Table(title=title)
    table.add_column("metric")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("fine-tuned", justify="right")
    table.add_column(f"change vs {cols[-1]}", justify="right")
    for key, t in tuned.items():
        if not isinstance(t, (int, float)) or key.startswith("_"):
            continue
        refs = [(base.get(c) or {}).get(key) for c in baselines] if baselines else [base.get(key)]
        table.add_row(key, *["-" if b is None else f"{b:.4g}" for b in refs], f"{t:.4g}",
                      "" if refs[-1] is None else _change(key, refs[-1], t))
    console = Console(stderr=True)
    console.print(table)
    per = tuned.get("per_class") or tuned.get("per_type")
    if per:
        detail = Table(title="per class" if "per_class" in tuned else "per entity type")
        for c in ("name", "precision", "recall", "f1", "support"):
            detail.add_column(c, justify="left" if c == "name" else "right")
        for name, m in per.items():
            detail.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
        console.print(detail)
    if result.get("confusion_matrix"):
        console.print(f"confusion matrix: {result['confusion_matrix']}")


@app.command("eval")
def eval_cmd(
    run: Path = typer.Argument(..., help="run folder"),
    data: str = typer.Option(..., help="held-out file in the training format (SFT rows may carry must_contain)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    no_base: bool = typer.Option(False, "--no-base", help="skip the base-model comparison"),
    batch_size: int = typer.Option(16),
    max_new_tokens: Optional[int] = typer.Option(None, help="default: from the reference lengths"),
):
    """Score a run on held-out data, side by side with its base model."""
    from .run import Run

    _quiet_libraries()
    r = Run(run)
    result = r.evaluate(data, base=not no_base, batch_size=batch_size, max_new_tokens=max_new_tokens)
    clean = _strip_private(result)
    (r.path / f"eval_{Path(data).stem}.json").write_text(json.dumps(clean, indent=2))
    if as_json:
        typer.echo(json.dumps({"task": r.config.task, "rows": clean["rows"], "base": clean["base"],
                               "tuned": clean["tuned"]}))
    else:
        print_comparison(result, f"{r.path} on {data} ({result['rows']} rows)")


@app.command()
def predict(
    run: Path = typer.Argument(..., help="run folder"),
    text: Optional[list[str]] = typer.Option(None, help="an input text (repeatable)"),
    data: Optional[str] = typer.Option(None, help="a file of inputs: rows with 'text' (or CoNLL / 'tokens')"),
    output: Optional[Path] = typer.Option(None, help="write JSON lines here instead of stdout"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per input line"),
):
    """Labels with probabilities (classify), entities with character spans (tokens), or generated text."""
    from .run import Run

    if bool(text) == bool(data):
        raise TunesmithError("give --text (one or more) or --data FILE")
    _quiet_libraries()
    r = Run(run)
    inputs = list(text) if text else _predict_inputs(r, data)
    results = r.predict(inputs)
    lines = [json.dumps(x, ensure_ascii=False) for x in results]
    if output:
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in lines))
        tmp.replace(output)
        typer.echo(f"wrote {len(lines)} predictions to {output}", err=True)
    elif as_json:
        for line in lines:
            typer.echo(line)
    else:
        for x, res in zip(inputs, results):
            typer.echo(_describe_prediction(x, res))


def _predict_inputs(r, path: str) -> list:
    from .data.labelled import CONLL_SUFFIXES, read_tagged
    from .data.load import load_rows

    if Path(path).suffix.lower() in CONLL_SUFFIXES:
        return [{"tokens": s.words} for s in read_tagged(path, r.config.columns)]
    rows = []
    for line, row in load_rows(path, r.config.columns):
        if not isinstance(row.get("text"), str) and not isinstance(row.get("tokens"), list):
            raise TunesmithError(f"{path}:{line}: needs a 'text' field (map yours with the run's columns)")
        rows.append(row)
    return rows


def _describe_prediction(x, res: dict) -> str:
    shown = x if isinstance(x, str) else x.get("text") or " ".join(x.get("tokens", []))
    if "entities" in res:
        ents = ", ".join(f"{e['text']} [{e['type']} {e['score']:.2f}]" for e in res["entities"]) or "(no entities)"
        return f"{shown}\n  -> {ents}"
    if "scores" in res:
        label = res.get("label", res.get("labels"))
        top = sorted(res["scores"].items(), key=lambda kv: -kv[1])[:3]
        return f"{label}\t" + " ".join(f"{k}={v:.3f}" for k, v in top) + f"\t{shown}"
    return json.dumps(res, ensure_ascii=False)


@app.command()
def generate(
    run: Path = typer.Argument(..., help="run folder"),
    prompt: str = typer.Option(..., help="the user message"),
    system: Optional[str] = typer.Option(None, help="a system message"),
    max_new_tokens: int = typer.Option(256, min=1, max=4096),
    temperature: float = typer.Option(0.0, min=0.0, help="0 = greedy"),
):
    """Answer one prompt, streaming the tokens."""
    from .run import Run

    _quiet_libraries()
    r = Run(run)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    for piece in r.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command()
def chat(
    run: Path = typer.Argument(..., help="run folder"),
    system: Optional[str] = typer.Option(None, help="a system message"),
    max_new_tokens: int = typer.Option(256, min=1, max=4096),
    temperature: float = typer.Option(0.0, min=0.0),
):
    """Talk to a run: streamed answers, multi-turn history. /reset clears it, /exit or Ctrl-D leaves."""
    from .run import Run

    _quiet_libraries()
    r = Run(run)
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    print(f"chatting with {r.path} (/reset, /exit)", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        if not line.strip():
            continue
        if line.strip() in ("/exit", "/quit"):
            return
        if line.strip() == "/reset":
            history = list(start)
            print("(history cleared)", file=sys.stderr)
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("bot> ")
        answer = []
        for piece in r.stream(history, max_new_tokens=max_new_tokens, temperature=temperature):
            answer.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": "".join(answer).strip()})


@app.command()
def check(
    data: str = typer.Argument(..., help="training file: JSONL/JSON/CSV/Parquet/TXT (CoNLL for --task tokens)"),
    val: Optional[str] = typer.Option(None, help="validation file: checked too, and for leakage"),
    test: Optional[str] = typer.Option(None, help="test file: checked too, and for leakage"),
    model: Optional[str] = typer.Option(None, help="whose tokenizer counts the tokens (default: the config's)"),
    task: Optional[str] = typer.Option(None, help="sft | clm | classify | tokens | mlm"),
    method: Optional[str] = typer.Option(None, help="lora | full (for the time estimate)"),
    max_seq_len: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    epochs: Optional[float] = typer.Option(None, help="default: auto, as train chooses"),
    column: Optional[list[str]] = typer.Option(None, help="map a column: yours=expected (repeatable)"),
    label_column: Optional[str] = typer.Option(None, help="classify: column with the label (default 'label')"),
    multi_label: Optional[bool] = typer.Option(None, "--multi-label", help="classify: several labels per row"),
    config: Optional[Path] = typer.Option(None, help="YAML config, as for train; flags override it"),
    no_estimate: bool = typer.Option(False, "--no-estimate", help="skip the timed calibration steps"),
    fix: Optional[Path] = typer.Option(None, help="write a cleaned copy here (dups, leaks, empty rows removed)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
):
    """Check data before training: invalid rows, token lengths, duplicates, leakage, personal data, cost."""
    from . import build_config
    from .data.check import check as run_check
    from .data.check_report import print_report

    cfg = build_config(config, data=data, val_data=val, model=model, task=task, method=method,
                       max_seq_len=max_seq_len, batch_size=batch_size, epochs=epochs, columns=_columns(column),
                       label_column=label_column, multi_label=multi_label)
    _quiet_libraries()
    res = run_check(data, test=test, cfg=cfg, estimate=not no_estimate, fix=fix, show_progress=True)
    if as_json:
        typer.echo(json.dumps(res, ensure_ascii=False))
    else:
        print_report(res)
    if not res["ok"]:  # exit 2, after the full report; warnings alone never fail the check
        from .data.validate import summary

        raise TunesmithError(summary(res["invalid_rows"], limit=1))


@app.command()
def export(
    run: Path = typer.Argument(..., help="run folder"),
    out: Path = typer.Option(..., help="folder to write (absent or empty, unless --force)"),
    merge: bool = typer.Option(False, "--merge", help="fold the LoRA adapter into the weights: a standalone "
                                                     "Hugging Face model folder"),
    gguf: Optional[str] = typer.Option(None, help="write a GGUF for llama.cpp: f32 | f16 | q8_0 "
                                                  "(Llama-architecture causal LMs)"),
    force: bool = typer.Option(False, help="replace a non-empty --out folder"),
):
    """Export a run: the PEFT adapter (default for LoRA), a merged model (--merge) or a GGUF file (--gguf)."""
    from .export import export as run_export

    _quiet_libraries()
    typer.echo(str(run_export(run, out, merge=merge, gguf=gguf, force=force)))


@app.command()
def serve(
    runs: Optional[list[Path]] = typer.Argument(None, metavar="RUN...",
                                                help="run folders to serve (LoRA runs on one base share it)"),
    base: Optional[str] = typer.Option(None, help="also serve this base model (alias, folder or hub id)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback wants --api-key"),
    port: int = typer.Option(8000, min=0, max=65535),
    api_key: Optional[str] = typer.Option(None, help="require 'Authorization: Bearer KEY' "
                                                     "(default: $TUNESMITH_API_KEY, unset = no key)"),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads for the model (default: torch's choice)"),
):
    """Serve runs over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/classify, ...)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:  # fastapi/uvicorn are dependencies, but an old environment may lack them
        raise TunesmithError(f"serving needs fastapi and uvicorn ({e}); pip install 'fastapi>=0.110' "
                             "'uvicorn>=0.29'") from None
    from .serve import serve as run_server

    _quiet_libraries()
    run_server(list(runs or []), base=base, host=host, port=port, api_key=api_key, threads=threads)


@app.command()
def init(path: Path = typer.Argument(Path("tunesmith.yaml")), force: bool = typer.Option(False)):
    """Write a commented starter config."""
    from .config import STARTER

    if path.exists() and not force:
        raise TunesmithError(f"{path}: already exists (pass --force to overwrite)")
    path.write_text(STARTER.format(name=path.name))
    typer.echo(f"wrote {path}; edit it, then: tunesmith train --config {path}")


@app.command()
def demo(output: Path = typer.Option(Path("runs/demo"), help="run folder for the demo"),
         force: bool = typer.Option(True, help="replace an earlier demo run")):
    """Fine-tune smollm2-135m on a fictional store's support facts, then compare it with the base model."""
    from .demo import run_demo

    _quiet_libraries()
    run_demo(output, force=force)


def main():
    debug = bool(os.environ.get("TUNESMITH_DEBUG"))
    try:
        app(standalone_mode=False)
    except TunesmithError as e:
        one_line = " ".join(str(e).splitlines())  # a wrapped library message may span lines; ours never do
        print(f"{'' if e.exit_code == 130 else 'error: '}{one_line}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        # Usage errors from typer's (vendored) click carry their own exit code, 2.
        if type(e).__name__ == "NoArgsIsHelpError":  # the help text is already on screen
            sys.exit(2)
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        if type(e).__name__ == "Exit":
            sys.exit(getattr(e, "exit_code", 0))
        if debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (set TUNESMITH_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
