"""`tunesmith serve --engine vllm` without a GPU or vLLM: the one-line refusals, the worker against a fake
`vllm` module (put in sys.modules) whose requests grow a word per step, and the pool that loads no weights.

No test here runs real vLLM: that needs a CUDA GPU (docs/serve.md, "GPU: --engine vllm")."""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from conftest import qa_rows, write_jsonl

import tunesmith
from tunesmith.errors import TunesmithError
from tunesmith.serve.engine import Busy, Job
from tunesmith.serve.pool import BASE_ROWS, Group, Pool, Served

# --- a fake vllm ---------------------------------------------------------------------------------------------


class Recorded:
    """EngineArgs / SamplingParams / LoRARequest stand-in: keeps what it was given."""

    def __init__(self, *args, **kw):
        self.args, self.kw = args, kw


class LoRARequest(Recorded):
    @property
    def lora_name(self):
        return self.args[0]


class FakeLLM:
    """Each request answers "<adapter or base> says hi <word>..." one word (one token) per step, with
    cumulative text and token ids as vLLM's default output kind gives them."""

    made: list[FakeLLM] = []  # every engine built, in order (reset per test by the fixture)

    def __init__(self, args):
        self.args = args.kw
        self.added, self.aborted, self.live = [], [], {}
        self.fail: str | None = None  # step() raises RuntimeError(fail)
        self.extra_words = 0  # a longer answer: "... word word ..."
        self.delay = 0.0  # seconds per step

    @classmethod
    def from_engine_args(cls, args):
        FakeLLM.made.append(cls(args))
        return FakeLLM.made[-1]

    def add_request(self, request_id, prompt, params, lora_request=None):
        self.added.append((request_id, prompt, params.kw, lora_request))
        words = [lora_request.lora_name if lora_request else "base", "says", "hi"] + ["word"] * self.extra_words
        self.live[request_id] = (words, params.kw, [0])

    def has_unfinished_requests(self):
        return bool(self.live)

    def abort_request(self, ids):
        self.aborted += list(ids)
        for i in ids:
            self.live.pop(i, None)

    def step(self):
        if self.fail:
            raise RuntimeError(self.fail)
        time.sleep(self.delay)
        out = []
        for rid, (words, params, count) in list(self.live.items()):
            count[0] += 1
            n = count[0]
            reason = "stop" if n >= len(words) else "length" if n >= params["max_tokens"] else None
            text = " ".join(words[:n])
            done = types.SimpleNamespace(index=0, text=text, token_ids=list(range(n)), finish_reason=reason)
            out.append(types.SimpleNamespace(request_id=rid, finished=reason is not None, outputs=[done]))
            if reason:
                del self.live[rid]
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.EngineArgs, vllm.SamplingParams, vllm.LLMEngine = Recorded, Recorded, FakeLLM
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    for name, mod in [("vllm", vllm), ("vllm.lora", types.ModuleType("vllm.lora")), ("vllm.lora.request", request)]:
        monkeypatch.setitem(sys.modules, name, mod)
    FakeLLM.made = []
    return FakeLLM


def adapter_dir(tmp_path: Path, name: str, r: int, **extra) -> str:
    d = tmp_path / name
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"r": r, **extra}))
    return str(d)


def hand_pool(tmp_path, full: bool = False, dora: bool = False) -> Pool:
    """A pool as load_pool(weights=False) builds it: two LoRA runs (ranks 4 and 16) and their base, and
    optionally a full fine-tuning run; no tokenizer is needed by the engine."""
    pool = Pool()
    group = Group(None, None, "tiny", source="/models/tiny", dtype="bf16")
    for name, r in [("alpha", 4), ("beta", 16)]:
        src = adapter_dir(tmp_path, name, r, **({"use_dora": True} if dora and name == "beta" else {}))
        served = Served(name, "generate", "sft", group=group, adapter=f"a0_{name}", source=src, lora_rank=r)
        served.stop_ids = frozenset({2, 7})
        pool.add(served)
    pool.add(Served("tiny", "generate", "sft", group=group, adapter=BASE_ROWS, stop_ids=frozenset({2})))
    if full:
        whole = Group(None, None, "whole", source="/runs/whole", dtype="fp32")
        pool.add(Served("whole", "generate", "sft", group=whole, stop_ids=frozenset({2})))
    return pool


