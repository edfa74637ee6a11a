"""`serve --engine vllm`: the generation worker on vLLM, for CUDA GPUs. Same jobs, events and Busy as
engine.Engine, so the routes do not know which one runs; vLLM's own scheduler batches the requests, pages the
KV cache and applies the LoRA adapters.

One vLLM LLMEngine per set of weights (one pool.Group): a group of LoRA runs is one engine on their base with
enable_lora, each run a LoRARequest and the base none; a full fine-tuning run or a plain --base is an engine of
its own. One thread steps them all, so no vLLM object is ever used by two threads at once.

Each choice of a job is its own vLLM request (n=1): vLLM versions differ in how they stream n > 1 and seed
its choices (0.6 refuses n > 1 when greedy), and one request per choice behaves the same in all of them.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import TunesmithError
from .engine import Job, Worker, _emit
from .pool import BASE_ROWS, Pool, Served

# Our dtype names -> vLLM's. fp32 (and a run saved before dtypes were recorded) -> "auto": vLLM serves a
# float32 checkpoint in half precision, as GPU servers do.
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
GPU_SHARE = 0.9  # vLLM's default gpu_memory_utilization, split between the engines: each claims its part up front


def check_vllm():
    """The one-line refusals, before any model is loaded. CUDA first: installing vLLM would not help without it."""
    import torch

    if not torch.cuda.is_available():
        raise TunesmithError("serve --engine vllm needs a CUDA GPU; tunesmith's own engine (the default) runs on CPU")
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise TunesmithError("serve --engine vllm needs vLLM: pip install 'tunesmith[vllm]' (CUDA only)") from None


def lora_rank(r: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds rank r."""
    return next((x for x in LORA_RANKS if x >= r), r)


@dataclass(eq=False)
class Choice:
    """One vLLM request: one choice of one job, and the text already sent (vLLM's text is cumulative)."""

    job: Job
    index: int
    llm: object
    sent: str = ""


