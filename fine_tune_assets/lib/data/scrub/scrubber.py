"""Scrub chat conversations: detect with Presidio's analyzer, replace with Presidio's anonymizer.

The analyzer runs over a batch of messages at once (spaCy ``nlp.pipe``, as Presidio's
BatchAnalyzerEngine does) and remembers results for repeated texts (the same system prompt in
every conversation is analysed once). Overlapping findings are resolved here - highest score,
then longest span - before the anonymizer sees them, so placeholders are numbered in reading order.
"""

from __future__ import annotations

import bisect
import copy
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex
from presidio_analyzer import RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonResult

from .engine import build_analyzer, residual_entities, structured_recognizers
from .names import name_class
from .nlp import LANGUAGE
from .operators import (
    PLACEHOLDER_RE,
    PlaceholderNumbering,
    PlaceholderOperator,
    Pseudonymizer,
    PseudonymOperator,
)
from .policy import ScrubPolicy
from .schema import PLACEHOLDER, PSEUDONYMIZE

Finding = tuple[str, int, int, float]  # entity_type, start, end, score
STRUCTURED = {"EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
              "EMPLOYEE_ID", "ACCOUNT_NUMBER"}
SOFT = {"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"}


@dataclass
class ScrubResult:
    """One scrubbed conversation: messages in the same order and shape, and counts per entity type."""

    messages: list[dict[str, Any]]
    entity_counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_findings(self) -> int:
        return sum(self.entity_counts.values())


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


_WORD = regex.compile(r"\p{L}[\p{L}'’-]{2,}")


def person_words(text: str, findings: Sequence[Finding]) -> set:
    """Words of the PERSON findings that are safe to look for elsewhere (not English words)."""
    words = set()
    for etype, start, end, _ in findings:
        if etype != "PERSON":
            continue
        for w in _WORD.findall(text[start:end]):
            w = w.removesuffix("'s").removesuffix("’s")
            if len(w) >= 3 and name_class(w) in ("name", "name_noun", "unknown"):
                words.add(w)
    return words


def propagate_names(text: str, findings: Sequence[Finding], words: Iterable[str]) -> list[Finding]:
    """Other mentions of a detected person's names are the same person ("Anna Kowalska ... Anna").

    Whole-word, case-sensitive (case-insensitive in an all-lower-case text); score 0.6.
    """
    words = [w for w in words if w]
    if not words or not text:
        return list(findings)
    lower_text = text == text.lower()
    added: list[Finding] = []
    taken = sorted([(f[1], f[2]) for f in findings] + _protected_spans(text))
    alternation = "|".join(regex.escape(w) for w in sorted(set(words), key=len, reverse=True))
    pattern = regex.compile(rf"(?<![\p{{L}}\d_])(?:{alternation})(?![\p{{L}}\d_])",
                            flags=regex.IGNORECASE if lower_text else 0)
    for m in pattern.finditer(text):
        i = bisect.bisect_left(taken, (m.start(), m.start()))
        if (i == 0 or taken[i - 1][1] <= m.start()) and (i == len(taken) or taken[i][0] >= m.end()):
            added.append(("PERSON", m.start(), m.end(), 0.6))
            taken.insert(i, m.span())
    if not added:
        return list(findings)
    return merge_adjacent(text, sorted(list(findings) + added, key=lambda f: f[1]))


MAX_PIECE = 5000
# after a replacement, this many lines around it are analysed again (whole text when short)
CONTEXT_LINES = 3
SHORT_TEXT = 2000


