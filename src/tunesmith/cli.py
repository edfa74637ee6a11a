"""The `tunesmith` command: a thin layer over the Python API. Exit 0 ok, 2 bad input/usage, 1 internal.

The options of `train` and `check` that are settings are generated from RunConfig (cli_options.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from .cli_options import config_options, describe, train_config
from .errors import TunesmithError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fine-tune language models on your own data, and see whether it helped.",
)
RUN, SYSTEM = typer.Argument(..., help="run folder"), typer.Option(None, help="a system message")
JSON = typer.Option(False, "--json", help="print one JSON object on stdout")
MAX_NEW_TOKENS = typer.Option(256, min=1, max=4096)
DTYPE = typer.Option(None, metavar="[auto|fp32|bf16|fp16]", help="load the weights in this; default: as trained")


def _quiet_libraries():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _open(run: Path, dtype: str | None = None):
    from .run import Run

    _quiet_libraries()
    return Run(run, dtype=dtype)


@app.command()
@config_options()
def train(
    overrides: dict,
    resume: str | None = typer.Option(
        None,
        metavar="DIR|auto",
        help="DIR: continue that interrupted run folder, with its saved config; " + describe("resume"),
    ),
    config: Path | None = typer.Option(None, help="YAML config; flags override it"),
    force: bool = typer.Option(False, help="replace an existing run folder"),
):
    """Fine-tune a model; writes a run folder with weights, metrics, plots and a summary."""
    cfg, again = train_config(overrides, resume, config)
    from .train.loop import train as run_training  # torch loads here: a bad config fails before it, at once

    _quiet_libraries()
    typer.echo(str(run_training(cfg, force=force, resume=again).path))


EVAL_JSON_KEYS = (
    "rows",
    "base",
    "tuned",
    "collapsed",
    "few_shot",
    "rag",
    "tuned_rag",
    "retrieval",
    "verdict",
    "general",
)


@app.command("eval")
def eval_cmd(
    run: Path = RUN,
    data: str = typer.Option(..., help="held-out file in the training format (SFT rows may carry must_contain)"),
    as_json: bool = JSON,
    no_base: bool = typer.Option(False, "--no-base", help="skip the base-model comparison"),
    batch_size: int = typer.Option(16),
    max_new_tokens: int | None = typer.Option(None, help="default: from the reference lengths"),
    dtype: str | None = DTYPE,
    general: str | None = typer.Option(
        None,
        metavar="FILE|default|none",
        help="general-ability probe (sft/clm): a file, the shipped one, or none; default: the run's own",
    ),
    baselines: str | None = typer.Option(
        None,
        metavar="NAME,...",
        help="also score options without fine-tuning on the same rows, and print a verdict: zero-shot, few-shot, "
        "rag, tuned+rag (sft); linear-probe (classify)",
    ),
    shots: int = typer.Option(4, min=0, help="few-shot: training examples before each question"),
    top_k: int = typer.Option(4, min=1, help="rag: retrieved training pairs (or --docs passages) per question"),
    docs: str | None = typer.Option(None, help="rag: retrieve from this text file or folder of .txt/.md files"),
    retrieval: str = typer.Option(
        "hybrid", metavar="[hybrid|dense|bm25]", help="rag: BM25 and MiniLM rankings fused, or one of them alone"
    ),
    train_data: str | None = typer.Option(
        None, help="the training file few-shot, rag and linear-probe draw on; default: the run's own"
    ),
):
    """Score a run on held-out data, side by side with its base model."""
    from .eval.baselines import parse
    from .eval.compare import print_comparison
    from .eval.retrieve import check_method

    names = parse(baselines)  # a bad name or method fails here, before any model is loaded
    check_method(retrieval)
    extra = {}
    if names:
        extra = dict(baselines=names, shots=shots, top_k=top_k, docs=docs, train_path=train_data, retrieval=retrieval)
    r = _open(run, dtype)
    result = r.evaluate(
        data, base=not no_base, batch_size=batch_size, max_new_tokens=max_new_tokens, general=general, **extra
    )
    clean = r.save_eval(result, data)
    if as_json:
        typer.echo(json.dumps({"task": r.config.task, **{k: clean[k] for k in EVAL_JSON_KEYS if k in clean}}))
    else:
        print_comparison(result, f"{r.path} on {data} ({result['rows']} rows)")


@app.command()
def predict(
    run: Path = RUN,
    text: list[str] | None = typer.Option(None, help="an input text (repeatable)"),
    data: str | None = typer.Option(None, help="a file of inputs: rows with 'text' (or CoNLL / 'tokens')"),
    output: Path | None = typer.Option(None, help="write JSON lines here instead of stdout"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per input line"),
    dtype: str | None = DTYPE,
):
    """Labels with probabilities (classify), entities with character spans (tokens), or generated text."""
    if bool(text) == bool(data):
        raise TunesmithError("give --text (one or more) or --data FILE")
    r = _open(run, dtype)
    inputs = list(text) if text else r.read_inputs(data)
    results = r.predict(inputs)
    if output:
        r.save_predictions(results, output)
        typer.echo(f"wrote {len(results)} predictions to {output}", err=True)
    else:
        for x, res in zip(inputs, results):
            typer.echo(json.dumps(res, ensure_ascii=False) if as_json else r.describe(x, res))


@app.command()
def generate(
    run: Path = RUN,
    prompt: str = typer.Option(..., help="the user message"),
    system: str | None = SYSTEM,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = typer.Option(0.0, min=0.0, help="0 = greedy"),
    dtype: str | None = DTYPE,
):
    """Answer one prompt, streaming the tokens."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    _open(run, dtype).say(messages, max_new_tokens=max_new_tokens, temperature=temperature)


