"""Which weights answer which model id.

LoRA runs that share a base model share one copy of its weights: the first run's adapter is loaded with
PeftModel.from_pretrained and every further one with load_adapter into the same PeftModel, so N adapters
cost one base plus N small adapters instead of N bases. The base itself is served from those same weights
(adapter switched off per row). Full fine-tuning runs, runs on another base and encoder runs load alone.

With `weights=False` (`serve --engine vllm`, where vLLM loads the weights itself) the same entries are built
from each model's config and tokenizer only: a Group then holds no model, just the folder of its weights.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunesmithError
from ..eval.decode import cache_keyword
from ..models.merged import Folded
from ..run import Run

BASE_ROWS = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch


class AdapterRouting:
    """Per-row adapters for a PeftModel, set before each forward: `with routing(["a", "__base__"]): model(...)`.

    PEFT's own `adapter_names=` forward argument does the same, but walks every module twice per call to
    register and remove its hooks (about a tenth of a decode step for SmolLM2); these hooks are registered
    once, at load, and read the names from here. Only the worker thread runs forwards, so one slot is safe.
    """

    def __init__(self, model):
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        self.names = None
        self.layers = [m for m in model.modules() if isinstance(m, (LoraLayer, AuxiliaryTrainingWrapper))]
        for m in self.layers:
            m.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if self.names is not None:
            kwargs["adapter_names"] = self.names
            return args, kwargs
        return None

    @contextlib.contextmanager
    def __call__(self, names: list[str]):
        self.names = list(names)
        try:
            yield
        finally:
            self.names = None


@dataclass(eq=False)
class Group:
    """One set of weights on the generation worker. `routing`: rows pick their adapter by name (PEFT only)."""

    model: object
    routing: AdapterRouting | None
    name: str
    cache_kw: str = "cache"  # the forward() keyword for the KV cache ("past_key_values" before transformers 5.x)
    folded: Folded | None = None  # LoRA groups: the adapter folded into the weights while all rows use it
    source: str | None = None  # the weights' folder (or hub id), for an engine that loads them itself (vLLM)
    dtype: str = "auto"  # the dtype the run trained in ("fp32", "bf16", ...), for that engine


@dataclass(eq=False)
class Served:
    id: str
    kind: str  # "generate" | "classify" | "tag"
    task: str
    tokenizer: object = None
    system_prompt: str | None = None
    group: Group | None = None
    adapter: str | None = None  # PEFT adapter name, BASE_ROWS, or None for a plain model
    run: Run | None = None  # encoders: Run.predict does the work
    base_id: str | None = None  # the base an adapter sits on (shown in /v1/models)
    stop_ids: frozenset = frozenset()
    ctx_len: int = 2048
    created: int = 0
    aliases: list[str] = field(default_factory=list)
    source: str | None = None  # LoRA runs: the adapter folder (an engine that loads weights itself needs it)
    lora_rank: int = 0  # LoRA runs: the adapter's rank `r`

    @property
    def chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def with_system(self, messages: list[dict]) -> list[dict]:
        from ..data.formats import with_system

        return with_system(messages, self.system_prompt)


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def _base_key(name: str) -> str:
    """Two configs name the same base if they resolve to the same folder (an alias and its cache folder too)."""
    from ..models.registry import resolve_model

    src = resolve_model(name)
    return str(Path(src).resolve()) if isinstance(src, Path) else src


def _stop_ids(model, tokenizer) -> frozenset:
    from ..eval.generate import _stop_ids as ids

    return frozenset(ids(model, tokenizer))


class Shape:
    """What serving reads from a model besides its weights, from its folder alone: `config` and
    `generation_config` (as from_pretrained would set them), for _stop_ids and _ctx_len."""

    def __init__(self, src, trust_remote_code: bool = False):
        from transformers import AutoConfig, GenerationConfig

        self.config = AutoConfig.from_pretrained(src, trust_remote_code=trust_remote_code)
        try:
            self.generation_config = GenerationConfig.from_pretrained(src)
        except OSError:  # no generation_config.json: from_pretrained derives one from the model config
            self.generation_config = GenerationConfig.from_model_config(self.config)


def _lora_rank(run: Run) -> int:
    import json

    return int(json.loads((run.path / "adapter_config.json").read_text())["r"])


def _ctx_len(model) -> int:
    cfg = model.config
    return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 2048)


def _mtime(path: Path) -> int:
    f = path / "summary.json"
    return int(f.stat().st_mtime) if f.exists() else 0


class Pool:
    """Every served model by id (and alias); `models` lists each once, in the order given."""

    def __init__(self):
        self.by_id: dict[str, Served] = {}
        self.models: list[Served] = []
        self.groups: list[Group] = []

    def add(self, served: Served, aliases=()):
        if served.id in self.by_id:
            raise TunesmithError(f"two models would be served as '{served.id}'; rename one of the run folders")
        self.by_id[served.id] = served
        self.models.append(served)
        for a in aliases:  # a clash on an alias only loses the alias, never a primary id
            if a and a not in self.by_id:
                self.by_id[a] = served
                served.aliases.append(a)

    def get(self, model_id: str) -> Served | None:
        return self.by_id.get(model_id)


def load_pool(runs, base: str | None = None, log=_log, weights: bool = True) -> Pool:
    """Load the runs (folders or Run objects) and an optional extra base model (alias, folder or hub id).

    weights=False: generative models are not loaded (their Groups hold `source`, the folder, instead of a
    model); tokenizers, stop ids and context lengths come from the folders. Encoder runs load either way."""
    from ..models.load import load_causal_lm, load_tokenizer

    loaded = [r if isinstance(r, Run) else Run(r) for r in runs]  # Run() refuses unfinished folders
    if not loaded and not base:
        raise TunesmithError("nothing to serve: give one or more run folders (and/or --base MODEL)")
    names = [r.path.name for r in loaded]
    pool = Pool()
    lora_groups: dict[str, list[Run]] = {}
    for r in loaded:
        if r.task.SERVE_KIND is None:
            from ..tasks import get_task, task_names

            served = ", ".join(n for n in task_names() if get_task(n).SERVE_KIND)
            raise TunesmithError(f"{r.path}: '{r.config.task}' runs are not served (serve {served} runs)")
        if r.task.SERVE_KIND == "generate" and r.is_adapter:
            lora_groups.setdefault(_base_key(r.config.model), []).append(r)

    def run_id(r: Run) -> tuple[str, list[str]]:
        # The folder name when it is unique among the runs, else the path as given.
        primary = r.path.name if names.count(r.path.name) == 1 else str(r.path)
        return primary, [str(r.path), str(r.path.resolve())]

    bases: dict[str, Served] = {}  # base key -> the served base
    for key, group_runs in lora_groups.items():
        first = group_runs[0]
        cfg = first.config
        # PEFT adapter names become module keys: no dots or slashes
        adapters = {f"a{len(pool.groups)}_{i}": r for i, r in enumerate(group_runs)}
        if weights:
            from peft import PeftModel

            log(f"loading base {cfg.model} for {len(group_runs)} LoRA run(s)")
            base_model = first.task.load_model(cfg, first.tokenizer, first.meta)
            for i, (name, r) in enumerate(adapters.items()):
                if i == 0:
                    model = PeftModel.from_pretrained(base_model, r.path, adapter_name=name)
                else:
                    model.load_adapter(r.path, adapter_name=name)
            model.eval()
            group = Group(model, AdapterRouting(model), cfg.model, cache_keyword(model), Folded(model))
        else:
            model = Shape(key, cfg.trust_remote_code)
            group = Group(None, None, cfg.model, source=key, dtype=cfg.dtype)
        pool.groups.append(group)
        base_tok = load_tokenizer(cfg.model, cfg.trust_remote_code, chat=first.task.CHAT)
        stops_base, ctx = _stop_ids(model, base_tok), _ctx_len(model)
        for name, r in adapters.items():
            rid, aliases = run_id(r)
            pool.add(
                Served(
                    rid,
                    "generate",
                    r.config.task,
                    r.tokenizer,
                    r.config.system_prompt,
                    group,
                    name,
                    base_id=cfg.model,
                    stop_ids=_stop_ids(model, r.tokenizer),
                    ctx_len=ctx,
                    created=_mtime(r.path),
                    source=str(r.path.resolve()),
                    lora_rank=_lora_rank(r),
                ),
                aliases,
            )
        bases[key] = Served(
            cfg.model, "generate", first.config.task, base_tok, None, group, BASE_ROWS, stop_ids=stops_base, ctx_len=ctx
        )

    for r in loaded:  # full fine-tuning runs and encoders: their own weights
        if r.task.SERVE_KIND == "generate" and r.is_adapter:
            continue
        rid, aliases = run_id(r)
        generate = r.task.SERVE_KIND == "generate"
        if weights or not generate:
            log(f"loading {r.path} ({r.config.task}, {r.config.method})")
            model = r.model
        else:  # a full run folder holds config.json and safetensors weights: vLLM loads it as it is
            model = Shape(r.path, r.config.trust_remote_code)
        if generate:
            if weights:
                group = Group(model, routing=None, name=rid, cache_kw=cache_keyword(model))
            else:
                group = Group(None, None, rid, source=str(r.path.resolve()), dtype=r.config.dtype)
            pool.groups.append(group)
            pool.add(
                Served(
                    rid,
                    "generate",
                    r.config.task,
                    r.tokenizer,
                    r.config.system_prompt,
                    group,
                    None,
                    base_id=r.config.model,
                    stop_ids=_stop_ids(model, r.tokenizer),
                    ctx_len=_ctx_len(model),
                    created=_mtime(r.path),
                ),
                aliases,
            )
        else:
            pool.add(
                Served(
                    rid,
                    r.task.SERVE_KIND,
                    r.config.task,
                    r.tokenizer,
                    run=r,
                    base_id=r.config.model,
                    created=_mtime(r.path),
                ),
                aliases,
            )

    chosen = None
    if base:
        key = _base_key(base)
        if key not in bases:
            if weights:
                log(f"loading base {base}")
                model = load_causal_lm(base).eval()
                group = Group(model, routing=None, name=base, cache_kw=cache_keyword(model))
            else:
                model, group = Shape(key), Group(None, None, base, source=key)
            tok = load_tokenizer(base)
            pool.groups.append(group)
            bases[key] = Served(
                base, "generate", "sft", tok, None, group, None, stop_ids=_stop_ids(model, tok), ctx_len=_ctx_len(model)
            )
        chosen = bases[key]
    elif len(bases) == 1:
        chosen = next(iter(bases.values()))
    for key, served in bases.items():
        aliases = [key] + (["base"] if served is chosen else [])
        if served.id in pool.by_id:  # a run folder already took the name: the base keeps its aliases only
            served.id = key if key not in pool.by_id else f"base:{served.id}"
        pool.add(served, aliases)
    return pool
