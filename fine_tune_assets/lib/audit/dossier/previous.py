"""Which adapter this one is compared against, and the rule that chose it.

In this order: the adapter this one replaced in a stage (``previous_adapter_id`` of its newest promotion);
else the newest adapter created before this one on the same dataset lineage (this dataset version or one of
its ``parent_version`` ancestors); else none.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...registry.ledger import EventKind
from .events import payload

LINEAGE_RULE = ("newest adapter created before this one on the same dataset lineage (this dataset version or an "
                "ancestor); this adapter has not replaced another in a stage")


@dataclass(frozen=True)
class Previous:
    """The previous adapter (None: there is none), why it was chosen, and its evaluation if it has one."""

    adapter_id: str | None = None
    rule: str | None = None
    evaluation: dict | None = None  # its newest evaluations row
    report: dict | None = None  # its eval_report.json


def previous_adapter(adapter: dict, events: list[dict], parents: dict[str, str | None],
                     all_adapters: list[dict]) -> tuple[str | None, str | None]:
    """(adapter id, rule) of the adapter to compare ``adapter`` against; (None, None) when there is none.

    ``parents`` maps every dataset version to its parent version; ``all_adapters`` is newest first.
    """
    aid = adapter["adapter_id"]
    for e in reversed(events):
        p = payload(e)
        if e["kind"] == EventKind.PROMOTION and p.get("adapter_id") == aid and p.get("previous_adapter_id"):
            rule = f"held stage {p.get('stage')!r} before this adapter was promoted to it (ledger seq {e['seq']})"
            return p["previous_adapter_id"], rule
    lineage, version = set(), adapter["dataset_version"]
    while version and version not in lineage:
        lineage.add(version)
        version = parents.get(version)
    earlier = [a for a in all_adapters if a["adapter_id"] != aid and a["created_at"] < adapter["created_at"]
               and a["dataset_version"] in lineage]
    if earlier:
        return earlier[0]["adapter_id"], LINEAGE_RULE
    return None, None
