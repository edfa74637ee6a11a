"""The generation worker: one thread owns every generative model and advances all requests together.

Why one thread: a PeftModel's active adapter is global state, and two threads stepping the same weights would
fight over it and over the CPU. Why it never waits for one request to finish: every loop iteration admits
new requests (prefill), then runs ONE decode step for every active row, so a long stream only costs the
others one row's share of a step. Rows of one set of weights form one batch whose KV caches are
left-padded to a common length, and PEFT's mixed-adapter forward (per-row adapter names, routed by
pool.AdapterRouting) lets rows of different adapters and the bare base ("__base__") share that forward: the
base matmuls run once for the whole batch, only the small LoRA products per adapter.

Requests talk to the worker through events: the worker calls `job.sink(list_of_events)` (the server turns
that into loop.call_soon_threadsafe onto the request's asyncio queue). Events:
    ("delta", choice, text)    ("finish", choice, reason, completion_tokens)    ("done",)    ("error", message)
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..eval.decode import join_caches, keep_rows, pick, plain_cache, sampler
from ..eval.text import Detokenizer, StopText
from .pool import BASE_ROWS, Served


class Busy(Exception):
    """The queue is full (or the server is stopping): the client should retry later (HTTP 503)."""


@dataclass(eq=False)
class Job:
    served: Served
    prompt: list[int]
    max_tokens: int
    sink: Callable[[list], None]
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    cancelled: bool = False
    rows_left: int = 0
    finished: bool = False

    def cancel(self):
        """Safe from any thread: the worker drops the job's rows before its next step."""
        self.cancelled = True


class Row:
    """One choice of one job: its sampler, its text so far, and how it ended."""

    def __init__(self, job: Job, index: int):
        self.job, self.index = job, index
        self.adapter = job.served.adapter
        self.greedy = job.temperature == 0
        # distinct, reproducible streams per choice when seeded
        self.gen = None if self.greedy else sampler(job.temperature, job.top_p, job.seed, index)[2]
        self.detok = Detokenizer(job.served.tokenizer)
        self.text = StopText(job.stop)
        self.count = 0
        self.reason: str | None = None


class Batch:
    """Rows that step together: one KV cache, left-padded; `mask` marks real positions, `pos` the next
    position id of each row (positions follow real tokens only, so padding never shifts a row's RoPE)."""

    def __init__(self, group, cache, mask, pos, rows, tokens):
        self.group, self.cache, self.mask, self.pos, self.rows, self.next = group, cache, mask, pos, rows, tokens

    @property
    def mergeable(self) -> bool:
        from transformers.cache_utils import DynamicLayer

        return all(
            isinstance(layer, DynamicLayer) and not layer.is_sliding and layer.is_initialized
            for layer in self.cache.layers
        )

    def select(self, keep: list[int]):
        if self.mergeable:
            self.mask = keep_rows(self.cache, self.mask, keep)
        else:  # a rolling (sliding-window) cache: rows can go, columns cannot
            self.cache.batch_select_indices(torch.tensor(keep, dtype=torch.long))
            self.mask = self.mask[torch.tensor(keep, dtype=torch.long)]
        self.pos = self.pos[torch.tensor(keep, dtype=torch.long)]
        self.rows = [self.rows[i] for i in keep]
        self.next = [self.next[i] for i in keep]


def _emit(job: Job, events: list):
    try:
        job.sink(events)
    except Exception:  # the request's event loop is gone (server stopping): nobody is listening
        job.cancel()


def merge(batches: list[Batch]) -> Batch:
    """One batch from several with mergeable caches, each left-padded to the longest."""
    first = batches[0]
    first.cache, first.mask = join_caches([(b.cache, b.mask) for b in batches])
    if len(batches) > 1:
        first.pos = torch.cat([b.pos for b in batches])
        first.rows = [r for b in batches for r in b.rows]
        first.next = [t for b in batches for t in b.next]
    return first


def sample(logits: torch.Tensor, rows: list[Row]) -> list[int]:
    return pick(logits, [None if r.greedy else (r.job.temperature, r.job.top_p, r.gen) for r in rows])


class Worker:
    """The queue both engines share: jobs wait in `_waiting` until the worker thread takes them (then they
    count in `_active` until they end); beyond `max_pending` of both, submit() raises Busy."""

    def __init__(self, max_pending: int, name: str):
        self.max_pending = max_pending
        self._cv = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._active = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self):
        raise NotImplementedError

    def start(self):
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()

    def close(self, timeout: float = 30):
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def pending(self) -> int:
        with self._cv:
            return len(self._waiting) + self._active

    def submit(self, job: Job):
        with self._cv:
            if self._closed:
                raise Busy("the server is shutting down")
            if len(self._waiting) + self._active >= self.max_pending:
                raise Busy(f"the server is busy ({self.max_pending} requests queued or running); retry shortly")
            job.rows_left = job.n
            self._waiting.append(job)
            self._cv.notify()


