"""What a run leaves behind besides weights: metrics.jsonl, TensorBoard events, the loss-curve PNG."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (each with a numeric "step"); a line cut short by a crash is left out."""
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a line cut short by a crash
                continue
            if isinstance(row, dict) and is_num(row.get("step")):
                rows.append(row)
    return rows


def loss_points(rows: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """The (step, train_loss) and (step, eval_loss) points of metrics rows."""
    return tuple([(r["step"], r[key]) for r in rows if is_num(r.get(key))] for key in ("train_loss", "eval_loss"))


def is_num(v) -> bool:
    """A JSON number: an int or a float, not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class MetricsLog:
    """`resume_step`: continue a log, dropping rows written after that checkpoint (they will be redone),
    so the resumed log has no gap and no step twice."""

    def __init__(self, run_dir: Path, tensorboard: bool, resume_step: int | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.rows: list[dict] = []
        if resume_step is not None:
            self.rows = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
        tmp = self.path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        tmp.replace(self.path)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = None if resume_step is None else resume_step + 1
                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge)
            except ImportError:
                self.tb = None

    def write(self, row: dict) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self):
        if self.tb is not None:
            self.tb.close()


@contextlib.contextmanager
def saved_figure(out: Path):
    """A matplotlib axes (no display needed) whose figure is written to `out` when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    try:
        yield ax
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)


def plot_losses(rows: list[dict], out: Path) -> None:
    tr, ev = loss_points(rows)
    with saved_figure(out) as ax:
        if tr:
            ax.plot(*zip(*tr), label="train loss", color="tab:blue", alpha=0.8)
        if ev:
            ax.plot(*zip(*ev), "o-", label="validation loss", color="tab:orange")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend()
