"""Request batching: concurrent requests to one model are gathered and run as one batched call.

Each served model has one `Batcher`: a queue of jobs (one item each: a sentence, a document) and one worker
thread. The batcher's loop takes the oldest job, waits up to `max_wait` seconds from that job's arrival for more
jobs with the same options (up to `max_batch`), and hands their items to `run(items, options)` in the worker
thread as ONE call; each job's future then gets its own result. Under load the oldest job has usually waited
through the previous call already, so the next batch starts at once with everything that queued meanwhile; a lone
request waits at most `max_wait`.

Work that cannot be batched (the steps of one generated text) goes through `call(fn)`: run alone, in queue order
with the batches, so one model's work never runs on two threads at once.

A job whose request was cancelled (the client left, the timeout struck) is dropped before it runs: only a call
already in progress finishes. Everything here runs on the event loop except `run` itself, so no locks are needed.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

GATHER_LIMIT = 8        # a batch gathers for at most this many max_waits


class QueueFull(Exception):
    """The model's queue holds `max_queue` unanswered items; try again after `retry_after` seconds."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(f"the queue of this model is full ({limit} items waiting); retry after {retry_after} s")
        self.limit, self.retry_after = limit, retry_after


@dataclass(eq=False)
class Job:
    item: Any                       # one input, or for a solo job the callable to run
    key: str | None                 # jobs with equal keys (equal options) may share a call; None: runs alone
    options: Any                    # what `run` takes besides the items (equal for equal keys)
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class Stats:
    requests: int = 0               # submit() and call() calls admitted
    items: int = 0                  # items run (batched calls) and solo jobs run
    batches: int = 0                # calls of `run`
    largest: int = 0                # largest batch so far
    dropped: int = 0                # queued jobs never run because their request went away
    rejected: int = 0               # requests refused with QueueFull
    busy_s: float = 0.0             # time spent in the worker thread

    def as_dict(self) -> dict:
        mean = self.items / self.batches if self.batches else 0.0
        return {**self.__dict__, "mean_batch": round(mean, 2), "busy_s": round(self.busy_s, 3)}


class Batcher:
    """Gathers jobs for one model; `run(items, options) -> results` (one per item, in order) is the batched call."""

    def __init__(self, name: str, run: Callable[[list, Any], list], max_batch: int = 64, max_wait: float = 0.005,
                 max_queue: int = 1024):
        self.name, self.run = name, run
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait, max_queue
        self.jobs: deque[Job] = deque()
        self.pending = 0                # items admitted and not yet answered (waiting or running)
        self.stats = Stats()
        self._ready = asyncio.Event()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"nmt-{name}")
        self._task: asyncio.Task | None = None
        self._last_arrival = self._free_since = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for job in self.jobs:
            job.future.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list, options: Any = None, key: str = "") -> list:
        """The results of `items`, each run in some batch with other jobs of the same `key`. Raises QueueFull."""
        jobs = self._admit([(item, key, options) for item in items])
        try:
            return list(await asyncio.gather(*(job.future for job in jobs)))
        finally:
            for job in jobs:            # cancelled or failed: what is still queued never runs
                job.future.cancel()

    async def call(self, fn: Callable[[], Any]) -> Any:
        """`fn()` run alone in the worker thread, in queue order. Raises QueueFull."""
        (job,) = self._admit([(fn, None, None)])
        try:
            return await job.future
        finally:
            job.future.cancel()

    def _admit(self, entries: list[tuple]) -> list[Job]:
        if self.pending + len(entries) > self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(self.max_queue, self.retry_after())
        loop = asyncio.get_running_loop()
        jobs = [Job(item, key, options, loop.create_future()) for item, key, options in entries]
        for job in jobs:
            job.future.add_done_callback(self._answered)
        self.pending += len(jobs)
        self.stats.requests += 1
        self._last_arrival = jobs[-1].arrived
        self.jobs.extend(jobs)
        self._ready.set()
        return jobs

    def _answered(self, future: asyncio.Future) -> None:
        self.pending -= 1

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained (from the mean time per item so far), at least 1."""
        per_item = self.stats.busy_s / self.stats.items if self.stats.items else 0.05
        return max(1, math.ceil(self.pending * per_item))

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            await self._run(batch)

    async def _gather(self) -> list[Job]:
        """The next batch: the oldest live job and up to max_batch - 1 later ones with its key."""
        while True:
            while self.jobs and self.jobs[0].future.done():
                self.jobs.popleft()
                self.stats.dropped += 1
            if not self.jobs:
                self._ready.clear()
                await self._ready.wait()
                continue
            first = self.jobs[0]
            if first.key is None:
                return [self.jobs.popleft()]
            await self._company(first)
            if not first.future.done():
                return self._take(first.key)

    async def _company(self, first: Job) -> None:
        """Wait while jobs with the first one's key keep arriving less than max_wait apart (clients whose answers
        just went out send their next requests one after another), up to max_batch of them and at most
        GATHER_LIMIT * max_wait from when the first job arrived or the worker became free, whichever is later."""
        start = max(first.arrived, self._free_since)
        limit = start + GATHER_LIMIT * self.max_wait
        while self._count(first.key) < self.max_batch:
            left = min(limit, max(start, self._last_arrival) + self.max_wait) - time.monotonic()
            if left <= 0:
                return
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), left)
            except asyncio.TimeoutError:
                return

    def _count(self, key: str) -> int:
        return sum(1 for job in self.jobs if job.key == key and not job.future.done())

    def _take(self, key: str) -> list[Job]:
        batch, rest = [], deque()
        for job in self.jobs:
            if job.future.done():
                self.stats.dropped += 1
            elif job.key == key and len(batch) < self.max_batch:
                batch.append(job)
            else:
                rest.append(job)
        self.jobs = rest
        return batch

    async def _run(self, batch: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        if batch[0].key is None:
            outcomes = await loop.run_in_executor(self._thread, _solo, batch[0].item)
        else:
            outcomes = await loop.run_in_executor(self._thread, _batched, self.run, [j.item for j in batch],
                                                  batch[0].options)
        self._free_since = time.monotonic()
        self.stats.busy_s += self._free_since - started
        self.stats.batches += batch[0].key is not None
        self.stats.items += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        for job, (ok, value) in zip(batch, outcomes):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


def _batched(run: Callable, items: list, options: Any) -> list[tuple[bool, Any]]:
    """(True, result) for each item of one call of `run`; when the call fails and holds several items, each item
    is run alone, so one bad item fails its own request only."""
    try:
        results = run(items, options)
    except Exception as exc:  # noqa: BLE001 - handed to the request that asked
        if len(items) == 1:
            return [(False, exc)]
        return _each(run, items, options)
    if len(results) != len(items):
        return [(False, RuntimeError(f"the model answered {len(results)} results for {len(items)} items"))] * len(items)
    return [(True, r) for r in results]


def _each(run: Callable, items: list, options: Any) -> list[tuple[bool, Any]]:
    return [_batched(run, [item], options)[0] for item in items]


def _solo(fn: Callable[[], Any]) -> list[tuple[bool, Any]]:
    try:
        return [(True, fn())]
    except Exception as exc:  # noqa: BLE001 - handed to the request that asked
        return [(False, exc)]
