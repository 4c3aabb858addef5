"""What scrubbing one conversation returns, in a module of its own.

Why its own module: results come back from worker processes pickled, and unpickling imports the
class's module in the parent. Defined next to the ``Scrubber`` it would import Presidio, and with
it ``transformers`` and ``torch`` (~3 s, holding the GIL while the pool's feeder thread waits), in a
parent that only collects results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScrubResult:
    """One scrubbed conversation: messages in the same order and shape, and counts per entity type."""

    messages: list[dict[str, Any]]
    entity_counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_findings(self) -> int:
        return sum(self.entity_counts.values())
