"""Which adapter a new one must defend against: the one holding ``production``.

A retrained adapter (by a drift or erasure trigger, or by hand) is compared with it on the new
version's held-out split (``evaluate.evaluate_adapter(champion=...)``), overall and on the records the
champion's dataset version never held. Only an adapter on the same base model can answer the same
prompts through the same weights, so another base model is reported as not comparable.
"""

from __future__ import annotations

import json

from ..registry.connection import connect
from ..registry.stages import current_stages

CHAMPION_STAGE = "production"


def find_champion(registry, adapter_id: str, base_identity_hash: str) -> tuple[dict | None, str]:
    """(champion request or None, why there is none): {adapter_id, adapter_dir, known_record_ids}."""
    with connect(registry, read_only=True) as con:
        holder = current_stages(con).get(CHAMPION_STAGE)
        if holder is None:
            return None, f"no adapter holds {CHAMPION_STAGE}: nothing to compare with"
        if holder == adapter_id:
            return None, f"this adapter holds {CHAMPION_STAGE} itself"
        row = con.execute("SELECT path, dataset_version, base_model FROM adapters WHERE adapter_id = ?",
                          [holder]).fetchone()
        if row is None:
            return None, f"the {CHAMPION_STAGE} adapter {holder[:12]} is no longer registered"
        path, version, base = row
        if json.loads(base).get("identity_hash") != base_identity_hash:
            return None, (f"the {CHAMPION_STAGE} adapter {holder[:12]} was trained on another base model: "
                          "not comparable on the same weights")
        known = [r for (r,) in con.execute("SELECT DISTINCT record_id FROM dataset_records WHERE version_id = ?",
                                           [version]).fetchall()]
    return {"adapter_id": holder, "adapter_dir": path, "dataset_version": version, "known_record_ids": known}, ""
