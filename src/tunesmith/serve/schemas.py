"""OpenAI-style request bodies and the bounds the server enforces on them.

Unknown fields are accepted and ignored (clients send many optional ones); fields whose silent omission
would mislead (logprobs, tools, echo, suffix) are refused with 400 instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictInt

MAX_TOKENS = 2048
MAX_N = 8
MAX_STOPS = 4
MAX_PROMPTS = 32  # /v1/completions: prompts in one request
MAX_INPUTS = 256  # /v1/classify, /v1/tag: texts in one request
MAX_BODY = 1 << 20  # bytes
DEFAULT_CHAT_TOKENS = 256  # as `tunesmith generate`
DEFAULT_COMPLETION_TOKENS = 16  # as OpenAI's /v1/completions


class ApiError(Exception):
    """Becomes {"error": {"message", "type", "param", "code"}} with this HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None

    def plain(self) -> dict:
        content = self.content
        if isinstance(content, list):
            if any(p.type != "text" for p in content):
                raise ApiError(400, "only text content parts are supported", "messages")
            content = "".join(p.text or "" for p in content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content or ""}


class Sampling(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    max_tokens: StrictInt | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: StrictInt | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None

    def checked(self, default_tokens: int) -> dict:
        """The sampling settings after range checks; an out-of-range value is a 400 naming its field."""
        max_tokens = self.max_tokens
        if max_tokens is not None and not 1 <= max_tokens <= MAX_TOKENS:
            raise ApiError(
                400, f"max_tokens must be between 1 and {MAX_TOKENS}, got {max_tokens}", "max_tokens", "invalid_value"
            )
        n = 1 if self.n is None else self.n
        if not 1 <= n <= MAX_N:
            raise ApiError(400, f"n must be between 1 and {MAX_N}, got {n}", "n", "invalid_value")
        temperature = 1.0 if self.temperature is None else self.temperature
        if not 0 <= temperature <= 2:
            raise ApiError(
                400, f"temperature must be between 0 and 2, got {temperature}", "temperature", "invalid_value"
            )
        top_p = 1.0 if self.top_p is None else self.top_p
        if not 0 < top_p <= 1:
            raise ApiError(400, f"top_p must be greater than 0 and at most 1, got {top_p}", "top_p", "invalid_value")
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stop) > MAX_STOPS or any(not s or len(s) > 256 for s in stop):
            raise ApiError(
                400,
                f"stop takes at most {MAX_STOPS} non-empty strings of up to 256 characters",
                "stop",
                "invalid_value",
            )
        if self.seed is not None and not -(1 << 63) <= self.seed < (1 << 63):
            raise ApiError(400, "seed must fit in a signed 64-bit integer", "seed", "invalid_value")
        return dict(
            max_tokens=max_tokens if max_tokens is not None else default_tokens,
            explicit_max=max_tokens is not None,
            n=n,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            seed=self.seed,
        )

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(Sampling):
    messages: list[Message]
    max_completion_tokens: StrictInt | None = None  # the newer name for max_tokens
    logprobs: bool | None = None
    tools: list | None = None

    def refuse_unsupported(self):
        if self.logprobs:
            raise ApiError(400, "logprobs are not supported by this server", "logprobs", "unsupported_parameter")
        if self.tools:
            raise ApiError(400, "tools are not supported by this server", "tools", "unsupported_parameter")
        if not self.messages:
            raise ApiError(400, "messages must not be empty", "messages")
        if self.max_tokens is None and self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens


class CompletionRequest(Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = None
    echo: bool | None = None
    suffix: str | None = None

    def refuse_unsupported(self):
        for name in ("logprobs", "suffix"):
            if getattr(self, name) is not None:
                raise ApiError(400, f"{name} is not supported by this server", name, "unsupported_parameter")
        if self.echo:
            raise ApiError(400, "echo is not supported by this server", "echo", "unsupported_parameter")

    def prompts(self) -> list[str | list[int]]:
        p = self.prompt
        if isinstance(p, str):
            out = [p]
        elif p and all(isinstance(x, int) for x in p):
            out = [list(p)]
        else:
            out = list(p)
        if not out or len(out) > MAX_PROMPTS:
            raise ApiError(400, f"prompt must hold 1 to {MAX_PROMPTS} prompts", "prompt")
        return out


class EncodeRequest(BaseModel):
    """/v1/classify and /v1/tag: one text or a list of them (classify: rows with text and text_pair too)."""

    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str | dict[str, Any]]

    def inputs(self) -> list:
        items = [self.input] if isinstance(self.input, str) else list(self.input)
        if not items or len(items) > MAX_INPUTS:
            raise ApiError(400, f"input must hold 1 to {MAX_INPUTS} texts", "input")
        for x in items:
            if isinstance(x, dict) and not isinstance(x.get("text"), str):
                raise ApiError(400, "each input row needs a 'text' string", "input")
        return items
