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
from .names import name_class, product_shaped
from .spans import Finding, merge_adjacent, protected_spans

_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'’-]+")
_WORD_CHAR = regex.compile(r"[\p{L}\p{M}\d_]")
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
    """Every part of PERSON findings but stop words, casefolded: names a cue slot may take in this
    conversation."""
    return {w.casefold() for etype, start, end, _ in findings if etype == "PERSON"
            for w in _words(text[start:end]) if len(w) >= 2 and name_class(w) != "stop"}


def _folded(text: str) -> tuple[str, list[int] | None]:
    """``text`` casefolded and, where folding changed its length ("ß" -> "ss"), the index in
    ``text`` of each folded character, plus one for the end."""
    folded = text.casefold()
    if len(folded) == len(text):
        return folded, None
    origin: list[int] = []
    for i, char in enumerate(text):
        origin.extend([i] * len(char.casefold()))
    origin.append(len(text))
    return folded, origin


def _occurrences(values: Iterable[str], text: str) -> list[tuple[int, int]]:
    """Whole-word, case-insensitive occurrences of ``values`` in ``text``, without overlaps: the
    leftmost first and, of those starting at one place, the longest.

    Why not one regex alternation of the values: the set grows message by message, so each message
    would compile a new pattern, and compiling was 12% of the scrub time on short messages."""
    folded, origin = _folded(text)
    found = []
    for value in {v.casefold() for v in values if v}:
        i = folded.find(value)
        while i >= 0:
            start, end = i, i + len(value)
            if origin is not None:  # both ends must fall between whole characters of ``text``
                aligned = (start == 0 or origin[start] != origin[start - 1]) and origin[end] != origin[end - 1]
                start, end = (origin[start], origin[end]) if aligned else (-1, -1)
            if start >= 0 and (start == 0 or not _WORD_CHAR.match(text, start - 1)) \
                    and (end == len(text) or not _WORD_CHAR.match(text, end)):
                found.append((start, end))
            i = folded.find(value, i + 1)
    found.sort(key=lambda span: (span[0], -span[1]))
    chosen: list[tuple[int, int]] = []
    for start, end in found:
        if not chosen or start >= chosen[-1][1]:
            chosen.append((start, end))
    return chosen


def _mentions(values: Iterable[str], text: str) -> Iterable[tuple[int, int]]:
    """Whole-word mentions of ``values`` that can be the decided value in another form. Not one
    written as a product ("Halobox" decided, "HaloBox" kept) or as a short acronym in mixed-case
    text ("nat" decided, "NAT type" kept): a case-insensitive match there is a different word."""
    cased = text != text.upper()
    for start, end in _occurrences(values, text):
        word = text[start:end]
        if product_shaped(word) or (cased and len(word) <= 4 and word.isupper()):
            continue
        yield start, end


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
    words = set(words)
    if not words or not text:
        return list(findings)
    taken = _Taken(text, findings)
    added = [("PERSON", s, e, PROPAGATED_SCORE) for s, e in _mentions(words, text) if taken.take(s, e)]
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
            added += [(etype, s, e, PROPAGATED_SCORE) for s, e in _mentions(values, text) if taken.take(s, e)]
        added += [("PERSON", s, e, PROPAGATED_SCORE) for s, e in _mentions(self.words, text) if taken.take(s, e)]
        if self.known:
            added += [("PERSON", s, e, PROPAGATED_SCORE) for s, e, _, _ in cue_names(text, self.known)
                      if any(w.casefold() in self.known for w in _words(text[s:e])) and taken.take(s, e)]
        if not added:
            return list(findings)
        return merge_adjacent(text, sorted([*findings, *added], key=lambda f: f[1]))
