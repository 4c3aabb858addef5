"""What drift is measured on: a few numbers and categories per record, never its text.

A record is a scrubbed chat (``messages``). Its profile holds the task it belongs to (the system
prompt, hashed), sizes, language, the non-ASCII share, PII placeholders (in all and by entity type) and, for
tasks with a response format, whether the answer complies and the values of its fields. The words
are kept as a set only to compute out-of-vocabulary shares against a reference (``Vocabulary``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import regex

_TOKEN = regex.compile(r"\w+|[^\w\s]")
_WORD = regex.compile(r"[^\W\d_]+")
_PLACEHOLDER = regex.compile(r"<([A-Z][A-Z_]*?)_\d+>")
_LANGUAGE_SAMPLE = 2000
_MIN_LETTERS_FOR_LANGUAGE = 20
NO_TASK = "(no system prompt)"

# descriptors compared as distributions of numbers (KS) and of categories (chi-squared)
NUMBERS = ("tokens", "turns", "user_words", "assistant_words", "non_ascii_share", "pii_placeholders", "oov_share")
PII_BINS = ("0", "1", "2", "3+")


@dataclass
class Profile:
    record_id: str
    task: str
    numbers: dict[str, float]
    categories: dict[str, str]
    words: frozenset[str]
    answer: str = ""
    text: str = field(default="", repr=False)  # for the domain classifier only; never reported


def task_id(messages: Sequence[dict]) -> str:
    """The task a record belongs to: the sha256 prefix of its system prompt."""
    system = next((_content(m) for m in messages if m.get("role") == "system"), None)
    return hashlib.sha256(system.encode("utf-8")).hexdigest()[:12] if system else NO_TASK


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _language(text: str) -> str:
    """ISO 639-1 code of the text (py3langid bundles its model), "und" when there is too little text."""
    sample = text[:_LANGUAGE_SAMPLE]
    if sum(ch.isalpha() for ch in sample) < _MIN_LETTERS_FOR_LANGUAGE:
        return "und"
    import py3langid

    return py3langid.classify(sample)[0]


def _pii_bin(n: int) -> str:
    return PII_BINS[min(n, 3)]


def profile(record_id: str, messages: Sequence[dict]) -> Profile:
    """The descriptors of one record (``oov_share`` is filled in later, against a reference)."""
    by_role: dict[str, list[str]] = {}
    for m in messages:
        by_role.setdefault(m.get("role", ""), []).append(_content(m))
    text = "\n".join(_content(m) for m in messages)
    user = "\n".join(by_role.get("user", []))
    assistant = by_role.get("assistant", [])
    placeholders = Counter(_PLACEHOLDER.findall(text))
    categories = {"language": _language(user or text)}
    for etype, n in sorted(placeholders.items()):  # absent: "0" (see ``category``)
        categories[f"pii.{etype}"] = _pii_bin(n)
    return Profile(
        record_id=record_id,
        task=task_id(messages),
        numbers={
            "tokens": float(len(_TOKEN.findall(text))),
            "turns": float(sum(1 for m in messages if m.get("role") != "system")),
            "user_words": float(len(_WORD.findall(user))),
            "assistant_words": float(sum(len(_WORD.findall(a)) for a in assistant)),
            "non_ascii_share": sum(not ch.isascii() for ch in text) / max(len(text), 1),
            # all entity types together: a rise spread over several types moves no single type's bins
            "pii_placeholders": float(sum(placeholders.values())),
        },
        categories=categories,
        words=frozenset(w.casefold() for w in _WORD.findall(text)),
        answer=assistant[-1] if assistant else "",
        text=text,
    )


def category(p: Profile, name: str) -> str | None:
    """A record's value of a categorical descriptor; None where it does not apply (an answer
    descriptor outside the tasks with a response format)."""
    value = p.categories.get(name)
    if value is not None:
        return value
    if name.startswith("pii."):
        return "0"
    if name.startswith("answer.") and "format_valid" in p.categories:
        return "(absent)"
    return None


def add_answer_descriptors(profiles: Sequence[Profile], response_format, tasks: set[str]) -> None:
    """For records of ``tasks`` (those with a response format): does the final answer comply, and
    the value of each of its top-level string fields ("answer.category": "billing")."""
    for p in profiles:
        if p.task not in tasks:
            continue
        complies, value = response_format.check(p.answer)
        p.categories["format_valid"] = "yes" if complies else "no"
        if isinstance(value, dict):
            for key, v in sorted(value.items()):
                if isinstance(v, (str, bool, int)) and len(str(v)) <= 40:
                    p.categories[f"answer.{key}"] = str(v)


def formatted_tasks(profiles: Sequence[Profile], response_format, min_share: float = 0.5) -> set[str]:
    """Tasks most of whose reference answers comply with the response format."""
    if response_format is None or getattr(response_format, "kind", "none") == "none":
        return set()
    seen, ok = Counter(), Counter()
    for p in profiles:
        seen[p.task] += 1
        ok[p.task] += response_format.check(p.answer)[0]
    return {t for t in seen if ok[t] >= min_share * seen[t]}


class Vocabulary:
    """Words of a reference, by the number of its records that use them.

    Out-of-vocabulary shares of the reference's own records are leave-one-out (a word only this
    record uses is out of vocabulary for it), so that reference and window are scored alike: an
    in-sample vocabulary would make every reference record look familiar and every clean window
    look novel."""

    def __init__(self, profiles: Iterable[Profile]):
        self.doc_freq: Counter[str] = Counter()
        for p in profiles:
            self.doc_freq.update(p.words)

    def oov_share(self, words: frozenset[str], own: bool = False) -> float:
        if not words:
            return 0.0
        floor = 1 if own else 0
        return sum(self.doc_freq.get(w, 0) <= floor for w in words) / len(words)


def add_oov(reference: Sequence[Profile], others: Sequence[Profile]) -> Vocabulary:
    """Fill in ``oov_share``: leave-one-out for ``reference``, against all of it for ``others``."""
    vocabulary = Vocabulary(reference)
    for p in reference:
        p.numbers["oov_share"] = vocabulary.oov_share(p.words, own=True)
    for p in others:
        p.numbers["oov_share"] = vocabulary.oov_share(p.words)
    return vocabulary

