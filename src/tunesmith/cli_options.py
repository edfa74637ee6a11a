"""Command-line options generated from RunConfig's fields, as litgpt builds its commands from signatures.

Each field (a `lora.*` field as `--lora-<name>`) becomes one typer option: its name, its type, its default
(shown, not applied: an option not given is None, so a YAML file's value stays) and its description, the
only help text. A command decorated with `config_options` gets the options that were given as `overrides`,
build_config's keyword arguments.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .config import RunConfig, build_config, literal_choices, yaml_value
from .errors import TunesmithError

FLAG_NAMES = {
    "early_stopping_patience": "patience",
    "columns": "column",
    "lora.target_modules": "target-modules",
    "padding_free": "padding-free/--padded",
}  # where the flag is not the field's own name
NOT_FLAGS = {"resume"}  # `train --resume DIR|auto` takes it


def _columns(pairs) -> dict[str, str] | None:
    out = {}
    for p in pairs or ():
        if "=" not in p:
            raise TunesmithError(f"--column expects yours=expected (e.g. question=prompt), got '{p}'")
        mine, expected = p.split("=", 1)
        out[mine.strip()] = expected.strip()
    return out or None


def _modules(value: str) -> str | list[str]:
    return value if value == "all-linear" else [t.strip() for t in value.split(",") if t.strip()]


CONVERT: dict[str, Callable] = {"columns": _columns, "lora.target_modules": _modules}
FLAG_TYPES: dict[str, Any] = {"columns": list[str], "lora.target_modules": str}  # the flag's, before CONVERT


def fields() -> dict[str, FieldInfo]:
    """Every setting by its build_config key, nested ones dotted (`lora.r`), in the class's order."""
    out = {}
    for key, f in RunConfig.model_fields.items():
        nested = f.annotation if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel) else None
        out.update({f"{key}.{k}": v for k, v in nested.model_fields.items()} if nested else {key: f})
    return out


def describe(key: str) -> str:
    return fields()[key].description or ""


@dataclass
class Flag:
    key: str  # build_config's keyword
    param: str  # the command function's parameter
    annotation: Any
    option: Any  # the typer.Option


def _flag(key: str, f: FieldInfo, name: str | None = None) -> Flag:
    flag = name or FLAG_NAMES.get(key) or key.replace(".", "-").replace("_", "-")
    base = f.annotation
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        base = next(a for a in typing.get_args(base) if a is not type(None))
    choices = literal_choices(base)
    base = str if choices else FLAG_TYPES.get(key, base)
    if base not in (str, int, float, bool, list[str]):
        raise TypeError(f"RunConfig.{key}: no command-line option for type {base}; add it to FLAG_TYPES/CONVERT")
    decls = [f"--{flag}" if base is not bool or "/" in flag else f"--{flag}/--no-{flag}"]
    default = f.get_default(call_default_factory=True)
    show = False if f.is_required() or default in (None, {}) else yaml_value(default)
    option = typer.Option(
        None, *decls, help=f.description, show_default=show, metavar=f"[{'|'.join(choices)}]" if choices else None
    )
    return Flag(key, flag.split("/")[0].replace("-", "_"), Optional[base], option)  # noqa: UP045 (typer reads typing.Optional)


def config_options(*keys: str, rename: dict[str, str] | None = None):
    """Give a typer command one option per setting in `keys` (all when none), listed before its own; the
    function receives those given as `overrides={key: value}` (and its own parameters as usual)."""
    table = fields()
    flags = [_flag(k, table[k], (rename or {}).get(k)) for k in keys or [k for k in table if k not in NOT_FLAGS]]

    def decorate(fn):
        hints = typing.get_type_hints(fn)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(fn).parameters.values()
            if p.name != "overrides"
        ]
        made = [
            inspect.Parameter(f.param, inspect.Parameter.KEYWORD_ONLY, default=f.option, annotation=f.annotation)
            for f in flags
        ]

        def split(kw: dict) -> dict:
            """The values typer passes -> the function's arguments."""
            overrides = {}
            for f in flags:
                value = kw.pop(f.param, None)
                value = CONVERT[f.key](value) if f.key in CONVERT and value is not None else value
                if value is not None:
                    overrides[f.key] = value
            return {"overrides": overrides, **kw}

        def command(**kw):
            return fn(**split(kw))

        command.__name__, command.__qualname__, command.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        command.__module__, command.split = fn.__module__, split
        command.__signature__ = inspect.Signature(made + own)
        command.__annotations__ = {p.name: p.annotation for p in made + own}
        return command

    return decorate


def parse(app: typer.Typer, name: str, args: list[str]) -> dict:
    """The arguments command `name` of `app` would be called with for `args`, without calling it: a way to
    see what flags become (typer's own conversions, Path for instance, are not applied)."""
    from typer.main import get_command

    ctx = get_command(app).commands[name].make_context(name, list(args))
    fn = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == name)
    return fn.split(dict(ctx.params))


def train_config(overrides: dict, resume: str | Path | None = None, config: str | Path | None = None):
    """`train`'s flags -> (the RunConfig, whether to continue the run folder --resume names)."""
    if resume == "auto":
        overrides, resume = {**overrides, "resume": "auto"}, None
    if resume is not None:
        resume = Path(resume)
        if config is not None or overrides.get("output") is not None:
            raise TunesmithError("--resume reuses the run's saved config and folder; drop --config/--output")
        if not (resume / "config.yaml").is_file():
            raise TunesmithError(f"{resume}: not a tunesmith run folder (no config.yaml)")
        config, overrides = resume / "config.yaml", {**overrides, "output": str(resume)}
    return build_config(config, **overrides), resume is not None
