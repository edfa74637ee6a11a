"""FastAPI routes: the OpenAI-compatible endpoints, plus /v1/classify and /v1/tag for encoder runs.

Handlers only validate, tokenize and wait: generation happens on the engine's worker thread, and each request
reads its own events from an asyncio queue the worker fills with loop.call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import threading
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import TunesmithError
from .engine import Busy, Engine, Job
from .pool import BASE_ROWS, Pool, Served, load_pool
from .schemas import (
    DEFAULT_CHAT_TOKENS,
    DEFAULT_COMPLETION_TOKENS,
    MAX_BODY,
    ApiError,
    ChatRequest,
    CompletionRequest,
    EncodeRequest,
)

ENGINES = ("tunesmith", "vllm")  # tunesmith: engine.Engine (CPU or GPU); vllm: vllm_engine.VllmEngine (CUDA)
ENDPOINTS = {"generate": "/v1/chat/completions or /v1/completions", "classify": "/v1/classify", "tag": "/v1/tag"}
OPEN_PATHS = {"/health"}  # answered without the API key (a load balancer's probe)


class ClientGone(Exception):
    """The client disconnected while waiting for a non-streamed answer."""


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


async def _send_error(send, err: ApiError):
    data = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (err.headers or {}).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware, before any route: the API key, then the body size (Content-Length and the bytes
    actually received; a chunked body has no Content-Length to trust). The body is read here, at most
    `max_body` bytes, and replayed to the app."""

    def __init__(self, app, api_key: str | None, max_body: int):
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.api_key and scope["path"] not in OPEN_PATHS:
            auth = _header(scope, b"authorization") or ""
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(token.encode(), self.api_key.encode()):  # constant time
                return await _send_error(
                    send,
                    ApiError(
                        401,
                        "Incorrect or missing API key: send 'Authorization: Bearer KEY'.",
                        None,
                        "invalid_api_key",
                        headers={"WWW-Authenticate": "Bearer"},
                    ),
                )
        length = _header(scope, b"content-length")
        too_big = ApiError(413, f"request body is larger than {self.max_body} bytes", None, "request_too_large")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _send_error(send, ApiError(400, "invalid Content-Length header"))
            if declared > 8 * self.max_body:  # not worth reading: answer and let the server close
                return await _send_error(send, too_big)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if len(body) <= self.max_body:  # past the limit, keep draining (so the client sees the 413) but drop
                body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > 8 * self.max_body:
                break
        if len(body) > self.max_body:
            return await _send_error(send, too_big)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # later reads wait for the client's disconnect, as Starlette expects

        await self.app(scope, replay, send)


async def _parse(request: Request, cls):
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "could not parse the JSON body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the JSON body must be an object")
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(x) for x in err["loc"]) or None
        raise ApiError(400, f"{param}: {err['msg']}" if param else err["msg"], param, "invalid_value") from None


def _card(s: Served) -> dict:
    return {
        "id": s.id,
        "object": "model",
        "created": s.created,
        "owned_by": "tunesmith",
        "kind": s.kind,
        "task": s.task,
        "base": s.base_id,
        "adapter": s.adapter not in (None, BASE_ROWS),
        "aliases": s.aliases,
    }


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


