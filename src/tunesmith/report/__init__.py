"""`tunesmith report`: a run folder as one self-contained HTML page (config, data, loss curves, evaluation
tables, forgetting, sample answers, time and tokens)."""

from __future__ import annotations

from .page import read_run, render_report, write_report

__all__ = ["read_run", "render_report", "write_report"]