class VllmEngine(Worker):
    def __init__(self, pool: Pool, max_pending: int = 256, log=None):
        super().__init__(max_pending, "tunesmith-serve-vllm")
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._vllm = importlib.import_module("vllm")
        self._route: dict[int, tuple[object, object]] = {}  # id(Served) -> (its LLMEngine, its LoRARequest or None)
        self._build(pool)
        self._choices: dict[str, Choice] = {}  # vLLM request id -> the choice it generates
        self._ids = itertools.count()

    def _build(self, pool: Pool):
        from vllm.lora.request import LoRARequest

        groups: dict[int, list[Served]] = {}
        for s in pool.models:
            if s.kind == "generate":
                groups.setdefault(id(s.group), []).append(s)
        for members in groups.values():  # refuse what vLLM cannot serve before loading anything
            for s in members:
                if s.source and json.loads((Path(s.source) / "adapter_config.json").read_text()).get("use_dora"):
                    raise TunesmithError(
                        f"{s.source}: a DoRA adapter, which vLLM does not serve; use the default engine, or "
                        f"`tunesmith export --merge` it and serve that with --base"
                    )
        share = round(GPU_SHARE / max(1, len(groups)), 3)
        for members in groups.values():
            group = members[0].group
            adapters = [s for s in members if s.adapter not in (None, BASE_ROWS)]
            kw = dict(model=group.source, dtype=DTYPES.get(group.dtype, "auto"), gpu_memory_utilization=share)
            if adapters:
                kw.update(
                    enable_lora=True,
                    max_lora_rank=lora_rank(max(s.lora_rank for s in adapters)),
                    max_loras=len(adapters),
                )
            self._log(f"vllm: loading {group.source}" + (f" with {len(adapters)} LoRA adapter(s)" if adapters else ""))
            llm = self._vllm.LLMEngine.from_engine_args(self._vllm.EngineArgs(**kw))
            loras = {id(s): LoRARequest(s.id, i, s.source) for i, s in enumerate(adapters, 1)}  # vLLM ids start at 1
            for s in members:
                self._route[id(s)] = (llm, loras.get(id(s)))

    # --- the worker thread ---------------------------------------------------------------------------------

    def _loop(self):
        while True:
            with self._cv:
                while not self._closed and not self._waiting and not self._choices:
                    self._cv.wait()  # idle: sleep until a job arrives or close()
                if self._closed:
                    break
                new = list(self._waiting)
                self._waiting.clear()
                self._active += len(new)
            try:
                for job in new:
                    self._add(job)
                self._drop_cancelled()
                for llm in list({id(c.llm): c.llm for c in self._choices.values()}.values()):
                    self._step(llm)
            except Exception as e:  # a bug here must not leave every client waiting forever
                print(f"serve: vllm worker error: {type(e).__name__}: {e}", file=sys.stderr)
                self._fail_all(f"generation failed: {type(e).__name__}")
        self._fail_all("the server is shutting down")
        with self._cv:
            waiting = list(self._waiting)
            self._waiting.clear()
        for job in waiting:
            self._end(job, [("error", "the server is shutting down")], active=False)

    def _add(self, job: Job):
        if job.cancelled:
            self._end(job, [])
            return
        llm, lora = self._route[id(job.served)]
        ids = []
        try:
            for i in range(job.n):
                params = self._vllm.SamplingParams(
                    n=1,
                    temperature=job.temperature,
                    top_p=job.top_p,
                    max_tokens=job.max_tokens,
                    stop=list(job.stop),
                    stop_token_ids=sorted(job.served.stop_ids),  # the run's end of turn, not only the base's EOS
                    seed=None if job.seed is None else (job.seed + i) % (1 << 63),  # distinct, reproducible choices
                )
                rid = f"ts-{next(self._ids)}"
                llm.add_request(rid, {"prompt_token_ids": list(job.prompt)}, params, lora_request=lora)
                ids.append(rid)
                self._choices[rid] = Choice(job, i, llm)
        except Exception as e:  # a bad request (say, vLLM's own length check) fails alone
            error = [("error", f"generation failed: {type(e).__name__}: {e}")]
            self._stop(ids, error)
            self._end(job, error)  # also when none of its choices got in

    def _drop_cancelled(self):
        self._stop([rid for rid, c in self._choices.items() if c.job.cancelled], [])

    def _step(self, llm):
        mine = [rid for rid, c in self._choices.items() if c.llm is llm]
        try:
            if not llm.has_unfinished_requests():  # vLLM dropped them without a final output: never wait forever
                raise RuntimeError("vLLM has no unfinished request for these jobs")
            outputs = llm.step()
        except Exception as e:  # the jobs of this engine fail; the other engines' go on
            print(f"serve: a vLLM step failed: {type(e).__name__}: {e}", file=sys.stderr)
            self._stop(mine, [("error", f"generation failed: {type(e).__name__}: {e}")])
            return
        events: dict[int, tuple[Job, list]] = {}
        for out in outputs:
            c = self._choices.get(out.request_id)
            if c is None or c.job.cancelled or not out.outputs:
                continue
            done = out.outputs[0]  # n=1: one completion per request
            evs = events.setdefault(id(c.job), (c.job, []))[1]
            if done.text.startswith(c.sent):  # vLLM holds back a possible stop string, so text only grows
                if len(done.text) > len(c.sent):
                    evs.append(("delta", c.index, done.text[len(c.sent) :]))
                c.sent = done.text
            if done.finish_reason is not None or out.finished:
                reason = "length" if done.finish_reason == "length" else "stop"
                evs.append(("finish", c.index, reason, len(done.token_ids)))
                del self._choices[out.request_id]
                c.job.rows_left -= 1
        for job, evs in events.values():
            if job.rows_left == 0:
                self._end(job, [*evs, ("done",)])
            elif evs:
                _emit(job, evs)

    # --- endings -------------------------------------------------------------------------------------------

    def _stop(self, rids: list[str], events: list):
        """Abort these requests in vLLM and end their jobs with `events`."""
        by_llm: dict[int, tuple[object, list[str]]] = {}
        jobs = {}
        for rid in rids:
            c = self._choices.pop(rid)
            by_llm.setdefault(id(c.llm), (c.llm, []))[1].append(rid)
            jobs[id(c.job)] = c.job
        for llm, ids in by_llm.values():
            try:
                llm.abort_request(ids)
            except Exception as e:  # nothing left to save: the jobs end either way
                print(f"serve: vLLM abort failed: {type(e).__name__}: {e}", file=sys.stderr)
        for job in jobs.values():
            self._end(job, events)

    def _fail_all(self, message: str):
        self._stop(list(self._choices), [("error", message)])

    def _end(self, job: Job, events: list, active: bool = True):
        """The job's last events (none for a cancelled job: nobody listens); it no longer counts as pending.
        `active`: the worker had taken it (a job still waiting never counted in `_active`)."""
        if job.finished:
            return
        job.finished = True
        if active:
            with self._cv:
                self._active -= 1
        if events and not job.cancelled:
            _emit(job, events)
