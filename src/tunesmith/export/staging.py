"""Build an export in a temporary folder beside the target and rename it into place only when complete.

A reader of the target folder therefore sees either nothing, the old contents, or the finished export: never a
half-written one, whether the export fails, is interrupted (Ctrl-C) or the process is killed (then only a
hidden `.NAME.export-tmp-PID` folder is left, removed by the next export to the same target).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ..errors import TunesmithError

TMP_TAG = ".export-tmp-"
OLD_TAG = ".export-old-"


def check_target(out: Path, force: bool, protect: Path | None = None) -> None:
    """Refuse what must not be replaced; called before any work, so a refusal costs nothing."""
    if out.exists() and not out.is_dir():
        raise TunesmithError(f"{out}: exists and is not a folder")
    if protect is not None:
        # --force replaces the target whole: never let that be the run itself or a folder holding it.
        o, p = out.resolve(), protect.resolve()
        if o == p or o in p.parents:
            raise TunesmithError(f"{out}: would replace the run folder {protect}; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TunesmithError(f"{out}: folder is not empty (pass --force to replace it)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out: Path) -> None:
    """Remove temporary folders a killed export (SIGKILL, power loss) left beside this target."""
    for tag in (TMP_TAG, OLD_TAG):
        for p in out.parent.glob(f".{out.name}{tag}*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)


def _readable(folder: Path) -> None:
    """Give every file the umask's usual mode: some writers (safetensors via transformers) create 0600 files,
    which would keep an export shared with other users or a model server unreadable to them."""
    umask = os.umask(0)
    os.umask(umask)
    for p in folder.iterdir():
        if p.is_file():
            os.chmod(p, 0o666 & ~umask)


@contextlib.contextmanager
def staged_folder(out: Path, force: bool):
    """Yield an empty temporary folder; on success it becomes `out` (replacing an old one), on failure it goes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = out.with_name(f".{out.name}{TMP_TAG}{os.getpid()}")
    old = out.with_name(f".{out.name}{OLD_TAG}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        _readable(tmp)
        # Checked again at the end: another process may have filled the folder while we worked.
        check_target(out, force)
        if out.exists():
            os.replace(out, old)  # two renames; if the second fails, the old folder is put back below
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:  # KeyboardInterrupt included: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
