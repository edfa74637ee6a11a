"""`Run`: a finished run folder as a Python object you can evaluate, predict with, generate from and chat with."""

from __future__ import annotations

import contextlib
import json
import sys
from functools import cached_property
from pathlib import Path

from .config import load_saved_config
from .errors import TunesmithError


class Run:
    def __init__(self, path: str | Path, dtype: str | None = None):
        """`dtype` ("fp32", "bf16", "fp16", "auto"): load the weights in it; unset = the dtype the run trained in."""
        self.path = Path(path)
        self.config = load_saved_config(self.path)
        # Training saves the dtype it chose; "auto" here is a run saved before the setting existed: fp32.
        trained = "fp32" if self.config.dtype == "auto" else self.config.dtype
        self.config = self.config.model_copy(update={"dtype": dtype or trained})
        if not (self.path / "summary.json").is_file():  # written last by train: its absence means a crash
            raise TunesmithError(
                f"{self.path}: this run did not finish (interrupted or crashed); continue it "
                f"with: tunesmith train --resume {self.path}"
            )
        if not (
            (self.path / "adapter_model.safetensors").is_file()
            or (self.path / "model.safetensors").is_file()
            or (self.path / "model.safetensors.index.json").is_file()
        ):
            raise TunesmithError(f"{self.path}: run folder has no weights (did training finish?)")

    @property
    def summary(self) -> dict:
        f = self.path / "summary.json"
        return json.loads(f.read_text()) if f.is_file() else {}

    @cached_property
    def meta(self) -> dict:
        """What the task recorded about its data at training time (labels and their counts, ...)."""
        f = self.path / "task.json"
        return json.loads(f.read_text()) if f.is_file() else {}

    @property
    def task(self):
        from .tasks import get_task

        return get_task(self.config.task)

    @property
    def is_adapter(self) -> bool:
        return (self.path / "adapter_config.json").is_file()

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.path)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return tok

    @cached_property
    def model(self):
        if self.is_adapter:
            from peft import PeftModel

            base = self.task.load_model(self.config, self.tokenizer, self.meta)
            model = PeftModel.from_pretrained(base, self.path)
        else:
            model = self.task.load_model(self.config, self.tokenizer, self.meta, source=self.path)
        return model.eval()

    @contextlib.contextmanager
    def base_model(self):
        """The model before fine-tuning; for LoRA the same weights with the adapter switched off."""
        if self.is_adapter:
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.task.load_model(self.config, self.tokenizer, self.meta).eval()

    def with_system(self, messages: list[dict]) -> list[dict]:
        from .data.formats import with_system

        return with_system(messages, self.config.system_prompt)

    def evaluate(
        self, data: str | Path, base: bool = True, save: bool = False, general: str | None = None, **kw
    ) -> dict:
        """The task's metrics on a held-out file: {"rows", "tuned", "base"}, plus "general" for tasks that
        generate text: the general-ability probe on both models and the relative drop of its score
        (eval/general.py; `general`: a probe file, "default" or "none"; unset = the run's own setting);
        `save`: also write them to the run folder (`save_eval`).

        `baselines` (["few-shot", "rag", ...] or "few-shot,rag"; eval/baselines.py) adds what could be had
        without fine-tuning, scored the same way, and a "verdict"; with `shots`, `top_k`, `docs`, `train_path`
        (default: the run's training file) and `gpu` (default: config.REFERENCE_GPU, for the cost estimate)."""
        from .eval.general import general_block

        if kw.get("baselines"):
            from .config import REFERENCE_GPU
            from .eval.baselines import check_applies, parse

            kw["baselines"] = parse(kw["baselines"])
            check_applies(kw["baselines"], self.task.BASELINES, self.config.task)
            kw.setdefault("gpu", REFERENCE_GPU)
            if kw.get("train_path") is None:
                kw["train_path"] = self.config.data
        else:
            kw.pop("baselines", None)
        result = self.task.evaluate(self, str(data), base=base, **kw)
        note = self.task.collapse_note(result["tuned"])  # e.g. every row one class: the figures mislead
        if note:
            result["collapsed"] = f"the fine-tuned model's predictions {note}"
        block = general_block(self, general, base=base)
        if block is not None:
            result["general"] = block
        if save:
            self.save_eval(result, data)
        return result

    def save_eval(self, result: dict, data: str | Path) -> dict:
        """Write an `evaluate` result to eval_<data file stem>.json in the run folder, without its private
        `_` keys (answers and the like); returns what was written."""
        clean = _strip_private(result)
        (self.path / f"eval_{Path(data).stem}.json").write_text(json.dumps(clean, indent=2))
        return clean

    def predict(self, inputs: str | list) -> list[dict]:
        """Labels with probabilities (classify), entities with character spans (tokens), or answers."""
        return self.task.predict(self, [inputs] if isinstance(inputs, str) else list(inputs))

    def save_predictions(self, results: list[dict], path: str | Path) -> None:
        """Write `predict` answers to a file, one JSON object a line; the file appears whole or not at all."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in results))
        tmp.replace(path)

    def read_inputs(self, path: str | Path) -> list:
        """Inputs for `predict` from a file: in the task's own layout (tokens: CoNLL), else rows with 'text'
        (or 'tokens'), the run's column mapping applied."""
        inputs = self.task.read_inputs(str(path), self.config)
        if inputs is not None:
            return inputs
        from .data.load import load_rows

        rows = []
        for line, row in load_rows(path, self.config.columns):
            if not isinstance(row.get("text"), str) and not isinstance(row.get("tokens"), list):
                raise TunesmithError(f"{path}:{line}: needs a 'text' field (map yours with the run's columns)")
            rows.append(row)
        return rows

    def generate(self, prompt: str | list[dict], max_new_tokens: int = 256, temperature: float = 0.0) -> str:
        from .eval.generate import generate_batch

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return generate_batch(
            self.model,
            self.tokenizer,
            [self.with_system(messages)],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )[0]

    def stream(self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0):
        from .eval.generate import stream

        return stream(
            self.model,
            self.tokenizer,
            self.with_system(messages),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )

    def say(self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0, out=None) -> str:
        """Stream the answer to `messages` onto `out` (stdout) as it is generated, then a newline; returns it."""
        out, pieces = out or sys.stdout, []
        for piece in self.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature):
            pieces.append(piece)
            out.write(piece)
            out.flush()
        out.write("\n")
        return "".join(pieces)

    def chat(self, system: str | None = None, max_new_tokens: int = 256, temperature: float = 0.0):
        """Talk to the run in a terminal: streamed answers, multi-turn history; /reset clears it, /exit or
        Ctrl-D leaves."""
        with contextlib.suppress(ImportError):  # line editing and history for input(); absent on Windows
            import readline  # noqa: F401
        from .models.merged import merged

        print(f"chatting with {self.path} (/reset, /exit)", file=sys.stderr)
        with merged(self.model):  # once for the session, not again for every answer (about 1 s each here)
            self._chat_loop([{"role": "system", "content": system}] if system else [], max_new_tokens, temperature)

    def _chat_loop(self, start: list[dict], max_new_tokens: int, temperature: float):
        history = list(start)
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                return
            if line.strip() in ("/exit", "/quit"):
                return
            if line.strip() == "/reset":
                history = list(start)
                print("(history cleared)", file=sys.stderr)
            elif line.strip():
                history.append({"role": "user", "content": line})
                sys.stdout.write("bot> ")
                try:  # generation runs in this thread, so Ctrl-C stops it at once
                    answer = self.say(history, max_new_tokens=max_new_tokens, temperature=temperature)
                except KeyboardInterrupt:
                    print("\n(answer stopped; that question is dropped from the history)", file=sys.stderr)
                    history.pop()
                    continue
                history.append({"role": "assistant", "content": answer.strip()})

    @staticmethod
    def describe(x: str | dict, res: dict) -> str:
        """One `predict` answer for a person: the label and top scores, or the entities, beside the input."""
        shown = x if isinstance(x, str) else x.get("text") or " ".join(x.get("tokens", []))
        if "entities" in res:
            ents = ", ".join(f"{e['text']} [{e['type']} {e['score']:.2f}]" for e in res["entities"]) or "(no entities)"
            return f"{shown}\n  -> {ents}"
        if "scores" in res:
            label = res.get("label", res.get("labels"))
            top = sorted(res["scores"].items(), key=lambda kv: -kv[1])[:3]
            return f"{label}\t" + " ".join(f"{k}={v:.3f}" for k, v in top) + f"\t{shown}"
        return json.dumps(res, ensure_ascii=False)

    def __repr__(self):
        return f"Run({str(self.path)!r}, task={self.config.task}, method={self.config.method})"


def _strip_private(res):
    if isinstance(res, dict):
        return {k: _strip_private(v) for k, v in res.items() if not k.startswith("_")}
    return res