class Api:
    """The routes' shared state: the model pool, the engine, and per-encoder locks."""

    def __init__(self, pool: Pool, engine: Engine):
        self.pool, self.engine = pool, engine
        self.encoder_locks = {id(s): threading.Lock() for s in pool.models if s.kind != "generate"}
        self.encoder_waiting: dict[int, int] = {}

    def find(self, model_id: str, kind: str) -> Served:
        served = self.pool.get(model_id)
        if served is None:
            raise ApiError(
                404,
                f"The model '{model_id}' does not exist on this server (GET /v1/models lists them).",
                "model",
                "model_not_found",
            )
        if served.kind != kind:
            raise ApiError(
                400,
                f"model '{served.id}' is a {served.kind} model: use {ENDPOINTS[served.kind]}",
                "model",
                "wrong_endpoint",
            )
        return served

    @staticmethod
    def fit(served: Served, ids: list[int], s: dict, param: str) -> int:
        """max_tokens after the context check: an explicit value that does not fit is a 400."""
        room = served.ctx_len - len(ids)
        if room < 1 or (s["explicit_max"] and s["max_tokens"] > room):
            raise ApiError(
                400,
                f"This model's maximum context length is {served.ctx_len} tokens; the prompt has "
                f"{len(ids)} and max_tokens is {s['max_tokens']}.",
                param,
                "context_length_exceeded",
            )
        return min(s["max_tokens"], room)

    # --- generation ------------------------------------------------------------------------------------

    async def generate(
        self,
        request: Request,
        served: Served,
        prompts: list[list[int]],
        s: dict,
        stream: bool,
        include_usage: bool,
        chat: bool,
    ):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        n = s["n"]
        jobs = []
        try:
            for p, ids in enumerate(prompts):

                def sink(events, offset=p * n):
                    loop.call_soon_threadsafe(queue.put_nowait, (offset, events))

                job = Job(
                    served,
                    ids,
                    s["max_tokens_for"][p],
                    sink,
                    temperature=s["temperature"],
                    top_p=s["top_p"],
                    n=n,
                    stop=s["stop"],
                    seed=s["seed"],
                )
                self.engine.submit(job)
                jobs.append(job)
        except Busy as e:
            for job in jobs:
                job.cancel()
            raise ApiError(503, str(e), None, "server_busy", "server_error", headers={"Retry-After": "1"}) from None
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        head = {
            "id": rid,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": served.id,
        }
        if chat:
            head["system_fingerprint"] = None
        prompt_tokens = sum(len(ids) for ids in prompts)

        async def events(watch: bool):
            """(kind, choice, payload) until every job is done; a job's error becomes a 500."""
            left, checked = len(jobs), time.monotonic()
            while left:
                try:
                    offset, evs = await asyncio.wait_for(queue.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    offset, evs = 0, ()
                if watch and time.monotonic() - checked >= 1.0:  # once a second, however busy the queue
                    checked = time.monotonic()
                    if await request.is_disconnected():  # nobody to answer: stop generating
                        raise ClientGone
                for ev in evs:
                    if ev[0] == "done":
                        left -= 1
                    elif ev[0] == "error":
                        raise ApiError(500, ev[1], None, "generation_failed", "server_error")
                    else:
                        yield ev[0], offset + ev[1], ev[2:]

        total = len(prompts) * n
        if not stream:
            texts, reasons, completion = [""] * total, [None] * total, 0
            try:
                async for kind, i, payload in events(watch=True):
                    if kind == "delta":
                        texts[i] += payload[0]
                    else:
                        reasons[i], completion = payload[0], completion + payload[1]
            except ClientGone:
                return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
            finally:
                for job in jobs:
                    job.cancel()  # no-op for finished jobs; stops the rest if the client left or we failed
            if chat:
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None, "finish_reason": r}
                    for i, (t, r) in enumerate(zip(texts, reasons))
                ]
                body = {**head, "object": "chat.completion", "choices": choices}
            else:
                body = {
                    **head,
                    "choices": [
                        {"index": i, "text": t, "logprobs": None, "finish_reason": r}
                        for i, (t, r) in enumerate(zip(texts, reasons))
                    ],
                }
            body["usage"] = _usage(prompt_tokens, completion)
            return JSONResponse(body)

        def chunk(i, piece, reason=None):
            choice = (
                {"index": i, "delta": piece, "logprobs": None, "finish_reason": reason}
                if chat
                else {"index": i, "text": piece, "logprobs": None, "finish_reason": reason}
            )
            out = {**head, "choices": [choice]}
            if include_usage:
                out["usage"] = None
            return _sse(out)

        async def body():
            completion = 0
            try:
                if chat:
                    for i in range(total):
                        yield chunk(i, {"role": "assistant", "content": ""})
                async for kind, i, payload in events(watch=False):  # Starlette cancels us if the client leaves
                    if kind == "delta":
                        yield chunk(i, {"content": payload[0]} if chat else payload[0])
                    else:
                        completion += payload[1]
                        yield chunk(i, {} if chat else "", payload[0])
                if include_usage:
                    yield _sse({**head, "choices": [], "usage": _usage(prompt_tokens, completion)})
                yield "data: [DONE]\n\n"
            except ApiError as e:
                yield _sse(e.body())
            finally:
                for job in jobs:
                    job.cancel()

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    # --- encoders ----------------------------------------------------------------------------------------

    async def encode(self, request: Request, kind: str):
        req = await _parse(request, EncodeRequest)
        served = self.find(req.model, kind)
        items = req.inputs()
        key = id(served)
        if self.encoder_waiting.get(key, 0) >= self.engine.max_pending:
            raise ApiError(
                503,
                "the server is busy; retry shortly",
                None,
                "server_busy",
                "server_error",
                headers={"Retry-After": "1"},
            )
        self.encoder_waiting[key] = self.encoder_waiting.get(key, 0) + 1

        def predict():
            with self.encoder_locks[key]:  # one prediction per model at a time: Run.predict is not reentrant
                return served.run.predict(items)

        try:
            results = await run_in_threadpool(predict)
        except (KeyError, TypeError, ValueError) as e:
            raise ApiError(400, f"cannot score this input: {type(e).__name__}: {e}", "input") from None
        finally:
            self.encoder_waiting[key] -= 1
        return {"object": "list", "model": served.id, "data": [{"index": i, **r} for i, r in enumerate(results)]}


