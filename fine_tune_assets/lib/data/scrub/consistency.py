"""One decision per conversation: what is PII in one message is PII in every message.

Why: a person caught as "Amaya Okoro" in one turn and typed "amaya" in the next would leak in the
second, and a model trained on the pair learns the name. So once a conversation's messages are
analysed, each decision is applied to all of them, case-insensitively and across roles:

* every other occurrence of a scrubbed value, of any entity type, is scrubbed as that type;
* parts of a person's name that are not English words ("okoro", "amaya") are scrubbed wherever
  they appear as whole words ("Ms Okoro", "it's amaya again");
* parts that are English words too ("Mere", "Grace") are scrubbed only where a cue says they are
  a name ("sorry, mere again", "thanks, grace"), not as ordinary words ("a mere formality").

Placeholders stay coherent because ``PlaceholderNumbering`` gives the same value, and a lone
part of a full name, the same number (``<PERSON_1>`` throughout).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import regex

from .cues import cue_names
from .names import name_class
from .spans import Finding, merge_adjacent, protected_spans

_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'’-]+")
PROPAGATED_SCORE = 0.6
_MIN_VALUE = 3


def _words(value: str) -> list[str]:
    return [w.removesuffix("'s").removesuffix("’s") for w in _WORD.findall(value)]


def person_words(text: str, findings: Sequence[Finding]) -> set[str]:
    """Parts of PERSON findings that are safe to look for anywhere: not English words."""
    words = set()
    for etype, start, end, _ in findings:
        if etype == "PERSON":
            words.update(w for w in _words(text[start:end])
                         if len(w) >= 3 and name_class(w) in ("name", "name_noun", "unknown"))
    return words


def person_parts(text: str, findings: Sequence[Finding]) -> set[str]:
    """Every part of PERSON findings but stop words: names a cue slot may take in this conversation."""
    return {w for etype, start, end, _ in findings if etype == "PERSON"
            for w in _words(text[start:end]) if len(w) >= 2 and name_class(w) != "stop"}


def _whole_words(alternatives: Iterable[str]) -> regex.Pattern | None:
    alternatives = sorted({a for a in alternatives if a}, key=len, reverse=True)
    if not alternatives:
        return None
    alternation = "|".join(regex.escape(a) for a in alternatives)
    return regex.compile(rf"(?<![\p{{L}}\p{{M}}\d_])(?:{alternation})(?![\p{{L}}\p{{M}}\d_])", flags=regex.IGNORECASE)


class _Taken:
    """Spans already decided in one text (findings and existing placeholders): new ones may not overlap."""

    def __init__(self, text: str, findings: Sequence[Finding]):
        self.spans = sorted([(f[1], f[2]) for f in findings] + protected_spans(text))

    def take(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.spans, (start, start))
        if (i == 0 or self.spans[i - 1][1] <= start) and (i == len(self.spans) or self.spans[i][0] >= end):
            self.spans.insert(i, (start, end))
            return True
        return False


def propagate_names(text: str, findings: Sequence[Finding], words: Iterable[str]) -> list[Finding]:
    """Other whole-word mentions of a detected person's name parts, in any case, are that person."""
    pattern = _whole_words(words)
    if pattern is None or not text:
        return list(findings)
    taken = _Taken(text, findings)
    added = [("PERSON", m.start(), m.end(), PROPAGATED_SCORE) for m in pattern.finditer(text)
             if taken.take(m.start(), m.end())]
    if not added:
        return list(findings)
    return merge_adjacent(text, sorted([*findings, *added], key=lambda f: f[1]))


class ConversationDecisions:
    """What one conversation's messages decided, to apply to all of them (see module docstring)."""

    def __init__(self) -> None:
        self.values: dict[str, set[str]] = {}  # entity type -> casefolded values
        self.words: set[str] = set()  # name parts to scrub anywhere
        self.known: set[str] = set()  # name parts a cue slot may take

    def learn(self, text: str, findings: Sequence[Finding]) -> None:
        for etype, start, end, _ in findings:
            value = text[start:end].strip()
            if len(value) < _MIN_VALUE:
                continue
            if etype == "PERSON" and all(name_class(w) in ("common", "stop", "ambiguous") for w in _words(value)):
                continue  # "Mere", "Grace Hill": ordinary words too; cue slots only (self.known)
            self.values.setdefault(etype, set()).add(value.casefold())
        self.words |= person_words(text, findings)
        self.known |= person_parts(text, findings)

    def apply(self, text: str, findings: Sequence[Finding]) -> list[Finding]:
        """``findings`` plus every other mention of this conversation's decided values in ``text``."""
        if not text or not (self.values or self.words):
            return list(findings)
        taken = _Taken(text, findings)
        added: list[Finding] = []
        for etype, values in sorted(self.values.items()):
            pattern = _whole_words(values)
            added += [(etype, m.start(), m.end(), PROPAGATED_SCORE) for m in pattern.finditer(text)
                      if taken.take(m.start(), m.end())]
        pattern = _whole_words(self.words)
        if pattern is not None:
            added += [("PERSON", m.start(), m.end(), PROPAGATED_SCORE) for m in pattern.finditer(text)
                      if taken.take(m.start(), m.end())]
        if self.known:
            added += [("PERSON", s, e, PROPAGATED_SCORE) for s, e, _, _ in cue_names(text, self.known)
                      if any(w.casefold() in self.known for w in _words(text[s:e])) and taken.take(s, e)]
        if not added:
            return list(findings)
        return merge_adjacent(text, sorted([*findings, *added], key=lambda f: f[1]))
