"""`tunesmith serve`: an OpenAI-compatible HTTP server for finished runs.

    app = tunesmith.serve.build_app(["runs/a", "runs/b"], base=None, api_key=None)   # any ASGI server
    tunesmith.serve.serve(["runs/a", "runs/b"], host="127.0.0.1", port=8000)       # uvicorn, blocking

Files: pool.py (which weights answer which model id; LoRA runs share their base), engine.py (the worker
thread that batches and interleaves generation), text.py (incremental decoding, stop strings), schemas.py
(request bodies and bounds), app.py (routes, auth, body limit).
"""

from __future__ import annotations

import sys

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def build_app(runs, base=None, api_key=None, **options):
    from .app import build_app as _build

    return _build(runs, base=base, api_key=api_key, **options)


def serve(
    runs,
    base: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    log_level: str = "info",
    threads: int | None = None,
    engine: str = "tunesmith",
):
    """Load the runs and serve them until interrupted. `threads`: torch's intra-op threads (default: torch's
    choice); on a CPU shared with other busy processes, 1 can be several times faster than 2 (see docs/serve.md).
    `engine`: "tunesmith" (default) or "vllm" (CUDA only; docs/serve.md, "GPU: --engine vllm")."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as e:  # fastapi/uvicorn are dependencies, but an old environment may lack them
        from ..errors import TunesmithError

        raise TunesmithError(
            f"serving needs fastapi and uvicorn ({e}); pip install 'fastapi>=0.110' 'uvicorn>=0.29'"
        ) from None

    if threads:
        import torch

        torch.set_num_threads(threads)

    app = build_app(runs, base=base, api_key=api_key, engine=engine)
    if host not in LOOPBACK and not app.state.auth:
        print(
            f"warning: serving on {host} without an API key: anyone who can reach port {port} can use these "
            "models; set --api-key or TUNESMITH_API_KEY",
            file=sys.stderr,
        )
    pool = app.state.pool
    for s in pool.models:
        extra = f" (LoRA on {s.base_id})" if s.adapter and s.adapter != "__base__" else ""
        print(f"serving {s.id!r}: {s.kind}{extra}", file=sys.stderr)
    print(f"listening on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


__all__ = ["build_app", "serve"]
