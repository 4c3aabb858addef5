"""Scrub a stream of conversations, in worker processes when there is enough work.

Why processes: spaCy and Presidio hold the GIL and spaCy's own ``n_process`` gains nothing here,
while two processes, each with its own engine, nearly double throughput on two cores. Workers
start with the ``spawn`` context (safe with threads and in Dagster's step processes) and take a
few seconds to load, so small inputs are scrubbed in this process instead. Input is read lazily
and at most ``8 x workers`` batches are in flight, so memory stays flat on large datasets.

``executor="ray"`` scrubs the same chunks with the same worker functions in Ray Data actors
(``ray_pool.py``): the same output, so the same data version.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from . import _worker

if TYPE_CHECKING:  # the CLI imports EXECUTORS from here to build its parser: no pydantic for that
    from .policy import ScrubPolicy

Item = tuple[Hashable, Sequence[dict[str, Any]]]

# where the chunks are scrubbed: this machine's process pool, or Ray actors (``ray_pool.py``)
EXECUTORS = ("local", "ray")


def check_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown scrub executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    return executor


_LOCAL: dict[tuple, Any] = {}


def scrubber_for(policy: ScrubPolicy):
    """One Scrubber per policy and pseudonym key per process (engine construction is the slow part)."""
    from .pseudonyms import key_fingerprint
    from .scrubber import Scrubber

    key = (policy.hash, key_fingerprint(policy))  # the key is read from the environment, which can change
    if key not in _LOCAL:
        _LOCAL.clear()
        _LOCAL[key] = Scrubber(policy)
    return _LOCAL[key]


MAX_CHUNK_CHARS = 60_000
# Results come back in input order, so a slow batch at the head holds the rest: enough batches in
# flight keep every worker busy meanwhile (each is at most ~60k characters, so memory stays small).
IN_FLIGHT_PER_WORKER = 8


def _size(messages: Sequence[dict[str, Any]]) -> int:
    total = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return total


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Batches of ``size`` conversations, closed early at ~60k characters so that a
    conversation with a pasted log does not leave the other workers idle."""
    chunk: list[Item] = []
    chars = 0
    for item in items:
        chunk.append(item)
        chars += _size(item[1])
        if len(chunk) >= size or chars >= MAX_CHUNK_CHARS:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def scrub_conversations(
    items: Iterable[Item],
    policy: ScrubPolicy,
    workers: int = 2,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    min_parallel: int | None = None,
    executor: str = "local",
) -> Iterator[tuple[Hashable, Any]]:
    """Yield ``(key, ScrubResult)`` for each ``(key, messages)`` in input order (streaming).

    ``workers > 1`` uses that many spawned processes once at least ``min_parallel`` conversations
    (default ``4 x workers x batch_size``) are waiting; below that the work is done here.
    ``progress(done)`` is called after every batch with the number of conversations done so far.
    ``executor="ray"``: the same chunks on ``workers`` Ray actors, whatever the input size (``ray_pool.py``).
    """
    check_executor(executor)
    batch_size = max(1, int(batch_size))
    chunks = _chunks(items, batch_size)
    if executor == "ray":
        from .ray_pool import scrub_on_ray  # imports Ray only on this path

        yield from scrub_on_ray(chunks, policy, workers, batch_size, progress)
        return
    threshold = min_parallel if min_parallel is not None else 4 * max(1, workers) * batch_size
    head: list[list[Item]] = []
    if workers > 1:
        buffered = 0
        for chunk in chunks:
            head.append(chunk)
            buffered += len(chunk)
            if buffered >= threshold:
                break
    stream = itertools.chain(head, chunks)
    if workers <= 1 or sum(len(c) for c in head) < threshold:
        yield from _in_process(stream, policy, batch_size, progress)
    else:
        yield from _in_workers(stream, policy, workers, batch_size, progress)


def _in_process(chunks, policy, batch_size, progress):
    scrubber = scrubber_for(policy)
    done = 0
    for chunk in chunks:
        results = scrubber.scrub_many([messages for _, messages in chunk], batch_size=batch_size)
        for (key, _), result in zip(chunk, results):
            yield key, result
        done += len(chunk)
        if progress:
            progress(done)


def _in_workers(chunks, policy, workers, batch_size, progress):
    ctx = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker.init,
                                   initargs=(policy,))
    pending: deque = deque()
    done = 0
    try:
        for chunk in chunks:
            pending.append(executor.submit(_worker.scrub_chunk, chunk, batch_size))
            while len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                for pair in pending.popleft().result():
                    yield pair
                    done += 1
                if progress:
                    progress(done)
        while pending:
            for pair in pending.popleft().result():
                yield pair
                done += 1
            if progress:
                progress(done)
    finally:
        for fut in pending:
            fut.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
