"""Process-level speed settings, each kept because it measured faster on CPU (README, "Speed")."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_malloc() -> bool:
    """Stop glibc from unmapping freed activation buffers every step only to fault them back in.

    Same effect as GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<huge>, but
    applied at run time so it works without re-launching. Off with TUNESMITH_MALLOC=default.
    """
    if not sys.platform.startswith("linux") or os.environ.get("TUNESMITH_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