def _neighbourhoods(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Line-aligned windows around replaced spans: what a replacement can have changed the
    context of. A short text is one window."""
    if len(text) <= SHORT_TEXT or not spans:
        return [(0, len(text))]
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    windows: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        first = max(0, bisect.bisect_right(line_starts, start) - 1 - CONTEXT_LINES)
        last = min(len(line_starts) - 1, bisect.bisect_right(line_starts, end) - 1 + CONTEXT_LINES)
        a = line_starts[first]
        b = line_starts[last + 1] if last + 1 < len(line_starts) else len(text)
        if windows and a <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(b, windows[-1][1]))
        else:
            windows.append((a, b))
    return windows


def split_text(text: str, limit: int = MAX_PIECE) -> list[tuple[int, str]]:
    """(offset, piece) pieces of at most ``limit`` characters, cut after a line break if possible."""
    if len(text) <= limit:
        return [(0, text)]
    pieces = []
    start = 0
    while start < len(text):
        end = min(start + limit, len(text))
        if end < len(text):
            cut = text.rfind("\n", start + limit // 2, end)
            if cut < 0:
                cut = text.rfind(" ", start + limit // 2, end)
            if cut >= 0:
                end = cut + 1
        pieces.append((start, text[start:end]))
        start = end
    return pieces


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in PLACEHOLDER_RE.finditer(text)] if "<" in text else []


class Scrubber:
    """Holds one AnalyzerEngine and one AnonymizerEngine for a policy (building them takes ~1 s)."""

    def __init__(self, policy: ScrubPolicy, cache_size: int = 4096):
        self.policy = policy
        self.analyzer = build_analyzer(policy)
        self.anonymizer = AnonymizerEngine()
        self.anonymizer.add_anonymizer(PlaceholderOperator)
        self.anonymizer.add_anonymizer(PseudonymOperator)
        self._pseudonymizer = (
            Pseudonymizer(policy.pseudonym_key_env, policy.pseudonym_length) if policy.uses_pseudonyms else None
        )
        self._allow = set(policy.allow_list)
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self._cache_size = cache_size

    # ---- detection -----------------------------------------------------------------------
    def postprocess(self, text: str, results: Iterable[RecognizerResult]) -> list[Finding]:
        """Threshold per entity, drop allow-listed values and existing placeholders, resolve overlaps."""
        policy = self.policy
        wanted = set(policy.entities)
        protected = _protected_spans(text)
        kept = []
        for r in results:
            if r.entity_type not in wanted or r.score < policy.threshold_for(r.entity_type):
                continue
            if r.end <= r.start or (self._allow and text[r.start:r.end] in self._allow):
                continue
            if any(r.start < pe and r.end > ps for ps, pe in protected):
                continue
            kept.append((r.entity_type, r.start, r.end, float(r.score)))
        resolved = merge_adjacent(text, resolve_overlaps(kept))
        if "PERSON" in wanted:
            resolved = propagate_names(text, resolved, person_words(text, resolved))
        return resolved

    def analyze(self, text: str) -> list[Finding]:
        """Findings for one text (the per-message path)."""
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Finding]]:
        """Findings for many texts: one spaCy ``pipe`` over the distinct, uncached, non-blank texts.

        Texts longer than ``MAX_PIECE`` characters (pasted logs, documents) are analysed in pieces
        cut at line breaks, so one huge message costs linear time and batches with the others.
        """
        out: list[list[Finding] | None] = [None] * len(texts)
        todo: OrderedDict[str, list[int]] = OrderedDict()
        for i, text in enumerate(texts):
            if not text or not text.strip():
                out[i] = []
            elif text in self._cache:
                self._cache.move_to_end(text)
                out[i] = self._cache[text]
            else:
                todo.setdefault(text, []).append(i)
        if todo:
            pieces: list[tuple[int, int, str]] = []  # (text number, offset, piece)
            distinct = list(todo)
            for n, text in enumerate(distinct):
                pieces.extend((n, off, piece) for off, piece in split_text(text))
            raw: list[list[Any]] = [[] for _ in distinct]
            for (n, off, _), results in zip(pieces, self._analyze_pieces([p for _, _, p in pieces], batch_size)):
                raw[n].extend(
                    RecognizerResult(r.entity_type, r.start + off, r.end + off, r.score) if off else r
                    for r in results
                )
            for n, text in enumerate(distinct):
                findings = self.postprocess(text, raw[n])
                for i in todo[text]:
                    out[i] = findings
                if self._cache_size and len(text) <= 4000:
                    self._cache[text] = findings
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def _analyze_pieces(self, pieces: Sequence[str], batch_size: int) -> Iterable[list[RecognizerResult]]:
        """Presidio results per piece, the spaCy pipeline run as one batch (``nlp.pipe``)."""
        batch = self.analyzer.nlp_engine.process_batch(list(pieces), LANGUAGE, batch_size=batch_size)
        for text, artifacts in batch:
            yield self.analyzer.analyze(text=text, language=LANGUAGE, nlp_artifacts=artifacts)

    # ---- replacement ---------------------------------------------------------------------
    def _operators(self, numbering: PlaceholderNumbering) -> dict[str, OperatorConfig]:
        policy = self.policy
        ops: dict[str, OperatorConfig] = {}
        for entity in [*policy.entities, "DEFAULT"]:
            spec = policy.operator if entity == "DEFAULT" else policy.operator_for(entity)
            if spec.type == PLACEHOLDER:
                ops[entity] = OperatorConfig("placeholder", {"numbering": numbering})
            elif spec.type == PSEUDONYMIZE:
                ops[entity] = OperatorConfig("pseudonymize", {"pseudonymizer": self._pseudonymizer})
            else:
                ops[entity] = OperatorConfig(spec.type, dict(spec.params))
        return ops

    def _replace(self, text, findings, numbering, operators) -> tuple[str, list[tuple[int, int]]]:
        """Anonymized text and the spans of the replacements in it."""
        if not findings:
            return text, []
        for etype, start, end, _ in findings:  # number in reading order
            if self.policy.operator_for(etype).type == PLACEHOLDER:
                numbering.number(text[start:end], etype)
        results = [AnonResult(entity_type=e, start=s, end=en, score=sc) for e, s, en, sc in findings]
        engine_result = self.anonymizer.anonymize(
            text=text, analyzer_results=results, operators=dict(operators), merge_entities_with_spaces=False
        )
        return engine_result.text, [(item.start, item.end) for item in engine_result.items]

    def scrub_conversation(self, messages: Sequence[Mapping[str, Any]]) -> ScrubResult:
        """Scrub the content of every message (every role); other keys are copied untouched."""
        return self.scrub_many([messages])[0]

    def scrub_many(self, conversations: Sequence[Sequence[Mapping[str, Any]]],
                   batch_size: int = 64, max_rounds: int = 3) -> list[ScrubResult]:
        """Scrub several conversations with one batched analysis of all their texts.

        Replacing a value changes the context of its neighbours (a placeholder is shorter than the
        address it replaced, so an address word comes into range), so changed texts are analysed
        again until nothing new is found (at most ``max_rounds`` passes). The output is therefore
        a fixed point: scrubbing it again changes nothing.
        """
        slots: list[tuple[int, int, int | None]] = []  # (conversation, message, part)
        texts: list[str] = []
        for ci, messages in enumerate(conversations):
            for mi, message in enumerate(messages):
                for part, text in _texts_of(message):
                    slots.append((ci, mi, part))
                    texts.append(text)
        by_conv: dict[int, list[int]] = {}
        for k, (ci, _, _) in enumerate(slots):
            by_conv.setdefault(ci, []).append(k)
        numberings = {ci: PlaceholderNumbering("\n".join(texts[k] for k in ks)) for ci, ks in by_conv.items()}
        operators = {ci: self._operators(n) for ci, n in numberings.items()}
        counts: dict[int, Counter] = {ci: Counter() for ci in range(len(conversations))}
        current = list(texts)
        units: list[tuple[int, int, int]] = [(k, 0, len(t)) for k, t in enumerate(texts)]  # (text, start, end)
        for _round in range(max_rounds):
            results_per_unit = self.analyze_many([current[k][a:b] for k, a, b in units], batch_size=batch_size)
            found: dict[int, list[Finding]] = {}
            for (k, a, _), fs in zip(units, results_per_unit):
                found.setdefault(k, []).extend((e, s0 + a, s1 + a, sc) for e, s0, s1, sc in fs)
            for k, fs in found.items():
                if len({a for kk, a, _ in units if kk == k}) > 1:
                    found[k] = merge_adjacent(current[k], resolve_overlaps(fs))
            self._propagate(found, current, slots)
            units = []
            for k, fs in found.items():
                if not fs:
                    continue
                ci = slots[k][0]
                counts[ci].update(f[0] for f in fs)
                new, spans = self._replace(current[k], fs, numberings[ci], operators[ci])
                if new != current[k]:
                    current[k] = new
                    units.extend((k, a, b) for a, b in _neighbourhoods(new, spans))
            if not units:
                break
        results = []
        for ci, messages in enumerate(conversations):
            new_messages = [copy.deepcopy(dict(m)) if isinstance(m, Mapping) else m for m in messages]
            for k in by_conv.get(ci, []):
                if current[k] != texts[k]:
                    _, mi, part = slots[k]
                    _set_text(new_messages[mi], part, current[k])
            results.append(ScrubResult(messages=new_messages, entity_counts=dict(sorted(counts[ci].items()))))
        return results

    def _propagate(self, found: dict[int, list[Finding]], texts: Sequence[str], slots) -> None:
        """A person named in one message of a conversation is the same person in the others."""
        if "PERSON" not in self.policy.entities:
            return
        names: dict[int, set] = {}
        for k, fs in found.items():
            if fs:
                names.setdefault(slots[k][0], set()).update(person_words(texts[k], fs))
        for k, fs in found.items():
            words = names.get(slots[k][0])
            if words:
                found[k] = propagate_names(texts[k], fs, words)


def _texts_of(message: Any):
    """(part index or None, text) for the text in a message: a string, or OpenAI-style content parts."""
    if not isinstance(message, Mapping):
        return
    content = message.get("content")
    if isinstance(content, str):
        yield None, content
    elif isinstance(content, list):
        for i, part in enumerate(content):
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield i, part["text"]


def _set_text(message: dict[str, Any], part: int | None, text: str) -> None:
    if part is None:
        message["content"] = text
    else:
        message["content"][part]["text"] = text


# ---- residual check ----------------------------------------------------------------------------
_RESIDUAL_CACHE: dict[str, tuple[tuple, frozenset]] = {}


def _residual_recognizers(policy: ScrubPolicy):
    key = policy.hash
    if key not in _RESIDUAL_CACHE:
        wanted = residual_entities(policy)
        recs = tuple(r for r in structured_recognizers(policy) if set(r.supported_entities) & wanted)
        _RESIDUAL_CACHE[key] = (recs, frozenset(wanted))
    return _RESIDUAL_CACHE[key]


def residual_pii(text: str, policy: ScrubPolicy) -> list[tuple[str, float]]:
    """Second, pattern-only scan of (scrubbed) text for structured PII; never returns raw values.

    Only structured types (e-mail, phone, SSN, card, IBAN, IP and the custom ids) with no context
    boost, at or above ``policy.residual_threshold``: a hit here is something the scrubber would
    also have found, so a blocking check on it has no false alarms from free text.
    """
    if not text:
        return []
    recognizers, wanted = _residual_recognizers(policy)
    protected = _protected_spans(text)
    found: list[Finding] = []
    for rec in recognizers:
        for r in rec.analyze(text, list(rec.supported_entities), None) or []:
            if r.entity_type not in wanted or r.score < policy.residual_threshold:
                continue
            if any(r.start < pe and r.end > ps for ps, pe in protected):
                continue
            found.append((r.entity_type, r.start, r.end, float(r.score)))
    return [(f[0], round(f[3], 3)) for f in resolve_overlaps(found)]
