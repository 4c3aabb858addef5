"""Scrub on Ray Data: the local pool's chunks, scrubbed by the local pool's worker functions, in Ray actors.

``scrub_conversations(..., executor="ray")`` lands here. Why its output is byte-identical to the
local pool's, and so carries the same data version:

* The chunks are the local pool's (``pool._chunks``: 64 conversations, closed early at ~60k
  characters), cut in this process, so a conversation is never split. Everything that depends on
  the whole conversation (one decision per person, ``<PERSON_1>`` numbering: ``consistency.py``)
  sees the same messages, and spaCy sees the same first-round batches.
* Each chunk travels pickled, as one row and one block of a Ray Dataset. Nothing is converted to
  Arrow types on the way: Arrow would give a message the keys of the others, as ``None``.
* Each actor builds one Scrubber in ``__init__`` through ``_worker.init`` and scrubs a chunk with
  ``_worker.scrub_chunk``, the two functions the local pool's worker processes run. It first checks
  that its node computes the driver's policy hash and pseudonym-key fingerprint (``check_same_policy``).
* Results come back in input order (``preserve_order``). Each carries its chunk's sequence number,
  and the driver checks it, so an order mistake fails loudly.

Ray is started here only when no Ray is running in this process (a caller's or a test's
``ray.init`` is used as is and left running). With ``RAY_ADDRESS`` set, as in a Ray job on a
cluster, it connects to that cluster. Otherwise it starts a local Ray of ``workers`` CPUs, without
the dashboard. It shuts Ray down (or disconnects) when done. Worker output stays out of this
process (``log_to_driver=False``). Ray Data's console messages are cut to errors while scrubbing;
its full log stays in the session's ``ray-data.log``.

The admitted input is held, pickled, in this process and in Ray's object store (spilled to disk
beyond its memory) for the run. That costs about the input's size and no more than that.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import socket
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import _worker

if TYPE_CHECKING:
    from .policy import ScrubPolicy

PICKLE_PROTOCOL = 5


class ScrubActor:
    """One Presidio engine per actor, built once (as the local pool's worker initializer does)."""

    def __init__(self, policy: ScrubPolicy, batch_size: int, key_fingerprint: str | None = None):
        check_same_policy(policy, key_fingerprint)
        _worker.init(policy)
        self.batch_size = batch_size

    def __call__(self, batch):
        import pyarrow as pa

        results = [pickle.dumps(_worker.scrub_chunk(pickle.loads(chunk), self.batch_size), PICKLE_PROTOCOL)
                   for chunk in batch.column("chunk").to_pylist()]
        return pa.table({"seq": batch.column("seq"), "results": pa.array(results, pa.large_binary())})


def check_same_policy(policy: ScrubPolicy, key_fingerprint: str | None = None) -> None:
    """Refuse to scrub on a node whose recognizers file, detection libraries or pseudonym key differ from
    the driver's.

    The policy arrives with the driver's hash cached, and the data version names that hash. A copy
    computes it again from this node's files and installed versions. On a cluster, a node with
    another ``recognizers.yaml`` at that path, or another Presidio or spaCy, would otherwise scrub
    differently under the driver's identity. The key is read from each node's environment, so its
    fingerprint (``pseudonyms.key_fingerprint``; part of the data version too) is compared as well.
    """
    from .pseudonyms import key_fingerprint as fingerprint_of

    here = dataclasses.replace(policy).hash
    if here != policy.hash:
        raise RuntimeError(f"scrub policy {policy.hash[:12]} is {here[:12]} on this Ray node: its recognizers "
                           f"file ({policy.recognizers_file}) or its detection libraries differ from the driver's")
    if policy.uses_pseudonyms and fingerprint_of(policy) != key_fingerprint:
        raise RuntimeError(f"the pseudonym key in {policy.pseudonym_key_env} on this Ray node is not the driver's "
                           "(their fingerprints differ): its pseudonyms would not match the others'")


def scrub_on_ray(chunks: Iterable[list[tuple[Hashable, Any]]], policy: ScrubPolicy, workers: int,
                 batch_size: int, progress: Callable[[int], None] | None = None) -> Iterator[tuple[Hashable, Any]]:
    """Yield ``(key, ScrubResult)`` for each item of ``chunks``, in input order, from ``workers`` Ray actors."""
    rows = [{"seq": seq, "chunk": pickle.dumps(chunk, PICKLE_PROTOCOL)} for seq, chunk in enumerate(chunks)]
    if not rows:
        return
    try:
        import ray.data  # noqa: F401 - here, not at the top: only this executor pays for importing Ray
    except ImportError as exc:
        raise RuntimeError("the scrub executor 'ray' needs Ray Data: pip install -e '.[ray]'") from exc
    with ray_session(workers), _quiet_ray_data():
        dataset = _dataset(rows, policy, max(1, min(workers, len(rows))), batch_size)  # an idle actor costs an engine
        del rows  # the dataset holds them in the object store now
        done = 0
        for expected, row in enumerate(dataset.iter_rows()):
            if row["seq"] != expected:
                raise RuntimeError(f"Ray Data returned chunk {row['seq']} where chunk {expected} was due")
            for pair in pickle.loads(row["results"]):
                yield pair
                done += 1
            if progress:
                progress(done)


def _dataset(rows: list[dict], policy: ScrubPolicy, workers: int, batch_size: int):
    import ray.data

    from .pseudonyms import key_fingerprint

    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # progress goes through ``progress``, like the local pool's
    try:
        # Each Dataset takes a copy of the current context when it is created.
        return ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ScrubActor, fn_constructor_kwargs={"policy": policy, "batch_size": batch_size,
                                               "key_fingerprint": key_fingerprint(policy)},
            batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1, udf_modifying_row_count=False)
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved


@contextmanager
def ray_session(workers: int):
    """Ray for this run: the one already initialised in this process, the cluster at ``RAY_ADDRESS``,
    or a local Ray of ``workers`` CPUs. Shut down (or disconnected) afterwards unless it was already up."""
    import ray

    if ray.is_initialized():
        yield
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=max(1, workers), include_dashboard=False, **quiet)
    try:
        yield
    finally:
        ray.shutdown()


CONNECT_TIMEOUT_S = 10


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in seconds, in one line, when ``RAY_ADDRESS`` names a host and port nothing answers on
    (``ray.init`` would retry for minutes). ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise RuntimeError(f"RAY_ADDRESS={address!r} is not HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RuntimeError(f"no Ray cluster answers at RAY_ADDRESS={address} ({exc.strerror or exc}); start it, "
                           "or unset RAY_ADDRESS to scrub on a local Ray") from None


@contextmanager
def _quiet_ray_data():
    """Ray Data's console handler at ERROR for the run: its progress and per-run INFO lines would
    otherwise land in the caller's stderr. Its file handler (``ray-data.log``) keeps everything."""
    import ray.data  # noqa: F401 - configures the "ray.data" logger's handlers

    handlers = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)
