"""Findings as plain tuples, and how overlapping or adjacent ones are settled.

Shared by the per-text analysis, the per-conversation decisions (``consistency.py``) and the
residual check, so that all three settle overlaps the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from .operators import PLACEHOLDER_RE

Finding = tuple[str, int, int, float]  # entity_type, start, end, score
STRUCTURED = {"EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
              "EMPLOYEE_ID", "ACCOUNT_NUMBER"}
SOFT = {"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"}


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep non-overlapping findings.

    A finding inside a longer one goes (the street name inside an address, the number inside a
    phone number: the longer span is replaced anyway and names the type); of partly overlapping
    findings the highest score wins, then the longest span, then the earliest.
    """
    # drop findings strictly inside a longer one: sweep by start, longest first
    findings = list(findings)
    structured = [f for f in findings if f[0] in STRUCTURED]
    if structured:  # a name or place span never swallows an e-mail, card or IBAN inside it
        findings = [
            f for f in findings
            if f[0] not in SOFT or not any(f[1] <= g[1] and g[2] <= f[2] for g in structured)
        ]
    outer: list[Finding] = []
    reach = -1
    reach_len = 0
    for f in sorted(findings, key=lambda f: (f[1], -(f[2] - f[1]))):
        if f[2] <= reach and (f[2] - f[1]) < reach_len:
            continue
        outer.append(f)
        if f[2] > reach:
            reach, reach_len = f[2], f[2] - f[1]
    # then the highest score, the longest span, the earliest start wins among partial overlaps
    chosen: list[Finding] = []
    taken: list[tuple[int, int]] = []  # sorted, disjoint
    for f in sorted(outer, key=lambda f: (-f[3], -(f[2] - f[1]), f[1], f[0])):
        i = bisect.bisect_left(taken, (f[1], f[1]))
        left_ok = i == 0 or taken[i - 1][1] <= f[1]
        right_ok = i == len(taken) or taken[i][0] >= f[2]
        if left_ok and right_ok:
            taken.insert(i, (f[1], f[2]))
            chosen.append(f)
    chosen.sort(key=lambda f: f[1])
    return chosen


def merge_adjacent(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """Join same-type findings separated only by spaces ("Anna" + "Kowalska" -> one person)."""
    out: list[Finding] = []
    for f in findings:
        if out and out[-1][0] == f[0] and f[1] >= out[-1][2] and text[out[-1][2]:f[1]].strip(" ") == "":
            prev = out.pop()
            f = (f[0], prev[1], f[2], max(prev[3], f[3]))
        out.append(f)
    return out


def protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in PLACEHOLDER_RE.finditer(text)] if "<" in text else []
