"""One module per task, each a `Task` subclass registered with `@register` (the contract: `base.py`).
The training loop, evaluation, the data doctor, serving and export are shared and ask the task."""

from __future__ import annotations

from .base import Lengths, Prepared, Task, get_task, load_settings, register, task_names

__all__ = ["Lengths", "Prepared", "Task", "get_task", "load_settings", "register", "task_names"]
