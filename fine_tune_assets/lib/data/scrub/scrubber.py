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
from typing import Any

from presidio_analyzer import RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonResult

from .consistency import ConversationDecisions, person_words, propagate_names
from .cues import cue_names
from .engine import build_analyzer, residual_entities, structured_recognizers
from .nlp import LANGUAGE
from .operators import (
    PlaceholderNumbering,
    PlaceholderOperator,
    Pseudonymizer,
    PseudonymOperator,
)
from .policy import ScrubPolicy
from .result import ScrubResult
from .schema import PLACEHOLDER, PSEUDONYMIZE
from .spans import Finding, merge_adjacent, protected_spans, resolve_overlaps

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
        protected = protected_spans(text)
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
        """Anonymized text and the spans of the replacements that made it shorter.

        Only those can bring a word into a neighbour's context window (a placeholder as long as its
        value or longer moves words apart, never closer), so only they are analysed again.
        """
        if not findings:
            return text, []
        for etype, start, end, _ in findings:  # number in reading order
            if self.policy.operator_for(etype).type == PLACEHOLDER:
                numbering.number(text[start:end], etype)
        results = [AnonResult(entity_type=e, start=s, end=en, score=sc) for e, s, en, sc in findings]
        engine_result = self.anonymizer.anonymize(
            text=text, analyzer_results=results, operators=dict(operators), merge_entities_with_spaces=False
        )
        items = sorted(engine_result.items, key=lambda item: item.start)
        pairs = zip(sorted(findings, key=lambda f: f[1]), items)
        return engine_result.text, [(item.start, item.end) for f, item in pairs if item.end - item.start < f[2] - f[1]]

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
                new, shrunk = self._replace(current[k], fs, numberings[ci], operators[ci])
                if new != current[k]:
                    current[k] = new
                    if shrunk:
                        units.extend((k, a, b) for a, b in _neighbourhoods(new, shrunk))
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
        """Apply each conversation's decisions to all its messages (``consistency.py``)."""
        decisions: dict[int, ConversationDecisions] = {}
        for k, fs in found.items():
            if fs:
                decisions.setdefault(slots[k][0], ConversationDecisions()).learn(texts[k], fs)
        for k, fs in found.items():
            conversation = decisions.get(slots[k][0])
            if conversation is not None:
                found[k] = conversation.apply(texts[k], fs)


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
    """Second, pattern-only scan of (scrubbed) text for PII; never returns raw values.

    Structured types (e-mail, phone, SSN, card, IBAN, IP and the custom ids) with no context boost,
    at or above ``policy.residual_threshold``, and names in cue slots in any case ("thanks, amaya",
    "my name is amaya okoro": ``cues.py``) when the policy scrubs PERSON with its name heuristics.
    Both are things the scrubber also finds, so a blocking check on them has no false alarms from
    free text; a hit means a leak.
    """
    if not text:
        return []
    recognizers, wanted = _residual_recognizers(policy)
    protected = protected_spans(text)
    found: list[Finding] = []
    for rec in recognizers:
        for r in rec.analyze(text, list(rec.supported_entities), None) or []:
            if r.entity_type not in wanted or r.score < policy.residual_threshold:
                continue
            if any(r.start < pe and r.end > ps for ps, pe in protected):
                continue
            found.append((r.entity_type, r.start, r.end, float(r.score)))
    if "PERSON" in policy.entities and policy.name_heuristics:
        floor = max(policy.residual_threshold, policy.threshold_for("PERSON"))
        allow = set(policy.allow_list)
        found += [("PERSON", s, e, score) for s, e, score, _ in cue_names(text)
                  if score >= floor and text[s:e] not in allow]
    return [(f[0], round(f[3], 3)) for f in resolve_overlaps(found)]
