"""Quality gates evaluated before a dataset version may be published.

Each gate returns a ``GateResult`` with its threshold, observed value and verdict: the Dagster asset
checks report them, the publisher refuses to publish unless every blocking gate passed, and the
registry keeps them for auditors.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ..common.parquet import iter_rows
from .content_cache import ContentCache
from .expectations import run_suite

RESIDUAL_CODE_VERSION = "residual-1"
OPENAI_MINIMUM_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 100


@dataclass
class GateResult:
    name: str
    passed: bool
    blocking: bool
    observed: float | int | None
    threshold: float | int | str | None
    description: str
    severity: str = "ERROR"  # ERROR fails the gate; WARN passes with a warning
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def residual_cache(validated, policy) -> ContentCache:
    """Residual findings by record id, for records scrubbed under one scrub identity, scanned under ``policy``."""
    staging = Path(validated.folder).parents[1]  # staging/validate/<data version>
    scrub_identity = validated.summary["cumulative"].get("scrub", {}).get("cache_identity", validated.data_version)
    schema = pa.schema([pa.field("key", pa.string()), pa.field("findings", pa.string())])
    return ContentCache(staging, "residual_pii", {"code": RESIDUAL_CODE_VERSION, "scrub": scrub_identity,
                                                  "policy": policy.hash}, schema)


def _residual_findings(validated_path: Path, policy, cache: ContentCache | None) -> Iterator[list[str]]:
    """The entity types the second scan finds in each record; from ``cache`` for records scanned before."""
    from .scrub import residual_pii

    def scan(messages_json: str) -> list[str]:
        return [t for m in json.loads(messages_json) for t, _ in residual_pii(m["content"], policy)]

    if cache is None:
        for row in iter_rows(validated_path, columns=["messages_json"]):
            yield scan(row["messages_json"])
        return
    with cache.reading() as cached, duckdb.connect() as con, cache.writer() as new:
        cursor = con.execute(f"SELECT i.record_id, i.messages_json, c.findings FROM read_parquet(?) AS i "
                             f"LEFT JOIN {cached} AS c ON c.key = i.record_id", [str(validated_path)])
        while rows := cursor.fetchmany(1024):
            for record_id, messages_json, findings in rows:
                if findings is None:
                    found = scan(messages_json)
                    new.write({"key": record_id, "findings": json.dumps(found)})
                else:
                    found = json.loads(findings)
                yield found
    cache.compact()


def residual_pii_gate(validated_path: Path, policy, cache: ContentCache | None = None) -> GateResult:
    """Second, independent scan of the scrubbed output: structured PII, and names in cue slots.

    ``cache`` (``residual_cache``): records scanned by an earlier run under the same scrub output and
    policy are not scanned again.
    """
    by_type: Counter = Counter()
    records_with_pii = 0
    for found in _residual_findings(validated_path, policy, cache):
        by_type.update(found)
        records_with_pii += bool(found)
    total = sum(by_type.values())
    return GateResult(
        "no_residual_pii", total == 0, True, total, 0,
        "Second scan of the scrubbed records for structured PII (e-mail, phone, SSN, card, IBAN, IP, ids) and "
        "for names after cue phrases in any case ('my name is ...', 'thanks, ...')",
        details={"findings_by_type": dict(sorted(by_type.items())), "records_with_findings": records_with_pii})


def quarantine_rate_gate(inputs: int, quarantined: int, ceiling: float) -> GateResult:
    rate = quarantined / inputs if inputs else 0.0
    return GateResult("quarantine_rate", rate <= ceiling, True, round(rate, 4), ceiling,
                      "Share of input records quarantined at any stage",
                      details={"inputs": inputs, "quarantined": quarantined})


def minimum_examples_gate(accepted: int, minimum: int = OPENAI_MINIMUM_EXAMPLES,
                          recommended: int = RECOMMENDED_EXAMPLES) -> GateResult:
    passed = accepted >= minimum
    severity = "ERROR" if not passed else ("WARN" if accepted < recommended else "ERROR")
    note = "" if accepted >= recommended else f" (fewer than the {recommended} recommended)"
    return GateResult("minimum_examples", passed, True, accepted, minimum,
                      f"Accepted examples; OpenAI's fine-tuning API requires {minimum}{note}", severity=severity)


def expectation_suite_gate(validated_path: Path, max_tokens: int) -> GateResult:
    outcomes = run_suite(validated_path, max_tokens)
    failed = [o for o in outcomes if not o.success]
    return GateResult("expectation_suite", not failed, True, len(outcomes) - len(failed), len(outcomes),
                      "Great Expectations suites validated_records and validated_messages",
                      details={"expectations": [o.to_dict() for o in outcomes]})


@dataclass(frozen=True)
class GateSettings:
    quarantine_rate_ceiling: float = 0.25
    min_examples: int = OPENAI_MINIMUM_EXAMPLES
    max_tokens: int = 4096


GATE_NAMES = ("expectation_suite", "no_residual_pii", "quarantine_rate", "minimum_examples")


def evaluate_gate(name: str, validated, policy, settings: GateSettings) -> GateResult:
    """One gate on a validated stage output; cached in its staging folder (same data + settings = same verdict)."""
    from ..common.hashing import sha256_json
    from ..common.parquet import atomic_write_bytes

    key = sha256_json({"gate": name, "settings": asdict(settings), "policy": policy.hash})[:16]
    cache = Path(validated.folder) / "gates" / f"{name}-{key}.json"
    if cache.exists():
        return GateResult(**json.loads(cache.read_text()))
    cumulative = validated.summary["cumulative"]
    if name == "expectation_suite":
        result = expectation_suite_gate(validated.records_path, settings.max_tokens)
    elif name == "no_residual_pii":
        result = residual_pii_gate(validated.records_path, policy, residual_cache(validated, policy))
    elif name == "quarantine_rate":
        result = quarantine_rate_gate(cumulative["inputs"], cumulative["quarantined"],
                                      settings.quarantine_rate_ceiling)
    elif name == "minimum_examples":
        result = minimum_examples_gate(validated.summary["records"], settings.min_examples)
    else:
        raise KeyError(f"unknown gate {name!r}; known: {', '.join(GATE_NAMES)}")
    atomic_write_bytes(cache, json.dumps(result.to_dict(), indent=2).encode())
    return result


def evaluate_gates(validated, policy, settings: GateSettings) -> list[GateResult]:
    return [evaluate_gate(name, validated, policy, settings) for name in GATE_NAMES]
