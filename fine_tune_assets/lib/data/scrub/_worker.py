"""Entry points of the scrub worker processes, kept free of heavy imports.

Presidio imports Hugging Face ``transformers`` (and so ``torch``) at import time for engines this
project does not use here; that is ~4.5 s of every worker's start-up on this machine. A spawned
worker only scrubs, so before importing Presidio it marks both as unavailable (Presidio and thinc
treat them as optional), unless something in the process imported them already.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

_SCRUBBER = None


def init(policy) -> None:
    """Pool initializer: build this process's Scrubber once."""
    global _SCRUBBER
    for heavy in ("transformers", "torch"):
        if heavy not in sys.modules:
            sys.modules[heavy] = None  # type: ignore[assignment]
    from .scrubber import Scrubber

    _SCRUBBER = Scrubber(policy)


def scrub_chunk(chunk: list[tuple[Hashable, Any]], batch_size: int):
    """Scrub one batch of (key, messages); returns [(key, ScrubResult)]."""
    assert _SCRUBBER is not None, "worker not initialised"
    results = _SCRUBBER.scrub_many([messages for _, messages in chunk], batch_size=batch_size)
    return [(key, result) for (key, _), result in zip(chunk, results)]
