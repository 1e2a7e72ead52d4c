"""Micro-batching: pairs from concurrent requests share one onnxruntime run.

Forty tablets asking at once should cost a few model runs, not forty. Requests
put their pairs on a queue; a runner thread takes the first job, gathers whatever
else arrives within ``max_wait_s`` (up to ``max_size`` pairs), runs them as one
batch and hands each request its rows. While a batch runs, the next one fills up,
so under load batches form without any waiting at all.

With several runners (``batch_runners``), batches run side by side, e.g. one per core,
each on one onnxruntime thread. On the 2-core test machine this was within noise of one
runner (docs/experiments.md, serving on the AMD EPYC machine), so one is the default.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Callable, Sequence

import numpy as np

Pair = tuple[str, str]


@dataclasses.dataclass
class _Job:
    pairs: Sequence[Pair]
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


_STOP = object()


class MicroBatcher:
    def __init__(self, run: Callable[[list[Pair]], np.ndarray], max_size: int = 32,
                 max_wait_s: float = 0.004, name: str = "batcher", runners: int = 1):
        self._run = run
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._jobs: queue.Queue = queue.Queue()
        self._closed = False
        self._close_lock = threading.Lock()  # no job is queued behind the stop marks
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, runners))]
        for thread in self._threads:
            thread.start()

    def __call__(self, pairs: Sequence[Pair]) -> np.ndarray:
        job = _Job(pairs)
        with self._close_lock:
            closed = self._closed
            if not closed:
                self._jobs.put(job)
        if closed:  # a request that took the model just before a swap: run it unbatched
            return self._run(list(pairs))
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def close(self) -> None:
        """Finish what is queued, then stop the runners (after a model swap): each runner
        takes one stop mark and ends, so every job queued before them is run."""
        with self._close_lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(_STOP)

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, size, stop = [first], len(first.pairs), False
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_size:
            timeout = deadline - time.monotonic()
            try:
                job = self._jobs.get(timeout=timeout) if timeout > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stop = True
                break
            batch.append(job)
            size += len(job.pairs)
        return batch, stop

    def _loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            pairs = [pair for job in batch for pair in job.pairs]
            try:
                rows = self._run(pairs)
            except BaseException as exc:  # every waiting request learns of it; the loop lives on
                for job in batch:
                    job.error = exc
                    job.done.set()
            else:
                start = 0
                for job in batch:
                    job.result = rows[start:start + len(job.pairs)]
                    start += len(job.pairs)
                    job.done.set()
            if stop:
                return
