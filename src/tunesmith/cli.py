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
    task: Optional[str] = typer.Option(None, help="sft | clm"),
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
    lora_r: Optional[int] = typer.Option(None),
    lora_alpha: Optional[float] = typer.Option(None),
    lora_dropout: Optional[float] = typer.Option(None),
    target_modules: Optional[str] = typer.Option(None, help="'all-linear' or a comma list, e.g. q_proj,v_proj"),
    column: Optional[list[str]] = typer.Option(None, help="map a column: yours=expected (repeatable)"),
    system_prompt: Optional[str] = typer.Option(None, help="system turn for conversations without one"),
    config: Optional[Path] = typer.Option(None, help="YAML config; flags override it"),
    force: bool = typer.Option(False, help="replace an existing run folder"),
):
    """Fine-tune a model; writes a run folder with weights, metrics, plots and a summary."""
    from . import build_config
    from .train.loop import train as run_training

    targets = target_modules
    if targets and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    cfg = build_config(config, model=model, data=data, val_data=val_data, task=task, method=method, output=output,
                       epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
                       max_seq_len=max_seq_len, overlong=overlong, train_on=train_on, scheduler=scheduler,
                       seed=seed, eval_every=eval_every, early_stopping_patience=patience,
                       columns=_columns(column), system_prompt=system_prompt,
                       **{"lora.r": lora_r, "lora.alpha": lora_alpha, "lora.dropout": lora_dropout,
                          "lora.target_modules": targets})
    _quiet_libraries()
    run = run_training(cfg, force=force)
    typer.echo(str(run.path))


def _strip_private(res):
    if isinstance(res, dict):
        return {k: _strip_private(v) for k, v in res.items() if not k.startswith("_")}
    return res


def print_comparison(result: dict, title: str):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("fine-tuned", justify="right")
    table.add_column("change", justify="right")
    base, tuned = result.get("base") or {}, result["tuned"]
    lower_better = {"loss", "perplexity"}
    for key in ("loss", "perplexity", "token_accuracy", "exact_match", "token_f1", "rouge_l", "contains"):
        if tuned.get(key) is None:
            continue
        b, t = base.get(key), tuned[key]
        change = ""
        if b is not None:
            better = (t < b) if key in lower_better else (t > b)
            change = f"[{'green' if better else 'red'}]{t - b:+.4g}[/]"
        table.add_row(key, "-" if b is None else f"{b:.4g}", f"{t:.4g}", change)
    Console(stderr=True).print(table)


@app.command("eval")
def eval_cmd(
    run: Path = typer.Argument(..., help="run folder"),
    data: str = typer.Option(..., help="held-out file (rows may carry must_contain)"),
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
        typer.echo(json.dumps({"base": clean["base"], "tuned": clean["tuned"]}))
    else:
        print_comparison(result, f"{r.path} on {data} ({result['rows']} rows)")


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
        print(f"error: {e}", file=sys.stderr)
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