class Sink:
    """A job's events, and an Event set when it ends (done or error)."""

    def __init__(self):
        self.events, self.ended = [], threading.Event()

    def __call__(self, events):
        self.events += events
        if any(e[0] in ("done", "error") for e in events):
            self.ended.set()

    def texts(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for e in self.events:
            if e[0] == "delta":
                out[e[1]] = out.get(e[1], "") + e[2]
        return out

    def finishes(self) -> dict[int, tuple]:
        return {e[1]: e[2:] for e in self.events if e[0] == "finish"}


def run_jobs(engine, pool, specs: list[tuple[str, dict]], timeout=10) -> list[Sink]:
    sinks = []
    for model_id, kw in specs:
        sink = Sink()
        engine.submit(Job(pool.get(model_id), [1, 2, 3], kw.pop("max_tokens", 50), sink, **kw))
        sinks.append(sink)
    for s in sinks:
        assert s.ended.wait(timeout), s.events
    return sinks


@pytest.fixture
def engine_on(fake_vllm):
    from tunesmith.serve.vllm_engine import VllmEngine

    made = []

    def build(pool, **kw):
        engine = VllmEngine(pool, log=lambda msg: None, **kw)
        engine.start()
        made.append(engine)
        return engine

    yield build
    for e in made:
        e.close(5)


# --- the worker against the fake -----------------------------------------------------------------------------


def test_one_engine_per_base_with_each_adapter_a_lora_request(tmp_path, engine_on, fake_vllm):
    pool = hand_pool(tmp_path, full=True)
    engine = engine_on(pool)
    lora_llm, full_llm = fake_vllm.made
    assert lora_llm.args == dict(
        model="/models/tiny",
        dtype="bfloat16",
        gpu_memory_utilization=0.45,  # two engines share vLLM's default 0.9
        enable_lora=True,
        max_lora_rank=16,
        max_loras=2,
    )
    assert full_llm.args == dict(model="/runs/whole", dtype="auto", gpu_memory_utilization=0.45)

    sinks = run_jobs(engine, pool, [("alpha", {}), ("beta", {}), ("tiny", {}), ("whole", {})])
    assert [s.texts() for s in sinks] == [{0: f"{w} says hi"} for w in ("alpha", "beta", "base", "base")]
    for s in sinks:
        assert s.finishes() == {0: ("stop", 3)} and s.events[-1] == ("done",)
    alpha, beta, base = (lora for *_, lora in lora_llm.added)
    assert alpha.args == ("alpha", 1, str(tmp_path / "alpha")) and beta.args == ("beta", 2, str(tmp_path / "beta"))
    assert base is None and full_llm.added[0][3] is None
    _, prompt, params, _ = lora_llm.added[0]
    assert prompt == {"prompt_token_ids": [1, 2, 3]}
    assert params["stop_token_ids"] == [2, 7] and params["max_tokens"] == 50 and params["n"] == 1
    assert engine.pending == 0


def test_deltas_are_the_new_text_and_max_tokens_ends_with_length(tmp_path, engine_on, fake_vllm):
    pool = hand_pool(tmp_path)
    engine = engine_on(pool)
    fake_vllm.made[0].extra_words = 5
    (short, whole) = run_jobs(engine, pool, [("alpha", {"max_tokens": 2}), ("alpha", {"stop": ["x"]})])
    assert [e[2] for e in whole.events if e[0] == "delta"] == ["alpha", " says", " hi"] + [" word"] * 5
    assert whole.finishes() == {0: ("stop", 8)}
    assert short.texts() == {0: "alpha says"} and short.finishes() == {0: ("length", 2)}
    assert fake_vllm.made[0].added[1][2]["stop"] == ["x"]


def test_n_choices_are_one_request_each_by_index_with_their_own_seeds(tmp_path, engine_on, fake_vllm):
    pool = hand_pool(tmp_path)
    engine = engine_on(pool)
    (sink,) = run_jobs(engine, pool, [("beta", {"n": 3, "seed": 11, "temperature": 0.7, "top_p": 0.9})])
    assert sink.texts() == {0: "beta says hi", 1: "beta says hi", 2: "beta says hi"}
    assert sink.finishes() == {i: ("stop", 3) for i in range(3)}
    assert [e for e in sink.events if e[0] == "done"] == [("done",)] and sink.events[-1] == ("done",)
    params = [p for _, _, p, _ in fake_vllm.made[0].added]
    assert [p["seed"] for p in params] == [11, 12, 13]
    assert all(p["temperature"] == 0.7 and p["top_p"] == 0.9 for p in params)


def test_a_cancelled_job_is_aborted_and_ends_silently(tmp_path, engine_on, fake_vllm):
    pool = hand_pool(tmp_path)
    engine = engine_on(pool)
    llm = fake_vllm.made[0]
    llm.extra_words, llm.delay = 10_000, 0.005
    sink = Sink()
    job = Job(pool.get("alpha"), [1], 20_000, sink)
    engine.submit(job)
    deadline = time.time() + 10
    while not sink.events:
        assert time.time() < deadline
        time.sleep(0.01)
    job.cancel()
    while engine.pending:
        assert time.time() < deadline
        time.sleep(0.01)
    assert llm.aborted == [llm.added[0][0]] and not llm.live
    time.sleep(0.05)
    assert not any(e[0] in ("finish", "done", "error") for e in sink.events)


def test_a_failed_step_is_an_error_for_its_jobs(tmp_path, engine_on, fake_vllm):
    pool = hand_pool(tmp_path, full=True)
    engine = engine_on(pool)
    fake_vllm.made[0].fail = "CUDA out of memory"
    bad, good = run_jobs(engine, pool, [("alpha", {}), ("whole", {})])
    assert bad.events == [("error", "generation failed: RuntimeError: CUDA out of memory")]
    assert good.texts() == {0: "base says hi"}  # the other engine's jobs go on
    assert fake_vllm.made[0].aborted and engine.pending == 0


def test_over_max_pending_is_busy(tmp_path, fake_vllm):
    from tunesmith.serve.vllm_engine import VllmEngine

    pool = hand_pool(tmp_path)
    engine = VllmEngine(pool, max_pending=2, log=lambda msg: None)  # not started: jobs stay queued
    for _ in range(2):
        engine.submit(Job(pool.get("alpha"), [1], 5, Sink()))
    with pytest.raises(Busy, match="busy"):
        engine.submit(Job(pool.get("alpha"), [1], 5, Sink()))
    assert engine.pending == 2
    engine.close()
    with pytest.raises(Busy, match="shutting down"):
        engine.submit(Job(pool.get("alpha"), [1], 5, Sink()))


def test_dora_is_refused_before_any_engine_loads(tmp_path, fake_vllm):
    from tunesmith.serve.vllm_engine import VllmEngine, lora_rank

    with pytest.raises(TunesmithError, match="DoRA"):
        VllmEngine(hand_pool(tmp_path, dora=True), log=lambda msg: None)
    assert fake_vllm.made == []
    assert [lora_rank(r) for r in (1, 8, 9, 64, 300)] == [8, 8, 16, 64, 320]


# --- one-line refusals, through the CLI ----------------------------------------------------------------------


def _cli(args, monkeypatch, capfd) -> tuple[int, str]:
    from tunesmith import cli

    monkeypatch.setattr(sys, "argv", ["tunesmith", *args])
    monkeypatch.delenv("TUNESMITH_DEBUG", raising=False)
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capfd.readouterr().err


@pytest.mark.parametrize(
    "cuda, engine, message",
    [
        (False, "vllm", "serve --engine vllm needs a CUDA GPU; tunesmith's own engine (the default) runs on CPU"),
        (True, "vllm", "serve --engine vllm needs vLLM: pip install 'tunesmith[vllm]' (CUDA only)"),
        (True, "tgi", "unknown engine 'tgi': use one of tunesmith, vllm"),
    ],
)
def test_cli_refuses_in_one_line_before_loading(cuda, engine, message, tmp_path, monkeypatch, capfd):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` fails, whether or not it is installed
    # A run folder that does not exist: loading it would be a different error, so these come first.
    code, err = _cli(["serve", str(tmp_path / "no-such-run"), "--engine", engine], monkeypatch, capfd)
    assert code == 2 and err.strip().splitlines() == [f"error: {message}"]


# --- the pool without weights, on real tiny runs -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tiny_llama, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-vllm")
    data = write_jsonl(tmp / "qa.jsonl", qa_rows(16))
    common = dict(model=str(tiny_llama), data=str(data), max_steps=1, batch_size=8, max_seq_len=64, seed=0)
    common.update(tensorboard=False, eval_every=1)
    lora = tunesmith.train(dict(common, output=str(tmp / "alpha"), method="lora", lora={"r": 8, "alpha": 16}))
    full = tunesmith.train(dict(common, output=str(tmp / "whole"), method="full"))
    return lora.path, full.path


def test_pool_without_weights_loads_none_yet_matches_the_loaded_pool(tiny_runs, tiny_llama, monkeypatch):
    import peft

    import tunesmith.models.load as load
    from tunesmith.run import Run
    from tunesmith.serve.pool import load_pool

    quiet = dict(log=lambda msg: None)
    loaded = load_pool(list(tiny_runs), **quiet)

    def refuse(*a, **kw):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(load, "load_pretrained", refuse)
    monkeypatch.setattr(peft.PeftModel, "from_pretrained", refuse)
    monkeypatch.setattr(Run, "model", property(refuse))
    light = load_pool(list(tiny_runs), base=str(tiny_llama), weights=False, **quiet)

    assert [s.id for s in light.models] == [s.id for s in loaded.models] == ["alpha", "whole", str(tiny_llama)]
    for a, b in zip(light.models, loaded.models):
        assert (a.stop_ids, a.ctx_len, a.adapter, a.aliases) == (b.stop_ids, b.ctx_len, b.adapter, b.aliases)
        assert a.group.model is None and a.tokenizer is not None
    alpha, whole, base = light.models
    assert alpha.ctx_len == 512 and alpha.stop_ids == {alpha.tokenizer.eos_token_id}
    assert alpha.group is base.group and alpha.group.source == str(Path(tiny_llama).resolve())
    assert alpha.group.dtype == "fp32" and alpha.lora_rank == 8 and alpha.source == str(tiny_runs[0].resolve())
    assert whole.group.source == str(tiny_runs[1].resolve()) and whole.group is not alpha.group
    assert light.get("base") is base and base.adapter == BASE_ROWS


def test_build_app_with_vllm_serves_chat_through_the_fake(tiny_runs, fake_vllm, monkeypatch):
    import torch

    from tunesmith.serve import build_app

    openai = pytest.importorskip("openai")
    from test_serve import Server

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("TUNESMITH_API_KEY", raising=False)
    srv = Server(build_app(list(tiny_runs), engine="vllm"))
    try:
        lora_llm, full_llm = fake_vllm.made
        assert lora_llm.args["enable_lora"] and lora_llm.args["max_lora_rank"] == 8
        assert full_llm.args["model"] == str(tiny_runs[1].resolve())
        c = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0, timeout=30)
        r = c.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "code 1?"}])
        assert r.choices[0].message.content == "alpha says hi" and r.choices[0].finish_reason == "stop"
        assert r.usage.completion_tokens == 3 and r.usage.prompt_tokens == len(lora_llm.added[0][1]["prompt_token_ids"])
        chunks = c.chat.completions.create(
            model="whole", messages=[{"role": "user", "content": "hi"}], stream=True, temperature=0
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "base says hi"
        assert full_llm.added[0][2]["temperature"] == 0
    finally:
        srv.stop()