@app.command()
def chat(
    run: Path = RUN,
    system: str | None = SYSTEM,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = typer.Option(0.0, min=0.0),
    dtype: str | None = DTYPE,
):
    """Talk to a run: streamed answers, multi-turn history. /reset clears it, /exit or Ctrl-D leaves."""
    _open(run, dtype).chat(system, max_new_tokens=max_new_tokens, temperature=temperature)


@app.command()
@config_options(
    *"val_data model task method max_seq_len batch_size epochs columns label_column multi_label".split(),
    rename={"val_data": "val"},
)
def check(
    overrides: dict,
    data: str = typer.Argument(..., help=describe("data")),
    test: str | None = typer.Option(None, help="test file: checked too, and for leakage"),
    config: Path | None = typer.Option(None, help="YAML config, as for train; flags override it"),
    no_estimate: bool = typer.Option(False, "--no-estimate", help="skip the timed calibration steps"),
    fix: Path | None = typer.Option(None, help="write a cleaned copy here (dups, leaks, empty rows removed)"),
    as_json: bool = JSON,
):
    """Check data before training: invalid rows, token lengths, duplicates, leakage, personal data, cost."""
    from . import build_config
    from .check import check as run_check
    from .check.report import print_report

    cfg = build_config(config, data=data, **overrides)
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
    run: Path = RUN,
    out: Path = typer.Option(..., help="folder to write (absent or empty, unless --force)"),
    merge: bool = typer.Option(
        False, "--merge", help="fold the LoRA adapter into the weights: a standalone Hugging Face model folder"
    ),
    gguf: str | None = typer.Option(
        None, help="write a GGUF for llama.cpp: f32 | f16 | q8_0 (Llama-architecture causal LMs)"
    ),
    force: bool = typer.Option(False, help="replace a non-empty --out folder"),
):
    """Export a run: the PEFT adapter (default for LoRA), a merged model (--merge) or a GGUF file (--gguf)."""
    from .export import export as run_export

    _quiet_libraries()
    typer.echo(str(run_export(run, out, merge=merge, gguf=gguf, force=force)))


@app.command()
def serve(
    runs: list[Path] | None = typer.Argument(
        None, metavar="RUN...", help="run folders to serve (LoRA runs on one base share it)"
    ),
    base: str | None = typer.Option(None, help="also serve this base model (alias, folder or hub id)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback wants --api-key"),
    port: int = typer.Option(8000, min=0, max=65535),
    api_key: str | None = typer.Option(
        None, help="require 'Authorization: Bearer KEY' (default: $TUNESMITH_API_KEY, unset = no key)"
    ),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for the model (default: torch's)"),
    engine: str = typer.Option(
        "tunesmith",
        metavar="[tunesmith|vllm]",
        help="generation engine: tunesmith's own (CPU or GPU), or vllm (CUDA GPU, pip install 'tunesmith[vllm]')",
    ),
):
    """Serve runs over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/classify, ...)."""
    from .serve import serve as run_server

    _quiet_libraries()
    run_server(list(runs or []), base=base, host=host, port=port, api_key=api_key, threads=threads, engine=engine)


@app.command()
def init(path: Path = typer.Argument(Path("tunesmith.yaml")), force: bool = typer.Option(False)):
    """Write a commented starter config: every setting, its default and what it does."""
    from .config import write_starter

    write_starter(path, force=force)
    typer.echo(f"wrote {path}; edit it, then: tunesmith train --config {path}")


@app.command()
def demo(
    output: Path = typer.Option(Path("runs/demo"), help="run folder for the demo"),
    force: bool = typer.Option(True, help="replace an earlier demo run"),
):
    """Fine-tune smollm2-135m on a fictional store's support facts, then compare it with the base model."""
    from .demo import run_demo

    _quiet_libraries()
    run_demo(output, force=force)


@app.command()
def report(
    run: Path = RUN, out: Path | None = typer.Option(None, help="HTML file to write (default: RUN/report.html)")
):
    """One self-contained HTML page about a run: config, data, loss curves, evaluations, samples, time."""
    from .report import write_report

    typer.echo(str(write_report(run, out)))


@app.command()
@config_options()
def curve(
    overrides: dict,
    sizes: str = typer.Option("0.25,0.5,1.0", help="fractions of the training rows, one run each (nested subsets)"),
    config: Path | None = typer.Option(None, help="YAML config, as for train; flags override it"),
    force: bool = typer.Option(False, help="replace a non-empty --output folder"),
):
    """Would more data help? Train on nested subsets of --data, score each on --val-data, fit the trend.

    Writes curve.json and curve.png into --output (default runs/curve; the subset runs go in subfolders)."""
    from . import build_config
    from .train.curve import DEFAULT_OUTPUT, learning_curve, parse_sizes

    output = overrides.pop("output", None) or DEFAULT_OUTPUT  # a config's `output` names a run, not a curve
    fractions = parse_sizes(sizes)
    cfg = build_config(config, **overrides)
    _quiet_libraries()
    learning_curve(cfg, fractions, output, force=force)
    typer.echo(str(Path(output) / "curve.json"))


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
