"""Scoring one model's greedy answers against the references: pure Python, no model needed.

- ``format_compliance``: share of answers that are, as a whole, valid under the response format. Scored only
  where the *reference* satisfies the format: free-text chats in the same split do not count.
- ``field_accuracy``: exact match of structured fields against the reference (compliance alone can be gamed
  by a model that answers the same category for everything).
- ``domain_term_recall``: of the configured domain terms a reference uses, the share the answer uses too.
"""

from __future__ import annotations

import re

from .spec import EvalSpec


def split_prompt(messages: list[dict]) -> tuple[list[dict], str]:
    """The prompt (everything before the last assistant turn) and that turn's reference answer."""
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return messages[:last], messages[last]["content"]


def _term_pattern(term: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)


def score_generations(spec: EvalSpec, references: list[str], generations: list[str]) -> dict:
    """Format compliance, field accuracy and domain-term recall of one model's answers."""
    fmt = spec.response_format
    applicable = compliant = 0
    field_hits = dict.fromkeys(spec.accuracy_fields, 0)
    per_example = []
    for reference, generation in zip(references, generations, strict=True):
        ref_ok, ref_value = fmt.check(reference)
        ok, value = fmt.check(generation)
        per_example.append({"applicable": ref_ok, "compliant": ok if ref_ok else None})
        if not ref_ok:
            continue
        applicable += 1
        compliant += ok
        if ok and isinstance(value, dict) and isinstance(ref_value, dict):
            for name in spec.accuracy_fields:
                field_hits[name] += value.get(name) == ref_value.get(name)
    terms = [(term, _term_pattern(term)) for term in spec.domain_terms]
    expected = used = 0
    for reference, generation in zip(references, generations, strict=True):
        for _, pattern in terms:
            if pattern.search(reference):
                expected += 1
                used += bool(pattern.search(generation))
    by_field = {name: (hits / applicable if applicable else None) for name, hits in field_hits.items()}
    values = [v for v in by_field.values() if v is not None]
    return {
        "format_compliance": compliant / applicable if applicable else None,
        "n_format_applicable": applicable,
        "field_accuracy": sum(values) / len(values) if values else None,
        "field_accuracy_by_field": by_field,
        "domain_term_recall": used / expected if expected else None,
        "per_example": per_example,
    }
