"""Run configuration: YAML + flag overrides, one-line validation errors, save/load, the starter file."""

from __future__ import annotations

import pytest
import yaml

from tunesmith.config import STARTER, RunConfig, build_config, load_saved_config, save_config
from tunesmith.errors import TunesmithError


def _yaml(tmp_path, text, name="run.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _err(*args, **kw) -> str:
    with pytest.raises(TunesmithError) as info:
        build_config(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_yaml_then_flags_win(tmp_path):
    p = _yaml(tmp_path, "data: train.jsonl\nlr: 1.0e-4\nbatch_size: 4\nlora:\n  alpha: 16\n  r: 4\nepochs: 2\n")
    cfg = build_config(p, lr=3e-4, batch_size=None, **{"lora.r": 8})
    assert cfg.data == "train.jsonl"
    assert cfg.lr == 3e-4  # flag wins
    assert cfg.batch_size == 4  # None means "not given": YAML value stays
    assert cfg.lora.r == 8 and cfg.lora.alpha == 16  # nested override merges into the YAML mapping
    assert cfg.lora.dropout == 0.0 and cfg.lora.target_modules == "all-linear"
    assert cfg.epochs == 2 and cfg.max_steps is None
    # build_config remembers where each given value came from, for the plan's settings line
    assert cfg._origin["lr"] == "your flag" and cfg._origin["lora.r"] == "your flag"
    assert cfg._origin["lora.alpha"] == "config file" and cfg._origin["epochs"] == "config file"
    assert "batch_size" in cfg._origin and cfg._origin["batch_size"] == "config file"


def test_nested_override_without_yaml_section(tmp_path):
    cfg = build_config(None, data="d.jsonl", **{"lora.r": 2, "lora.dropout": 0.1})
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (2, None, 0.1)  # alpha: the task's, when training


def test_max_steps_flag_removes_yaml_epochs(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nepochs: 3\n")
    cfg = build_config(p, max_steps=50)
    assert cfg.max_steps == 50 and cfg.epochs is None


def test_epochs_flag_removes_yaml_max_steps(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nmax_steps: 100\n")
    cfg = build_config(p, epochs=1.5)
    assert cfg.epochs == 1.5 and cfg.max_steps is None


def test_epochs_and_max_steps_in_yaml_is_an_error(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nepochs: 3\nmax_steps: 10\n")
    assert _err(p) == f"{p}: invalid config: config: Value error, give epochs or max_steps, not both"


def test_epochs_and_max_steps_flags_together_is_an_error():
    with pytest.raises(TunesmithError, match="give epochs or max_steps, not both"):
        build_config(None, data="d.jsonl", epochs=1, max_steps=3)


def test_nested_override_into_empty_yaml_section(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nlora:\n")
    assert build_config(p, **{"lora.r": 4}).lora.r == 4


def test_defaults():
    cfg = build_config(None, data="d.jsonl")
    assert cfg == RunConfig(data="d.jsonl")
    assert (cfg.model, cfg.task, cfg.method, cfg.max_seq_len, cfg.seed) == ("smollm2-135m", "sft", "lora", 512, 42)
    assert (cfg.epochs, cfg.max_steps, cfg.lr) == (None, None, None)


def test_validation_errors_name_the_field(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nlora:\n  r: 0\n")
    assert _err(p) == f"{p}: invalid config: lora.r: Input should be greater than or equal to 1"
    assert _err(None) == "invalid config: data: Field required"
    assert (
        _err(None, data="d", task="xx")
        == "invalid config: task: Value error, unknown task 'xx' (known: classify, clm, mlm, sft, tokens)"
    )
    assert (
        _err(None, data="d", max_seq_len=4) == "invalid config: max_seq_len: Input should be greater than or equal to 8"
    )
    msg = _err(None, data="d", val_fraction=1.5, bogus=1)
    assert msg.startswith("invalid config: val_fraction: Input should be less than 1; ")
    assert msg.endswith("bogus: Extra inputs are not permitted")
    assert _err(None, data="d", batch_size="many").startswith("invalid config: batch_size: ")


def test_invalid_yaml_names_file_and_line(tmp_path):
    p = _yaml(tmp_path, "data: d.jsonl\nmodel: [unclosed\nlr: 1\n")
    msg = _err(p)
    assert msg.startswith(f"{p}:3: invalid YAML (")
    p2 = _yaml(tmp_path, "data: d.jsonl\n  bad: 1\n", name="two.yaml")
    assert _err(p2) == f"{p2}:2: invalid YAML (mapping values are not allowed here)"


def test_yaml_not_a_mapping_and_missing_file(tmp_path):
    p = _yaml(tmp_path, "- a\n- b\n")
    assert _err(p) == f"{p}: expected a mapping of settings at the top level"
    missing = tmp_path / "none.yaml"
    assert _err(missing) == f"{missing}: config file not found"


def test_empty_yaml_uses_defaults_and_flags(tmp_path):
    p = _yaml(tmp_path, "# only a comment\n")
    assert build_config(p, data="x.csv") == RunConfig(data="x.csv")


def test_save_and_load_round_trip(tmp_path):
    cfg = build_config(
        None,
        data="d.jsonl",
        lr=2e-4,
        max_steps=7,
        columns={"q": "prompt"},
        **{"lora.target_modules": ["q_proj", "v_proj"], "lora.r": 4},
    )
    save_config(cfg, tmp_path / "config.yaml")
    loaded = load_saved_config(tmp_path)
    assert loaded == cfg
    assert loaded.lora.target_modules == ["q_proj", "v_proj"]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["data"] == "d.jsonl"
    with pytest.raises(TunesmithError, match="not a tunesmith run folder"):
        load_saved_config(tmp_path / "elsewhere")


def test_starter_is_valid_yaml_and_accepted(tmp_path):
    text = STARTER.format(name="x.yaml")
    assert "--config x.yaml" in text
    assert "# columns: {question: prompt, answer: completion}" in text
    raw = yaml.safe_load(text)
    assert isinstance(raw, dict) and raw["model"] == "smollm2-135m"
    p = _yaml(tmp_path, text, name="x.yaml")
    cfg = build_config(p, data="d.jsonl")
    assert cfg.data == "d.jsonl"
    assert cfg.output == "runs/my-run"
    # every other starter value is the default
    assert cfg == RunConfig(data="d.jsonl", output="runs/my-run")


def test_starter_is_generated_from_the_fields():
    from tunesmith.config import LoraConfig

    text = STARTER.format(name="x.yaml")
    raw = yaml.safe_load(text)
    assert set(raw) == set(RunConfig.model_fields) - {"columns"}  # columns: a commented-out example
    assert set(raw["lora"]) == set(LoraConfig.model_fields)
    assert "# classify: the column holding the label(s)" in text  # the description, as a comment
    assert "overlong: truncate" in text and "[truncate|drop]" in text  # a Literal's choices


def _train_flags(*args):
    from tunesmith import cli
    from tunesmith.cli_options import parse, train_config

    kw = parse(cli.app, "train", [str(a) for a in args])
    return train_config(kw["overrides"], kw["resume"], kw["config"])


OLD_TRAIN_FLAGS = """--model --data --val-data --task --method --output --epochs --max-steps --lr --batch-size --grad-accum
--max-seq-len --overlong --train-on --scheduler --seed --eval-every --patience --select-by --val-generate-rows
--neftune-alpha --lora-r --lora-alpha --lora-dropout --target-modules --lora-variant --column --system-prompt
--label-column --text-pair-column --multi-label --class-weight --threshold --label-subwords --whole-word-mask
--mlm-probability --padding-free --padded --compile --gradient-checkpointing --save-steps --keep-checkpoints
--on-nonfinite --allow-pickle --resume --config --force""".split()


def test_every_setting_has_a_description_and_every_flag_stays():
    from typer.main import get_command

    from tunesmith import cli
    from tunesmith.cli_options import fields

    assert all(f.description for f in fields().values())
    params = get_command(cli.app).commands["train"].params
    flags = {o for p in params for o in [*p.opts, *getattr(p, "secondary_opts", [])]}
    assert set(OLD_TRAIN_FLAGS) <= flags
    assert {"--warmup-ratio", "--no-tensorboard", "--trust-remote-code"} <= flags  # generated, new


def test_train_flags_become_the_config(tmp_path):
    cfg, resume = _train_flags(
        "--data",
        "x.jsonl",
        "--lora-r",
        8,
        "--target-modules",
        "q_proj,v_proj",
        "--patience",
        2,
        "--column",
        "a=prompt",
        "--column",
        "b=completion",
        "--multi-label",
        "--padded",
        "--no-tensorboard",
        "--epochs",
        1.5,
    )
    assert (cfg.data, cfg.lora.r, cfg.lora.target_modules) == ("x.jsonl", 8, ["q_proj", "v_proj"])
    assert cfg.early_stopping_patience == 2 and cfg.columns == {"a": "prompt", "b": "completion"}
    assert cfg.multi_label and not cfg.padding_free and not cfg.tensorboard and cfg.epochs == 1.5
    assert resume is False and cfg.lora.alpha is None  # unset: the task's, resolved when training
    p = _yaml(tmp_path, "data: d.jsonl\nmulti_label: true\nlr: 0.1\nmax_steps: 5\n")
    cfg, _ = _train_flags("--config", p, "--no-multi-label", "--epochs", 2)  # flags not given keep the YAML's
    assert (cfg.multi_label, cfg.lr, cfg.epochs, cfg.max_steps) == (False, 0.1, 2, None)
    assert _train_flags("--data", "d", "--resume", "auto")[0].resume == "auto"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: d.jsonl\nmax_steps: 10\n")
    cfg, resume = _train_flags("--resume", run, "--max-steps", 12)
    assert resume is True and cfg.output == str(run) and cfg.max_steps == 12
    with pytest.raises(TunesmithError, match="--column expects yours=expected"):
        _train_flags("--data", "d", "--column", "nope")


def test_check_takes_its_subset_of_flags():
    from tunesmith import cli
    from tunesmith.cli_options import parse

    kw = parse(
        cli.app,
        "check",
        [
            "d.jsonl",
            "--val",
            "v.jsonl",
            "--column",
            "q=prompt",
            "--multi-label",
            "--max-seq-len",
            "64",
            "--no-estimate",
        ],
    )
    assert kw["overrides"] == {
        "val_data": "v.jsonl",
        "columns": {"q": "prompt"},
        "multi_label": True,
        "max_seq_len": 64,
    }
    assert kw["data"] == "d.jsonl" and kw["no_estimate"] is True
