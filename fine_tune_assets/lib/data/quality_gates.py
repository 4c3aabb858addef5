"""Quality gates evaluated before a dataset version may be published.

Each gate returns a ``GateResult`` with its threshold, observed value and verdict: the Dagster asset
checks report them, the publisher refuses to publish unless every blocking gate passed, and the
registry keeps them for auditors.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..common.parquet import iter_rows
from .expectations import run_suite, tables_from_rows

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


def residual_pii_gate(validated_path: Path, policy) -> GateResult:
    """Second, independent scan of the scrubbed output: structured PII, and names in cue slots."""
    from .scrub import residual_pii

    by_type: Counter = Counter()
    records_with_pii = 0
    for row in iter_rows(validated_path, columns=["messages_json"]):
        found = [t for m in json.loads(row["messages_json"]) for t, _ in residual_pii(m["content"], policy)]
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
    records, messages = tables_from_rows(iter_rows(validated_path))
    outcomes = run_suite(records, messages, max_tokens)
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
        result = residual_pii_gate(validated.records_path, policy)
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
