"""Who holds each adapter stage, read from the ``adapter_stages`` table.

The holder of a stage is stored nowhere: it is derived by replaying the stage's transitions in ``seq``
order, a stack per stage (``promote`` pushes, ``rollback`` pops; the rule and the checks around it are
``audit.promotion``'s). Reading it lives here, below every domain, because the resolver accepts a
stage name wherever an adapter id is asked for.
"""

from __future__ import annotations

import re
from datetime import UTC

from .connection import rows_as_dicts

STAGE_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
"""A stage name (``staging``, ``production``): what ``promote`` accepts and ``access.yaml`` may protect."""


def _rows(con, where: str = "", params: list | None = None) -> list[dict]:
    rows = rows_as_dicts(con.execute(f"SELECT * FROM adapter_stages {where} ORDER BY seq", params or []))
    for row in rows:
        row["created_at"] = row["created_at"].astimezone(UTC).isoformat()
    return rows


def stage_stacks(con) -> dict[str, list[str]]:
    """{stage: [adapter ids, bottom to top]}: the promotions still in effect, replayed from the table."""
    stacks: dict[str, list[str]] = {}
    for row in _rows(con):
        stack = stacks.setdefault(row["stage"], [])
        if row["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != row["adapter_id"]:  # only if the table was edited by hand
                stack.append(row["adapter_id"])
        else:
            stack.append(row["adapter_id"])
    return {stage: stack for stage, stack in stacks.items() if stack}


def current_stages(con) -> dict[str, str]:
    """{stage: adapter_id} for every stage that has a holder."""
    return {stage: stack[-1] for stage, stack in sorted(stage_stacks(con).items())}


def stage_history(con, adapter_id: str | None = None, stage: str | None = None) -> list[dict]:
    """Transitions, oldest first. With ``adapter_id``: those that moved it into or out of a stage
    (it is ``adapter_id`` or ``previous_adapter_id`` of the row); with ``stage``: that stage's."""
    clauses, params = [], []
    if adapter_id is not None:
        clauses.append("(adapter_id = ? OR previous_adapter_id = ?)")
        params += [adapter_id, adapter_id]
    if stage is not None:
        clauses.append("stage = ?")
        params.append(stage)
    return _rows(con, ("WHERE " + " AND ".join(clauses)) if clauses else "", params)
