"""The data doctor (`tunesmith check`): everything training would object to, and what it would cost, before
any compute is spent. `doctor` runs the checks; `estimate`, `dedup`, `pii` and `fix` are its parts;
`report` prints the result. Loading and validating rows stay in `data/`, which training shares.

    from tunesmith.check import check
    report = check("train.jsonl", val="val.jsonl", model="smollm2-135m")   # the same dict as --json
"""

from .doctor import check, invalid_rows, summary

__all__ = ["check", "invalid_rows", "summary"]
