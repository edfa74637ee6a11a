"""`Run`: a finished run folder as a Python object you can evaluate, predict with, generate from and chat with."""
from __future__ import annotations

import contextlib
import json
from functools import cached_property
from pathlib import Path

from .config import load_saved_config
from .errors import TunesmithError


class Run:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = load_saved_config(self.path)
        if not (self.path / "summary.json").is_file():  # written last by train: its absence means a crash
            raise TunesmithError(f"{self.path}: this run did not finish (interrupted or crashed); continue it "
                                 f"with: tunesmith train --resume {self.path}")
        if not ((self.path / "adapter_model.safetensors").is_file() or (self.path / "model.safetensors").is_file()
                or (self.path / "model.safetensors.index.json").is_file()):
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

    def evaluate(self, data: str | Path, base: bool = True, **kw) -> dict:
        """The task's metrics on a held-out file: {"rows", "tuned", "base"}."""
        return self.task.evaluate(self, str(data), base=base, **kw)

    def predict(self, inputs: str | list) -> list[dict]:
        """Labels with probabilities (classify), entities with character spans (tokens), or answers."""
        return self.task.predict(self, [inputs] if isinstance(inputs, str) else list(inputs))

    def generate(self, prompt: str | list[dict], max_new_tokens: int = 256, temperature: float = 0.0) -> str:
        from .eval.generate import generate_batch

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return generate_batch(self.model, self.tokenizer, [self.with_system(messages)],
                              max_new_tokens=max_new_tokens, temperature=temperature)[0]

    def stream(self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0):
        from .eval.generate import stream

        return stream(self.model, self.tokenizer, self.with_system(messages), max_new_tokens=max_new_tokens,
                      temperature=temperature)

    def __repr__(self):
        return f"Run({str(self.path)!r}, task={self.config.task}, method={self.config.method})"
