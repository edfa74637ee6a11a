"""`tunesmith serve` over loopback, driven by the real `openai` client: two LoRA adapters sharing one tiny
random Llama, its base, and a tiny BERT classifier."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import sentiment_rows, write_jsonl

import tunesmith

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

KEY = "test-key-123"
ANSWERS = {"alpha": "apple apple apple.", "beta": "river stone river."}


def _lora_run(tiny_llama, tmp, name, system_prompt=None):
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": ANSWERS[name]}]}
        for i in range(16)
    ]
    data = write_jsonl(tmp / f"{name}.jsonl", rows)
    return tunesmith.train(
        dict(
            model=str(tiny_llama),
            data=str(data),
            output=str(tmp / name),
            method="lora",
            max_steps=12,
            lr=5e-2,
            batch_size=8,
            max_seq_len=64,
            seed=0,
            tensorboard=False,
            eval_every=12,
            system_prompt=system_prompt,
            lora={"r": 8, "alpha": 16},
        )
    )


@pytest.fixture(scope="module")
def runs(tiny_llama, tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    alpha = _lora_run(tiny_llama, tmp, "alpha")
    beta = _lora_run(tiny_llama, tmp, "beta", system_prompt="You are beta.")
    data = write_jsonl(tmp / "cls.jsonl", sentiment_rows(160))
    cls = tunesmith.train(
        dict(
            model=str(tiny_bert),
            data=str(data),
            output=str(tmp / "cls"),
            task="classify",
            method="full",
            max_steps=30,
            lr=3e-3,
            batch_size=16,
            seed=0,
            tensorboard=False,
            eval_every=30,
        )
    )
    return {"alpha": alpha, "beta": beta, "cls": cls, "base": str(tiny_llama)}


class Server:
    """uvicorn on 127.0.0.1, a free port, in a background thread."""

    def __init__(self, app):
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def client(self, key=KEY, **kw):
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=60, **kw)

    def raw(self, path, body=None, key=KEY, data=None):
        """(status, JSON) for a plain HTTP request."""
        req = urllib.request.Request(
            self.url.removesuffix("/v1") + path,
            method="GET" if body is None and data is None else "POST",
            data=data or (json.dumps(body).encode() if body else None),
        )
        req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self):
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def server(runs, monkeypatch_module):
    from tunesmith.serve import build_app

    monkeypatch_module.delenv("TUNESMITH_API_KEY", raising=False)
    app = build_app([runs["alpha"].path, runs["beta"].path, runs["cls"].path], api_key=KEY)
    srv = Server(app)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _chat(client, model, content="question 3?", **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 12)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


def test_models_are_listed_with_their_kinds(server, runs):
    models = {m.id: m for m in server.client().models.list().data}
    assert {"alpha", "beta", "cls", runs["base"]} <= set(models)
    assert models["alpha"].model_extra["kind"] == "generate" and models["alpha"].model_extra["adapter"] is True
    assert models["alpha"].model_extra["base"] == runs["base"]
    assert models["cls"].model_extra["kind"] == "classify"
    pool = server.app.state.pool  # both adapters and the base run on one PeftModel: one copy of the weights
    assert pool.get("alpha").group is pool.get("beta").group is pool.get("base").group and len(pool.groups) == 1
    assert (
        models[runs["base"]].model_extra["adapter"] is False and "base" in models[runs["base"]].model_extra["aliases"]
    )


def test_two_adapters_and_the_base_give_different_answers(server, runs):
    c = server.client()
    alpha, beta = _chat(c, "alpha"), _chat(c, "beta")
    base, base_alias = _chat(c, runs["base"]), _chat(c, "base")
    a, b, z = (r.choices[0].message.content for r in (alpha, beta, base))
    assert "apple" in a and "river" in b, (a, b)
    assert len({a, b, z}) == 3 and base_alias.choices[0].message.content == z
    assert alpha.model == "alpha" and alpha.object == "chat.completion" and alpha.id.startswith("chatcmpl-")
    # The full path names the run too.
    assert _chat(c, str(runs["alpha"].path)).choices[0].message.content == a


def test_usage_counts_match_the_tokenizer_and_the_run_system_prompt(server, runs):
    from tunesmith.data.tokenize import render

    c = server.client()
    for name, messages in (
        ("alpha", [{"role": "user", "content": "question 3?"}]),
        ("beta", [{"role": "system", "content": "You are beta."}, {"role": "user", "content": "question 3?"}]),
    ):
        tok = runs[name].tokenizer
        r = _chat(c, name, max_tokens=3)
        expected = len(tok(render(tok, messages, add_generation_prompt=True), add_special_tokens=False)["input_ids"])
        assert r.usage.prompt_tokens == expected
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
        assert r.usage.total_tokens == expected + 3


def test_streaming_deltas_add_up_to_the_greedy_answer(server, runs):
    c = server.client()
    for model in ("alpha", runs["base"]):
        full = _chat(c, model, max_tokens=16)
        chunks = list(_chat(c, model, max_tokens=16, stream=True, stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == full.choices[0].message.content
        finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        assert finish == [full.choices[0].finish_reason]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_completions_n_and_seed(server, runs):
    c = server.client()
    r = c.completions.create(model=runs["base"], prompt="Once upon a time", max_tokens=6, temperature=0)
    assert r.object == "text_completion" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 6 and r.usage.prompt_tokens == len(
        runs["alpha"].tokenizer("Once upon a time")["input_ids"]
    )
    kw = dict(model="alpha", prompt="Once upon a time", max_tokens=8, temperature=1.0, n=2)
    one = c.completions.create(seed=7, **kw)
    again = c.completions.create(seed=7, **kw)
    other = c.completions.create(seed=8, **kw)
    texts = [ch.text for ch in one.choices]
    assert [ch.index for ch in one.choices] == [0, 1] and len(set(texts)) == 2  # n choices differ
    assert [ch.text for ch in again.choices] == texts  # same seed, same answers
    assert [ch.text for ch in other.choices] != texts
    assert one.usage.completion_tokens == 16
    chat = _chat(c, "beta", n=3, temperature=0.9, seed=1)
    assert len(chat.choices) == 3 and chat.usage.completion_tokens <= 36


def test_stop_strings_cut_the_answer(server):
    c = server.client()
    full = _chat(c, "alpha", max_tokens=12).choices[0].message.content
    r = _chat(c, "alpha", max_tokens=12, stop=["xyz", "apple a"])
    assert r.choices[0].message.content == full[: full.index("apple a")] and r.choices[0].finish_reason == "stop"
    stop = full[full.index("apple", 1) - 1 :][:4]  # " app", the second word's start: spans tokens
    streamed = "".join(
        ch.choices[0].delta.content or ""
        for ch in _chat(c, "alpha", max_tokens=12, stop=stop, stream=True)
        if ch.choices
    )
    assert streamed == full[: full.index(stop)] and streamed


def test_auth_is_required(server):
    assert server.raw("/v1/models", key=None)[0] == 401
    with pytest.raises(openai.AuthenticationError) as e:
        server.client(key="wrong").models.list()
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    assert server.raw("/health", key=None)[0] == 200


@pytest.mark.parametrize(
    "kw,param",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 100}, "n"),
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 100_000}, "max_tokens"),
    ],
)
def test_bad_parameters_are_400_with_an_openai_error(server, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        _chat(server.client(), "alpha", **kw)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param and e.value.body["type"] == "invalid_request_error"


def test_unknown_model_is_404_and_big_bodies_413(server):
    with pytest.raises(openai.NotFoundError) as e:
        _chat(server.client(), "no-such-model")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.APIStatusError) as e:
        _chat(server.client(), "alpha", content="x" * (1 << 20))
    assert e.value.status_code == 413
    # A body over the limit without a Content-Length is refused too (checked on the bytes received).
    status, body = server.raw("/v1/chat/completions", data=iter([b"{" + b" " * (1 << 20) + b"}"]))
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert server.raw("/v1/chat/completions", data=b"{not json")[0] == 400
    assert server.raw("/v1/classify", {"model": "alpha", "input": "x"})[0] == 400  # wrong endpoint for the kind


def test_classify_endpoint_returns_labels_and_scores(server, runs):
    status, body = server.raw("/v1/classify", {"model": "cls", "input": ["a great film", "awful service today"]})
    assert status == 200 and [d["index"] for d in body["data"]] == [0, 1]
    expected = runs["cls"].predict(["a great film", "awful service today"])
    for d, e in zip(body["data"], expected):
        assert d["label"] == e["label"] in ("neg", "pos")
        assert d["scores"] == pytest.approx(e["scores"]) and sum(d["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert server.raw("/v1/tag", {"model": "cls", "input": "x"})[0] == 400


def test_fifty_concurrent_requests_all_complete(server, runs):
    c = server.client()
    models = ["alpha", "beta", runs["base"]]

    def one(i):
        return _chat(c, models[i % 3], content=f"question {i}?", max_tokens=6 + i % 5, temperature=0.7, seed=i)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    for i, r in enumerate(results):
        assert r.model == models[i % 3] and isinstance(r.choices[0].message.content, str)
        assert r.choices[0].finish_reason in ("stop", "length") and 1 <= r.usage.completion_tokens <= 6 + i % 5
    assert server.app.state.engine.pending == 0


def test_a_long_stream_does_not_block_a_short_request(server, runs):
    c = server.client()
    done = {}

    def long():
        chunks = list(
            c.completions.create(
                model=runs["base"], prompt="Once upon a time", max_tokens=250, temperature=0, stream=True
            )
        )
        done["long"] = time.perf_counter(), chunks[-1].choices[0].finish_reason

    t = threading.Thread(target=long)
    t.start()
    time.sleep(0.3)  # the long one is generating
    r = _chat(c, "alpha", max_tokens=4)
    done["short"] = time.perf_counter()
    t.join(60)
    assert r.choices[0].finish_reason == "length" and done["long"][1] == "length"
    assert done["short"] < done["long"][0]


def _wait_idle(server, seconds):
    deadline = time.time() + seconds
    while server.app.state.engine.pending and time.time() < deadline:
        time.sleep(0.05)
    return server.app.state.engine.pending == 0


def test_a_client_that_leaves_stops_its_generation(server, runs):
    import http.client

    c = server.client()
    stream = c.completions.create(model=runs["base"], prompt="Hello", max_tokens=480, temperature=0, stream=True)
    next(iter(stream))
    stream.close()
    assert _wait_idle(server, 10)
    # Not streamed: the server notices the closed connection within about a second (480 tokens take longer).
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "POST",
        "/v1/completions",
        json.dumps({"model": runs["base"], "prompt": "Hello", "max_tokens": 480, "temperature": 0}),
        {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
    )
    t0 = time.time()
    while not server.app.state.engine.pending and time.time() - t0 < 5:
        time.sleep(0.01)
    conn.close()
    assert _wait_idle(server, 4), "generation went on after the client left"


def test_a_full_queue_answers_503(server, runs):
    from tunesmith.serve.app import create_app
    from tunesmith.serve.engine import Engine

    # A second server on the same (already loaded) models, with room for one request only. The first
    # server is idle meanwhile, so the two workers never step the shared weights at once.
    engine = Engine(max_pending=1)
    srv = Server(create_app(server.app.state.pool, engine))
    try:
        c = srv.client(key="unused")
        stream = c.completions.create(model=runs["base"], prompt="Hello", max_tokens=300, temperature=0, stream=True)
        next(iter(stream))
        with pytest.raises(openai.InternalServerError) as e:
            _chat(c, "alpha")
        assert e.value.status_code == 503 and e.value.body["code"] == "server_busy"
        stream.close()
    finally:
        srv.stop()


def test_cli_refuses_an_unfinished_run_in_one_line(runs, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    broken = tmp_path / "broken"
    shutil.copytree(runs["alpha"].path, broken)
    (broken / "summary.json").unlink()  # as if training crashed
    r = subprocess.run(
        [sys.executable, "-m", "tunesmith", "serve", str(broken), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 2 and "did not finish" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
