"""Errors a user can act on. The CLI turns these into one line and an exit code."""


class TunesmithError(Exception):
    """Bad input or usage: exit code 2, one line, no traceback."""

    exit_code = 2


class DataError(TunesmithError):
    """A problem in a data file, located as `file:line: what is wrong`."""

    def __init__(self, path, line, message):
        self.path, self.line, self.message = str(path), line, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class RunStopped(TunesmithError):
    """Training stopped on purpose (non-finite loss, a signal); the last good checkpoint is kept."""

    exit_code = 1


class Interrupted(RunStopped):
    """Ctrl-C or SIGTERM: a checkpoint was saved and the message says how to resume."""

    exit_code = 130
