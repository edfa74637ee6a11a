"""tunesmith: fine-tune language models on your own data, and see whether it helped."""

from __future__ import annotations

__version__ = "0.1.0"

from . import train as _train_stage  # noqa: E402,F401  (load the subpackage now so `train` below stays the function)
from .config import RunConfig, build_config  # noqa: E402
from .errors import DataError, TunesmithError  # noqa: E402


def train(config: RunConfig | dict | str, force: bool = False, resume: bool = False, **overrides):
    """Train from a RunConfig, a dict of settings, or a YAML path (plus keyword overrides); returns a Run.

    `resume`: continue the interrupted run in the config's `output` from its newest checkpoint."""
    from .train.loop import train as _train

    if isinstance(config, dict):
        config = build_config(None, **{**config, **overrides})
    elif not isinstance(config, RunConfig):
        config = build_config(config, **overrides)
    elif overrides:
        config = config.model_copy(update=overrides)
    return _train(config, force=force, resume=resume)


def load_run(path, dtype: str | None = None) -> Run:  # noqa: F821
    """A finished run folder; `dtype` loads its weights in another precision than the one it trained in."""
    from .run import Run

    return Run(path, dtype=dtype)


__all__ = ["RunConfig", "build_config", "train", "load_run", "DataError", "TunesmithError", "__version__"]