def _prepare_chat(served: Served, req: ChatRequest) -> list[int]:
    from ..data.tokenize import render

    if not served.chat:
        raise ApiError(400, f"model '{served.id}' has no chat template: use /v1/completions", "model")
    messages = served.with_system([m.plain() for m in req.messages])
    try:
        text = render(served.tokenizer, messages, add_generation_prompt=True)
    except Exception as e:  # the template refused the conversation (e.g. roles out of order)
        raise ApiError(400, f"the chat template rejected these messages: {e}", "messages") from None
    return served.tokenizer(text, add_special_tokens=False)["input_ids"]


def _prepare_prompts(served: Served, req: CompletionRequest) -> list[list[int]]:
    tok = served.tokenizer
    vocab = len(tok)
    out = []
    for p in req.prompts():
        if isinstance(p, str):
            ids = tok(p)["input_ids"]
        elif isinstance(p, list) and all(isinstance(t, int) and 0 <= t < vocab for t in p):
            ids = list(p)
        else:
            raise ApiError(400, f"prompt token ids must be integers in [0, {vocab})", "prompt")
        if not ids:  # an empty prompt: start from the BOS (or EOS) token, so there is something to continue
            ids = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
        out.append(ids)
    return out


def create_app(pool: Pool, engine: Engine, api_key: str | None = None, max_body: int = MAX_BODY) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        engine.start()
        yield
        engine.close()

    app = FastAPI(title="tunesmith", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Guard, api_key=api_key, max_body=max_body)
    api = Api(pool, engine)
    app.state.api, app.state.pool, app.state.engine, app.state.auth = api, pool, engine, bool(api_key)

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):
        return JSONResponse(ApiError(err.status_code, str(err.detail)).body(), status_code=err.status_code)

    @app.get("/health")
    async def health():
        return {"status": "ok", "pending": engine.pending}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_card(s) for s in pool.models]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        served = pool.get(model_id)
        if served is None:
            raise ApiError(404, f"The model '{model_id}' does not exist on this server.", "model", "model_not_found")
        return _card(served)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = await _parse(request, ChatRequest)
        req.refuse_unsupported()
        served = api.find(req.model, "generate")
        s = req.checked(DEFAULT_CHAT_TOKENS)
        ids = await run_in_threadpool(_prepare_chat, served, req)  # a long conversation takes a while to encode
        s["max_tokens_for"] = [api.fit(served, ids, s, "messages")]
        return await api.generate(request, served, [ids], s, bool(req.stream), req.include_usage, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = await _parse(request, CompletionRequest)
        req.refuse_unsupported()
        served = api.find(req.model, "generate")
        s = req.checked(DEFAULT_COMPLETION_TOKENS)
        prompts = await run_in_threadpool(_prepare_prompts, served, req)
        s["max_tokens_for"] = [api.fit(served, ids, s, "prompt") for ids in prompts]
        return await api.generate(request, served, prompts, s, bool(req.stream), req.include_usage, chat=False)

    @app.post("/v1/classify")
    async def classify(request: Request):
        return await api.encode(request, "classify")

    @app.post("/v1/tag")
    async def tag(request: Request):
        return await api.encode(request, "tag")

    return app


def build_app(
    runs,
    base: str | None = None,
    api_key: str | None = None,
    *,
    engine: str = "tunesmith",
    max_batch: int = 32,
    max_pending: int = 256,
    max_body: int = MAX_BODY,
) -> FastAPI:
    """Load the runs (and an optional base model) and return the FastAPI app; serve it with any ASGI server.

    api_key: required as `Authorization: Bearer KEY`; None falls back to $TUNESMITH_API_KEY (unset: no key).
    engine: "tunesmith" (our own worker) or "vllm" (vLLM on a CUDA GPU; it loads the generative weights
    itself, so the pool reads only their configs and tokenizers). max_batch applies to "tunesmith" only.
    """
    if engine not in ENGINES:
        raise TunesmithError(f"unknown engine '{engine}': use one of {', '.join(ENGINES)}")
    if engine == "vllm":
        from .vllm_engine import VllmEngine, check_vllm

        check_vllm()  # before any model is loaded
    if api_key is None:
        api_key = os.environ.get("TUNESMITH_API_KEY") or None
    pool = load_pool(runs, base, weights=engine != "vllm")
    if engine == "vllm":
        worker = VllmEngine(pool, max_pending=max_pending)
    else:
        worker = Engine(max_batch=max_batch, max_pending=max_pending)
    worker.start()
    return create_app(pool, worker, api_key or None, max_body)
