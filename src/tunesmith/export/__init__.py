"""Export a finished run for use without tunesmith.

    export(run, out)                 LoRA run: the PEFT adapter (plain `PeftModel.from_pretrained` on the base)
                                     full run: the standalone model folder
    export(run, out, merge=True)     adapter folded into the weights: plain `from_pretrained` loads it
    export(run, out, gguf="q8_0")    one GGUF file (merged weights + tokenizer) for llama.cpp; Llama models
    merge and gguf together          the merged folder with the GGUF beside it

Every export is built in a temporary folder beside `out` and renamed into place when complete (staging.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import TunesmithError
from .staging import check_target, staged_folder
from .to_gguf import GGUF_TYPES, gguf_file_name

__all__ = ["export", "GGUF_TYPES"]


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def export(run, out, merge: bool = False, gguf: str | None = None, force: bool = False, log=_log) -> Path:
    """Write `run` (a Run or a run folder) to the folder `out`; returns `out`.

    Refuses, before any work: a non-empty `out` without `force`, an unfinished run, an unknown `gguf` type,
    and `gguf` for anything but a Llama-architecture causal LM."""
    from ..run import Run
    from . import hf, readme, to_gguf

    run = run if isinstance(run, Run) else Run(run)  # an unfinished run is refused here
    out = Path(out)
    if gguf is not None and gguf not in GGUF_TYPES:
        raise TunesmithError(f"--gguf must be one of {', '.join(GGUF_TYPES)}, got '{gguf}'")
    check_target(out, force, protect=run.path)
    if gguf is not None:
        to_gguf.check_supported(run)

    write_adapter = run.is_adapter and not merge and gguf is None
    write_merged = merge or (not run.is_adapter and gguf is None)  # a full run's export is its model folder
    start = time.perf_counter()
    with staged_folder(out, force) as tmp:
        base = hf.base_reference(run.config.model)
        if write_adapter:
            hf.write_adapter(run, tmp)
        model = hf.merged_model(run) if (write_merged or gguf) else None
        if write_merged:
            hf.write_merged(model, run, tmp)
        if gguf is not None:
            counts = to_gguf.write_gguf(
                model, run.tokenizer, tmp / gguf_file_name(gguf), gguf, name=run.path.resolve().name
            )
            log(f"gguf {gguf}: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) + " tensors")
        (tmp / "README.md").write_text(
            readme.render(
                run,
                adapter=write_adapter,
                merged=write_merged,
                gguf_name=gguf_file_name(gguf) if gguf else None,
                base=base,
            )
        )
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        total = sum(p.stat().st_size for p in files)
    kind = " + ".join(
        k
        for k, on in (("adapter", write_adapter), ("merged model", write_merged), (f"GGUF {gguf}", gguf is not None))
        if on
    )
    log(f"exported {kind} to {out} ({len(files)} files, {total / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s)")
    return out
