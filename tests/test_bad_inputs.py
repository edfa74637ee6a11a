"""Every malformed file in tests/bad_inputs/ through `tunesmith train`: exit code 2, exactly one line on stderr
that names the file and the line or field, no traceback, and no --output folder left behind.

Most cases run in-process (cli.main() with a patched argv) for speed; a few go through a real subprocess.
The manifest, tests/bad_inputs/cases.yaml, says for each file which task and flags to use and what the error
line must say.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import qa_rows, write_jsonl

BAD = Path(__file__).resolve().parent / "bad_inputs"
CASES: dict = yaml.safe_load((BAD / "cases.yaml").read_text())
NOT_CASES = {"cases.yaml", "make_binary_cases.py"}
SUBPROCESS_CASES = ["sft_truncated.jsonl", "classify_nan_label.csv", "cfg_wrong_key.yaml"]


@pytest.fixture(scope="module")
def models(tiny_llama, tiny_bert):
    """The tiny models, with imports warmed so no one-time library warning lands in a case.

    In-process, the training loop's tokenizer loads are memoised (a failed load is not cached): the cases test
    what happens to bad input, and reloading SmolLM2's tokenizer for each would take most of their time."""
    import tunesmith.cli  # noqa: F401
    from tunesmith.tasks import get_task, task_names
    from tunesmith.train import loop

    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "load_tokenizer", functools.lru_cache(maxsize=None)(loop.load_tokenizer))
    loop.load_tokenizer(str(tiny_llama), False, chat=True)
    loop.load_tokenizer(str(tiny_bert), False, chat=False)
    for name in task_names():
        get_task(name)
    yield {"sft": tiny_llama, "clm": tiny_llama, "classify": tiny_bert, "tokens": tiny_bert, "mlm": tiny_bert}
    mp.undo()


@pytest.fixture(scope="module")
def good_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("good") / "train.jsonl", qa_rows(8))


def command(path: Path, case: dict, models: dict, good: Path, out: Path) -> tuple[list[str], str, Path]:
    """(argv after `tunesmith`, the file as the command names it, the directory to run in)."""
    task, role = case.get("task", "sft"), case.get("as", "data")
    args = ["train", "--output", str(out)]
    cwd, named = Path.cwd(), str(path)
    if role == "config":  # relative paths inside the YAML are relative to the corpus folder
        cwd, named = path.parent, path.name
        args += ["--config", named, "--data", str(good)]
    elif role == "val":
        args += ["--data", str(good), "--val-data", named, "--task", task, "--max-steps", "1"]
    else:
        args += ["--data", named, "--task", task, "--max-steps", "1"]
    if case.get("model", True):
        args += ["--model", str(models[task])]
    return args + [str(a) for a in case.get("args", [])], named, cwd


def run_in_process(args, cwd, monkeypatch, capfd) -> tuple[int, str]:
    from tunesmith import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["tunesmith", *args])
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    capfd.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code
    return code, capfd.readouterr().err


def run_subprocess(args, cwd) -> tuple[int, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("TUNESMITH_DEBUG", None)
    r = subprocess.run(
        [sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    return r.returncode, r.stderr


def assert_one_line_error(code, err: str, expect: str, out: Path):
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), lines[0]
    assert expect in lines[0], f"{expect!r} not in {lines[0]!r}"
    assert not out.exists(), f"{out} was left behind"


def test_manifest_covers_the_folder():
    files = {p.name for p in BAD.iterdir() if p.is_file()} - NOT_CASES
    assert files == set(CASES), f"not in cases.yaml: {files - set(CASES)}; no such file: {set(CASES) - files}"
    assert len(CASES) >= 30
    assert {c.get("task", "sft") for c in CASES.values()} == {"sft", "clm", "classify", "tokens", "mlm"}
    suffixes = {Path(n).suffix for n in CASES}
    assert {".jsonl", ".json", ".csv", ".parquet", ".txt", ".conll", ".yaml"} <= suffixes


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, models, good_data, tmp_path, monkeypatch, capfd):
    case = CASES[name]
    out = tmp_path / "run"
    args, named, cwd = command(BAD / name, case, models, good_data, out)
    code, err = run_in_process(args, cwd, monkeypatch, capfd)
    assert_one_line_error(code, err, case["expect"].replace("{file}", named), out)


def _huge_jsonl(path: Path) -> str:
    from tunesmith.data.load import MAX_ROW_CHARS

    line = json.dumps({"prompt": "q", "completion": "x" * MAX_ROW_CHARS})
    path.write_text(json.dumps(qa_rows(1)[0]) + "\n" + line + "\n")
    return f"{path}:2: row is {len(line):,} characters long, over the limit of {MAX_ROW_CHARS:,} for one row"


def _huge_csv(path: Path) -> str:
    from tunesmith.data.load import MAX_ROW_CHARS

    path.write_text(f"prompt,completion\nq,a\nq,{'x' * (MAX_ROW_CHARS + 1)}\n")
    return f"{path}:3: invalid CSV (a field longer than {MAX_ROW_CHARS:,} characters, the limit for one row)"


def _huge_json(path: Path) -> str:
    from tunesmith.data.load import MAX_ROW_CHARS

    row = json.dumps({"prompt": "q", "completion": "x" * MAX_ROW_CHARS})
    path.write_text('[\n{"prompt": "q", "completion": "a"},\n' + row + "\n]\n")
    return f"{path}:3: row is {len(row):,} characters long"


@pytest.mark.parametrize("suffix,make", [(".jsonl", _huge_jsonl), (".csv", _huge_csv), (".json", _huge_json)])
def test_huge_single_row_is_refused_by_size(suffix, make, models, tmp_path, monkeypatch, capfd):
    """Written at test time (10 MB) rather than committed; the limit is data.load.MAX_ROW_CHARS."""
    path = tmp_path / f"huge{suffix}"
    expect = make(path)
    out = tmp_path / "run"
    args, _, cwd = command(path, {}, models, path, out)
    code, err = run_in_process(args, cwd, monkeypatch, capfd)
    assert_one_line_error(code, err, expect, out)


@pytest.mark.e2e
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(name, models, good_data, tmp_path):
    case = CASES[name]
    out = tmp_path / "run"
    args, named, cwd = command(BAD / name, case, models, good_data, out)
    code, err = run_subprocess(args, cwd)
    assert_one_line_error(code, err, case["expect"].replace("{file}", named), out)