class Engine(Worker):
    def __init__(self, max_batch: int = 32, max_pending: int = 256, prefill_tokens: int = 1024, kv_tokens: int = 65536):
        super().__init__(max_pending, "tunesmith-serve-worker")
        self.max_batch = max_batch  # rows stepping at once, over all models (bounds step time)
        self.prefill_tokens = prefill_tokens  # prompt tokens prefilled per loop turn, so streams keep moving
        # KV-cache positions the running rows may reach: rows x the longest prompt + max_tokens, since a batch
        # is padded to its longest row (about 3 GB for SmolLM2-135M in fp32). One job always runs alone.
        self.kv_tokens = kv_tokens
        self._batches: dict[int, list[Batch]] = {}
        self.steps = 0

    # --- the worker thread ---------------------------------------------------------------------------------

    def _rows(self) -> int:
        return sum(len(b.rows) for bs in self._batches.values() for b in bs)

    def _admit(self) -> list[Job]:
        """Waiting jobs to start now, first come first served: within the row limit and the prefill budget
        (one job always fits when nothing is running)."""
        running = [r.job for bs in self._batches.values() for b in bs for r in b.rows]
        rows, tokens, out = len(running), 0, []
        widest = max((len(j.prompt) + j.max_tokens for j in running), default=0)
        while self._waiting:
            job = self._waiting[0]
            if job.cancelled:
                self._waiting.popleft()
                continue
            width = max(widest, len(job.prompt) + job.max_tokens)
            if rows or out:  # something runs already: this job must fit beside it
                if rows + job.n > self.max_batch or (rows + job.n) * width > self.kv_tokens:
                    break
                if out and tokens + len(job.prompt) > self.prefill_tokens:
                    break
            self._waiting.popleft()
            out.append(job)
            rows, tokens, widest = rows + job.n, tokens + len(job.prompt), width
            self._active += 1
        return out

    def _loop(self):
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not self._closed and not self._waiting and not self._rows():
                        self._cv.wait()
                    if self._closed:
                        break
                    jobs = self._admit()
                try:
                    self._start(jobs)
                    for key in list(self._batches):
                        for batch in list(self._batches[key]):
                            self._step(batch)
                        self._batches[key] = [b for b in self._batches[key] if b.rows]
                        if not self._batches[key]:
                            del self._batches[key]
                except Exception as e:  # a bug here must not leave every client waiting forever
                    print(f"serve: worker error: {type(e).__name__}: {e}", file=sys.stderr)
                    self._fail(jobs, f"generation failed: {type(e).__name__}")
                    for bs in self._batches.values():
                        for b in bs:
                            self._fail([r.job for r in b.rows], f"generation failed: {type(e).__name__}")
                    self._batches.clear()
            for bs in self._batches.values():  # closing: tell every running request
                for b in bs:
                    self._fail([r.job for r in b.rows], "the server is shutting down")
            while self._waiting:
                self._fail([self._waiting.popleft()], "the server is shutting down", active=False)

    def _forward(self, group, ids, mask, pos, cache, adapters):
        kw = {group.cache_kw: cache, "use_cache": True, "logits_to_keep": 1}
        routing = group.routing
        if group.folded is not None:  # rows all of one adapter: fold it in (docs/serve.md, "Concurrency")
            names = set(adapters)
            group.folded.fold(names.pop() if len(names) == 1 and BASE_ROWS not in names else None)
            if group.folded.adapter is not None:
                routing = None
        with routing(adapters) if routing else contextlib.nullcontext():
            out = group.model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw)
        return out.logits[:, -1, :].float()

    def _prefill(self, jobs: list[Job]) -> Batch:
        """One forward over the prompts of jobs that share weights, left-padded to the longest (each row with
        its own adapter); a job asking for n choices gets n rows that share its prompt's cache."""
        from transformers import DynamicCache

        group = jobs[0].served.group
        width = max(len(j.prompt) for j in jobs)
        ids = torch.zeros(len(jobs), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, job in enumerate(jobs):
            ids[r, width - len(job.prompt) :] = torch.tensor(job.prompt, dtype=torch.long)
            mask[r, width - len(job.prompt) :] = 1
        cache = plain_cache(group.model) or DynamicCache(config=group.model.config)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._forward(group, ids, mask, pos, cache, [j.served.adapter for j in jobs])
        if any(j.n > 1 for j in jobs):  # one prefill, n choices: copy the prompt's cache per choice
            idx = torch.repeat_interleave(torch.arange(len(jobs)), torch.tensor([j.n for j in jobs]))
            cache.batch_select_indices(idx)
            logits, mask = logits[idx], mask[idx]
        rows = [Row(job, i) for job in jobs for i in range(job.n)]
        batch = Batch(group, cache, mask, mask.sum(-1), rows, [0] * len(rows))
        batch.next = self._advance(rows, sample(logits, rows))
        return batch

    def _start(self, jobs: list[Job]):
        by_group: dict[int, list[Job]] = {}
        for job in jobs:
            by_group.setdefault(id(job.served.group), []).append(job)
        fresh: dict[int, list[Batch]] = {}
        for key, group_jobs in by_group.items():
            try:  # all of a group's new prompts in one forward: several times faster than one by one
                fresh[key] = [self._prefill(group_jobs)]
                continue
            except Exception:  # find the request that broke it: the others still start
                fresh[key] = []
            for job in group_jobs:
                try:
                    fresh[key].append(self._prefill([job]))
                except Exception as e:  # a bad request must not take the worker down
                    self._fail([job], f"generation failed: {type(e).__name__}: {e}")
        for key, new in fresh.items():
            batches = self._batches.get(key, []) + new
            joinable = [b for b in batches if b.mergeable]
            others = [b for b in batches if not b.mergeable]
            self._batches[key] = ([merge(joinable)] if joinable else []) + others
            for b in self._batches[key]:
                self._prune(b)

    def _step(self, batch: Batch):
        self._prune(batch)
        if not batch.rows:
            return
        try:
            batch.mask = torch.cat([batch.mask, torch.ones(len(batch.rows), 1, dtype=torch.long)], 1)
            logits = self._forward(
                batch.group,
                torch.tensor(batch.next).unsqueeze(1),
                batch.mask,
                batch.pos.unsqueeze(1),
                batch.cache,
                [r.adapter for r in batch.rows],
            )
            batch.pos = batch.pos + 1
            batch.next = self._advance(batch.rows, sample(logits, batch.rows))
            self.steps += 1
        except Exception as e:
            print(f"serve: a decode step failed: {type(e).__name__}: {e}", file=sys.stderr)
            self._fail(
                list({id(r.job): r.job for r in batch.rows}.values()), f"generation failed: {type(e).__name__}: {e}"
            )
            batch.rows = []
            return
        self._prune(batch)

    def _advance(self, rows: list[Row], tokens: list[int]) -> list[int]:
        """Take each row's new token: text to send, and whether the row is done. Returns the next inputs."""
        events: dict[int, tuple[Job, list]] = {}
        for row, token in zip(rows, tokens):
            job = row.job
            if row.reason or job.cancelled:
                continue
            row.count += 1
            out = events.setdefault(id(job), (job, []))[1]
            if token in job.served.stop_ids:  # end of turn: counted, never shown
                row.reason = "stop"
                piece = row.text.add(row.detok.flush())
            else:
                piece = row.text.add(row.detok.push(token))
                if row.text.stopped:
                    row.reason = "stop"
                elif row.count >= job.max_tokens:
                    piece += row.text.add(row.detok.flush())
                    row.reason = "stop" if row.text.stopped else "length"
            if row.reason:
                piece += row.text.flush()  # the held-back tail, now that no stop string can follow
            if piece:
                out.append(("delta", row.index, piece))
            if row.reason:
                out.append(("finish", row.index, row.reason, row.count))
        for job, evs in events.values():
            if evs:
                _emit(job, evs)
        return tokens

    def _prune(self, batch: Batch):
        """Drop rows that are done or whose client left; a job ends when its last row does."""
        keep = [i for i, r in enumerate(batch.rows) if not r.reason and not r.job.cancelled]
        if len(keep) == len(batch.rows):
            return
        for r in batch.rows:
            if r.reason or r.job.cancelled:
                r.job.rows_left -= 1
                if r.job.rows_left == 0:
                    self._end(r.job, [("done",)])
        if keep:
            batch.select(keep)
        else:
            batch.rows, batch.next = [], []

    def _end(self, job: Job, events: list, active: bool = True):
        if job.finished:
            return
        job.finished = True
        if active:
            with self._cv:
                self._active -= 1
        if not job.cancelled:
            _emit(job, events)

    def _fail(self, jobs: list[Job], message: str, active: bool = True):
        for job in jobs:
            self._end(job, [("error", message)], active)
