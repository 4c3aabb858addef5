"""Who may move adapters between stages and erase records: ``config/access.yaml`` maps users to roles.

The rules (``promotion`` and ``erasure`` ask here before they write anything):

- ``promote`` to a protected stage (``production`` unless the file lists others) and ``rollback`` of one
  need ``approver``. Other stages need no role: the retraining sensors promote to ``staging`` on their own.
- ``erase`` needs ``data_steward``.
- Four eyes: whoever launched an adapter's training (``launched_by`` in its lineage) may not promote it to a
  protected stage. ``force`` with a second approver overrides that, and is recorded; the second approver must
  be named in the file with ``approver`` (a wildcard does not count) and be neither the promoter nor the
  trainer. An adapter trained before ``launched_by`` was recorded has no known trainer: the rule cannot be
  checked, so it needs the same override.
- ``trainer`` and ``auditor`` gate nothing here (training is launched in Dagster, which has no login, and
  reading is open to all): they say who does what, for the people reading the file and the dossier.

A user the file does not name holds no role. The user ``"*"`` is the explicit wildcard: its roles are added
to everyone's. Without the file access control is off (callers pass ``OFF``), and the CLI and the dossier say
so; with a file, a malformed one stops every guarded command (``AccessError``) rather than turning it off.

A refusal appends a ``denied`` ledger event {user, action, why, ...} in its own transaction, then raises
``AccessDenied`` (CLI exit 3): attempts are audited too. This catches mistakes and records intent; it is no
security boundary against anyone who can write the registry or this file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..common.hashing import sha256_file
from ..registry.ledger import EventKind, append_event, transaction
from ..registry.stages import STAGE_PATTERN

TRAINER, APPROVER, AUDITOR, DATA_STEWARD = "trainer", "approver", "auditor", "data_steward"
Role = Literal["trainer", "approver", "auditor", "data_steward"]
WILDCARD = "*"
NOT_CONFIGURED = "not configured"
# The states of the four-eyes rule recorded with a promotion.
HELD, OVERRIDDEN, NOT_CHECKED = "held", "overridden", "not checked"


class AccessError(ValueError):
    """``config/access.yaml`` is unusable (the message names the file and the problem)."""


class AccessDenied(Exception):
    """A refused promote, rollback or erase; already recorded as a ``denied`` ledger event."""


class AccessFile(BaseModel):
    """``config/access.yaml`` as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protected_stages: list[str] = Field(["production"], description="Stages whose promote and rollback need "
                                                                     "approver and keep the four-eyes rule")
    users: dict[str, list[Role]] = Field({}, description="user name -> roles; the user '*' gives its roles to "
                                                         "everyone")

    @field_validator("protected_stages")
    @classmethod
    def _stage_names(cls, stages: list[str]) -> list[str]:
        for stage in stages:
            if not STAGE_PATTERN.fullmatch(stage):
                raise ValueError(f"{stage!r} is not a stage name (lowercase letters, digits, '_' or '-')")
        return stages

    @field_validator("users")
    @classmethod
    def _user_names(cls, users: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in users:
            if not name.strip() or name != name.strip():
                raise ValueError(f"user name {name!r} is blank or has surrounding spaces")
        return users


@dataclass(frozen=True)
class AccessPolicy:
    """The loaded file; ``OFF`` (no file) grants everything and checks nothing."""

    source: str | None = None  # the file; None: access control is off
    sha256: str | None = None
    users: Mapping[str, frozenset[str]] = field(default_factory=dict)
    protected_stages: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        return self.source is not None

    def roles(self, user: str) -> frozenset[str]:
        return self.users.get(user, frozenset()) | self.users.get(WILDCARD, frozenset())

    def names(self, user: str, role: str) -> bool:
        """Whether the file names ``user`` with ``role`` itself, not through the wildcard."""
        return user != WILDCARD and role in self.users.get(user, frozenset())

    def protects(self, stage: str) -> bool:
        return stage in self.protected_stages

    def describe(self) -> dict | str:
        """What the ledger records about the rules a decision was made under."""
        if not self.configured:
            return NOT_CONFIGURED
        return {"file": self.source, "sha256": self.sha256, "protected_stages": sorted(self.protected_stages)}


OFF = AccessPolicy()


def _message(path: Path, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(map(str, error["loc"]))
    return f"{path}: {where}: {error['msg']}" if where else f"{path}: {error['msg']}"


def load_access(path: str | Path | None) -> AccessPolicy:
    """Read and validate a roles file (``DataPaths.access``); without one, ``OFF``."""
    if path is None:
        return OFF
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AccessError(f"{path}: cannot read the roles file: {' '.join(str(exc).split())}") from None  # one line
    if not isinstance(raw, dict):
        raise AccessError(f"{path}: a roles file is a mapping with 'users' (and optionally 'protected_stages'), "
                          f"not {type(raw).__name__}")
    if raw.get("users", {}) is None:  # every user commented out
        raw = {**raw, "users": {}}
    try:
        parsed = AccessFile.model_validate(raw)
    except ValidationError as exc:
        raise AccessError(_message(path, exc)) from None
    return AccessPolicy(source=str(path), sha256=sha256_file(path),
                        users={name: frozenset(roles) for name, roles in parsed.users.items()},
                        protected_stages=frozenset(parsed.protected_stages))


def launched_by(adapter: Mapping) -> str | None:
    """Who launched the training of an ``adapters`` row (its lineage's ``launched_by``); None if not recorded."""
    lineage = adapter.get("lineage")
    if isinstance(lineage, str):
        try:
            lineage = json.loads(lineage)
        except ValueError:
            return None
    return (lineage or {}).get("launched_by") if isinstance(lineage, dict) else None


def deny(con, policy: AccessPolicy, user: str, action: str, subject: str, why: str, details: dict) -> NoReturn:
    """Commit a ``denied`` event about ``subject`` on its own, then raise ``AccessDenied``. ``con`` must not be
    inside a transaction: the refusal must outlive the refused operation."""
    with transaction(con):
        append_event(con, EventKind.DENIED, subject, {
            "user": user, "action": action, "why": why, "roles": sorted(policy.roles(user)),
            "access": policy.describe(), **details})
    raise AccessDenied(f"access denied: {user} may not {action}: {why}")


def require(con, policy: AccessPolicy, user: str, role: str, action: str, subject: str, details: dict) -> None:
    """Refuse (``deny``) unless ``user`` holds ``role``; nothing to check when access control is off."""
    if not policy.configured or role in policy.roles(user):
        return
    held = sorted(policy.roles(user))
    whom = f"{user} holds {', '.join(held)}" if held else f"{policy.source} gives {user} no role"
    deny(con, policy, user, action, subject, f"it needs the {role} role and {whom}", {**details, "required": role})


def approve_promotion(con, policy: AccessPolicy, user: str, adapter_id: str, stage: str, trainer: str | None,
                      reason: str, force: bool, second_approver: str | None) -> dict:
    """The approval recorded with a promotion: {access, protected, roles, trained_by, four_eyes,
    four_eyes_problem, second_approver}; refuses (``deny``) what the rules above forbid."""
    record = {"access": policy.describe(), "protected": policy.protects(stage), "roles": sorted(policy.roles(user)),
              "trained_by": trainer, "four_eyes": NOT_CHECKED, "four_eyes_problem": None,
              "second_approver": second_approver}
    if not record["protected"]:
        return record
    action = f"promote {adapter_id[:12]} to {stage}"
    details = {"operation": "promote", "adapter_id": adapter_id, "stage": stage, "reason": reason,
               "trained_by": trainer, "second_approver": second_approver, "forced": force}
    require(con, policy, user, APPROVER, action, adapter_id, details)
    if second_approver is not None:
        wrong = (f"{policy.source} does not name {second_approver} with the approver role"
                 if not policy.names(second_approver, APPROVER) else
                 "the second approver must be someone other than the promoter" if second_approver == user else
                 f"the second approver {second_approver} launched its training" if second_approver == trainer else
                 None)
        if wrong:
            deny(con, policy, user, action, adapter_id, f"second approver refused: {wrong}", details)
    problem = (None if trainer and trainer != user else
               f"{user} launched its training" if trainer else
               "who launched its training is not recorded (trained before launched_by was)")
    if problem is None:
        return {**record, "four_eyes": HELD}
    if not (force and second_approver):
        deny(con, policy, user, action, adapter_id,
             f"four-eyes rule: {problem}; another approver must promote it, or override with --force "
             "--second-approver NAME (recorded)", details)
    return {**record, "four_eyes": OVERRIDDEN, "four_eyes_problem": problem}


def approve_rollback(con, policy: AccessPolicy, user: str, stage: str, subject: str, reason: str) -> dict:
    """The approval recorded with a rollback: {access, protected, roles}; a protected stage needs approver."""
    record = {"access": policy.describe(), "protected": policy.protects(stage), "roles": sorted(policy.roles(user))}
    if record["protected"]:
        require(con, policy, user, APPROVER, f"roll back {stage}", subject,
                {"operation": "rollback", "stage": stage, "reason": reason})
    return record
