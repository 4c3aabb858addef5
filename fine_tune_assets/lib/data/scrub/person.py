"""PERSON detection beyond spaCy's small NER model.

Three recognizers, all working from the spaCy ``Doc`` the analyzer already made:

* ``FilteredSpacyRecognizer``: spaCy's own NER, minus its typical small-model mistakes (a PERSON
  made only of ordinary English words: "He", "Discipline", "Guilty Pleasures"), with spans cut at
  line breaks and quotes.
* ``ProperNounNameRecognizer``: runs of capitalised proper nouns (tagger NNP/NNPS) scored by name
  evidence (given-name and surname gazetteers, surname endings) plus cues around them ("my name
  is", "Mr.", "Dear", a speaker label "Anna:", a verb that takes a person as subject, a list
  with other names) minus evidence for something else (NER says GPE/ORG, the word is an English
  word, a house number follows, the text is in Title Case).
* ``CaseNormalizedNameRecognizer``: names in ALL CAPS ("JOHN SMITH") or in an all-lower-case
  message ("hi this is anna kowalska") are invisible to a cased model. It re-runs the spaCy
  pipeline on a copy where those words are title-cased (same length, so offsets hold) and keeps
  PERSON findings that touch a re-cased word and contain real name evidence. It runs only when
  such words exist.
"""

from __future__ import annotations

import itertools

import regex
from presidio_analyzer import LocalRecognizer
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from .names import (
    HONORIFICS,
    NOT_NAMES,
    ORG_HEADS,
    PARTICLES,
    PRODUCT_NOUNS,
    STRONG_CUE_BEFORE,
    has_surname_shape,
    is_place,
    name_class,
)
from .recognizers import recognizer_result

_GEO_NER = {"GPE", "LOC", "FAC"}
_OTHER_NER = {"ORG", "NORP", "PRODUCT", "EVENT", "WORK_OF_ART", "LANGUAGE", "LAW"}
_INITIAL = regex.compile(r"^\p{Lu}\.?$")
_WORDLIKE = regex.compile(r"^\p{Lu}[\p{L}'’-]*$")
_BREAK_BEFORE = {'"', "“", "'", ":", ">", "(", "-", "–", "—", "*", "•", ".", "!", "?"}
_STREET_WORDS = frozenset(
    [
        "street", "st", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "way", "court", "ct", "place",
        "pl", "boulevard", "blvd", "terrace", "close", "crescent", "square", "parkway", "highway", "circle",
        "trail", "row", "mews", "grove", "gardens", "walk", "green", "park", "rise", "rue", "rua", "via", "viale",
        "calle", "avenida", "av", "avda", "plaza", "piazza", "strasse", "straße", "gasse", "weg", "platz", "allee",
    ]
)
# Verbs that take a person as subject: "Anna said", "Jacob lives", "Tomas had given"
_HUMAN_VERBS = frozenset(
    [
        "say", "tell", "ask", "reply", "answer", "shout", "yell", "scream", "whisper", "cry", "laugh", "smile",
        "live", "die", "marry", "bear", "work", "study", "write", "think", "feel", "want", "like", "love", "hate",
        "know", "believe", "spend", "begin", "start", "join", "leave", "arrive", "visit", "call", "email", "meet",
        "travel", "sing", "speak", "talk", "give", "send", "wonder", "agree", "decide", "own", "teach", "retire",
        "graduate", "move", "sign", "complain", "explain", "promise", "apologize", "thank", "insist",
    ]
)
_KINSHIP = frozenset(
    [
        "kid", "child", "son", "daughter", "wife", "husband", "spouse", "partner", "mother", "mom", "mum", "father",
        "dad", "brother", "sister", "friend", "colleague", "boss", "manager", "uncle", "aunt", "cousin",
        "grandfather", "grandmother", "nephew", "niece", "fiance", "fiancee", "boyfriend", "girlfriend", "neighbor",
        "neighbour", "family",
    ]
)
_GREETING_BEFORE = regex.compile(r"(?i:\b(?:hi|hello|hey|dear|thanks|thank\s+you|bye|goodbye|cheers|congrats)[\s,!]*)$")
_SAID_BEFORE = regex.compile(r"(?i:\b(?:said|says|asked|told|tell|ask|thanked|with|cc|from)\s*)$")
_PRONOUN = regex.compile(r"(?i:\b(?:he|she|him|her|his|hers|himself|herself)\b)")


def _is_name_token(tok) -> bool:
    text = tok.text
    if len(text) < 2 or not _WORDLIKE.match(text):
        return False
    if len(text) > 2 and text.isupper():
        return False  # ALL CAPS: the case-normalised pass handles it
    low = text.casefold()
    if low in NOT_NAMES or low in HONORIFICS or low in _STREET_WORDS:
        return False
    cls = name_class(text)
    if cls == "stop":
        return False
    return tok.tag_ in ("NNP", "NNPS") or cls == "name"


def _sentence_initial(doc, i: int) -> bool:
    if i == 0 or doc[i].is_sent_start:
        return True
    prev = doc[i - 1]
    return prev.is_space or prev.text in _BREAK_BEFORE


def _title_case_text(doc) -> bool:
    """Headline / Title Case text: capitalisation says little there."""
    stops = [t for k, t in enumerate(doc) if t.is_stop and t.is_alpha and len(t.text) > 2
             and not _sentence_initial(doc, k)]
    return len(stops) >= 2 and sum(t.text[0].isupper() for t in stops) / len(stops) > 0.5


def _whole_line(doc, text: str, first: int, last: int) -> bool:
    """The run is alone on its line (a name line in a signature or contact block)."""
    start, end = doc[first].idx, doc[last].idx + len(doc[last].text)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    return text[line_start:start].strip(" \t>*-") == "" and text[end:line_end].strip(" \t,") == ""


def _runs(doc, text: str) -> list[tuple[int, int, list[int]]]:
    """(first token, last token, name-token indices) of capitalised proper-noun runs."""
    n = len(doc)
    out = []
    i = 0
    while i < n:
        if not (_is_name_token(doc[i]) or _after_strong_cue(doc, text, i) or _subject_of_person_verb(doc, i)):
            i += 1
            continue
        j, members = i, [i]
        while j + 1 < n and "\n" not in doc[j].whitespace_:
            nxt = doc[j + 1]
            if nxt.text in {"-", "'"} and not doc[j].whitespace_ and not nxt.whitespace_ and j + 2 < n \
                    and _is_name_token(doc[j + 2]):
                j += 2
                members.append(j)
            elif (_INITIAL.match(nxt.text) and j + 2 < n and _is_name_token(doc[j + 2])) or (
                    nxt.text.islower() and nxt.text in PARTICLES and j + 2 < n and _is_name_token(doc[j + 2])):
                j += 1
            elif _is_name_token(nxt):
                j += 1
                members.append(j)
            else:
                break
        out.append((i, j, members))
        i = j + 1
    return out


def product_context(doc, first: int, last: int) -> str | None:
    """Why the capitalised run ``doc[first:last+1]`` reads as a product or a company, or None.

    "Blue Heron Dental", "Harper Sync": the run ends with a business word (``ORG_HEADS``).
    "the Atlas export", "Orion app", "Juniper smart meter": English words naming a product noun
    (``PRODUCT_NOUNS``) after them. People are named that way rarely; "the Jensen novel" is kept.
    """
    words = [t for t in doc[first:last + 1] if t.is_alpha]
    if not words:
        return None
    if len(words) >= 2 and words[-1].lower_ in ORG_HEADS:
        return "ends with a business word (a product or company)"
    if not all(name_class(t.text) in ("common", "name_noun", "ambiguous") for t in words):
        return None
    k = last + 1
    if k < len(doc) and doc[k].tag_ == "JJ" and doc[k].text.islower():
        k += 1
    if k < len(doc) and doc[k].lower_ in PRODUCT_NOUNS and doc[k].text.islower():
        return "English word naming a product noun"
    return None


def _person_verb_after(doc, last: int) -> bool:
    """The token after the run (or after an auxiliary) is a verb that takes a person as subject."""
    n = len(doc)
    k = last + 1
    if k < n and doc[k].pos_ in ("AUX", "PART") and k + 1 < n and doc[k + 1].pos_ == "VERB":
        k += 1
    return k < n and doc[k].pos_ == "VERB" and doc[k].lemma_.lower() in _HUMAN_VERBS


def _subject_of_person_verb(doc, i: int) -> bool:
    """A capitalised unknown word the tagger took for a common noun, before "lives", "said"..."""
    tok = doc[i]
    return bool(_WORDLIKE.match(tok.text)) and not tok.text.isupper() and tok.tag_ in ("NN", "NNS") \
        and name_class(tok.text) in ("unknown", "name") and _person_verb_after(doc, i)


def _after_strong_cue(doc, text: str, i: int) -> bool:
    tok = doc[i]
    if not _WORDLIKE.match(tok.text) or name_class(tok.text) in ("stop", "common"):
        return False
    return bool(STRONG_CUE_BEFORE.search(text[max(0, tok.idx - 40):tok.idx]))


def name_runs(doc, only_chars=None, title_case: bool | None = None):
    """Yield (start, end, score, why) for runs of proper nouns that look like person names."""
    text = doc.text
    n = len(doc)
    if title_case is None:
        title_case = _title_case_text(doc)
    has_pronoun = bool(_PRONOUN.search(text))
    scored: list[dict] = []
    for first, last, members in _runs(doc, text):
        start, end = doc[first].idx, doc[last].idx + len(doc[last].text)
        toks = [doc[k] for k in members]
        classes = [name_class(t.text) for t in toks]
        person_ner = all(t.ent_type_ == "PERSON" for t in toks)
        initial = _sentence_initial(doc, first)
        # a WordNet noun that is a listed name ("Scott") counts as a name unless capitalisation
        # says nothing (sentence start)
        classes = [("ambiguous" if initial and k == 0 else "name") if c == "name_noun" else c
                   for k, c in enumerate(classes)]
        names = sum(c == "name" for c in classes)
        ambiguous = sum(c == "ambiguous" for c in classes)
        common = sum(c in ("common", "stop") for c in classes)
        shapes = sum(1 for t, c in zip(toks, classes) if c == "unknown" and has_surname_shape(t.text))
        unknown = sum(c == "unknown" for c in classes) - shapes
        nk = len(toks)
        if nk >= 2 and common == 0 and (names or (ambiguous and shapes) or ambiguous >= 2):
            score, why = (0.8 if names + ambiguous >= 2 or shapes else 0.7), "given name + surname"
        elif nk >= 2 and common == 0 and (ambiguous or shapes >= 2 or (shapes and unknown)):
            score, why = 0.6, "proper nouns with name evidence"
        elif nk >= 2 and (names or ambiguous):
            score, why = 0.5, "name among other capitalised words"
        elif names:
            score, why = 0.6, "listed name"
        elif shapes:
            score, why = 0.5, "surname-shaped proper noun"
        elif ambiguous:
            score, why = (0.45 if initial else 0.5), "listed name that is also an English word"
        elif unknown and nk >= 2 and common == 0 and not initial:
            score, why = 0.5, "run of unknown proper nouns"
        elif unknown:
            score, why = 0.3, "unknown proper noun"
        else:
            score, why = 0.15, "capitalised English word"

        ner = {t.ent_type_ for t in toks} - {"", "PERSON"}
        strong_names = (names >= 1 and nk >= 2) or names + ambiguous + shapes >= 2
        if ner & _GEO_NER and not strong_names:
            known_place = nk == 1 and is_place(toks[0].text)
            score -= 0.25 if known_place else 0.1
            why += ", NER says place" + (" (a listed place)" if known_place else "")
        elif ner & _OTHER_NER and not strong_names and not names:
            score -= 0.05
            why += ", NER says " + "/".join(sorted(ner))
        if initial and nk == 1:
            score -= 0.05
        if title_case:
            score -= 0.15
            why += ", title-case text"
        nxt = doc[last + 1] if last + 1 < n else None
        nxt2 = doc[last + 2] if last + 2 < n else None
        prev = doc[first - 1] if first > 0 else None
        if (nxt is not None and (nxt.like_num or nxt.text.lower().rstrip(".") in _STREET_WORDS)) or (
                prev is not None and prev.text.lower().rstrip(".") in _STREET_WORDS and prev.text[0].isupper()):
            score -= 0.3
            why += ", street name"

        if nxt is not None and nxt.tag_ in ("NN", "NNS") and nxt.text.islower() and nk == 1 \
                and ner & (_OTHER_NER | _GEO_NER):
            score -= 0.2
            why += ", brand or place modifying a noun"
        elif nxt is not None and nxt.lower_ in ("regards", "wishes"):
            score -= 0.4
            why += ", sign-off phrase"
        elif (common or not strong_names) and (product := product_context(doc, first, last)):
            score -= 0.3
            why += f", {product}"
        before = text[max(0, start - 40):start]
        cue = 0.0
        if _after_strong_cue(doc, text, first):
            score = max(score + 0.35, 0.75)
            why += ", name cue"
        else:
            if nxt is not None and nxt.text == ":" and (first == 0 or doc[first - 1].is_space
                                                       or doc[first - 1].text in {">", "-", "*"}) \
                    and common == 0 and ambiguous == 0:
                cue = max(cue, 0.3)
                why += ", speaker label"
            if _GREETING_BEFORE.search(before):
                cue = max(cue, 0.25)
                why += ", greeting"
            if _person_verb_after(doc, last):
                cue = max(cue, 0.3 if initial else 0.2)
                why += ", person verb"
            elif nxt is not None and nxt.lemma_ == "be" and nxt2 is not None and nxt2.text.lower() == "from":
                cue = max(cue, 0.2)
                why += ", 'is from'"
            if _SAID_BEFORE.search(before) and not ner & _GEO_NER:  # "from Poland" is a place
                cue = max(cue, 0.15)
            if nxt is not None and nxt.text in {"'s", "’s"}:
                kin = nxt2 is not None and nxt2.lemma_.lower() in _KINSHIP
                cue = max(cue, 0.3 if kin else 0.1)
            if initial and nxt is not None and nxt.text == "," and nk == 1:
                cue = max(cue, 0.1)
            if has_pronoun and nk == 1:
                cue += 0.05
            if nk >= 2 and common == 0 and _whole_line(doc, text, first, last) and text.count("\n") >= 2:
                cue = max(cue, 0.25)
                why += ", name line of a record"
        score += cue
        scored.append({"first": first, "last": last, "start": start, "end": end, "score": score, "why": why,
                       "person": person_ner or score >= 0.6, "skip": person_ner})
    _share_list_evidence(doc, scored)
    for item in scored:
        if item["skip"]:
            continue
        if only_chars is not None and not any(only_chars[item["start"]:item["end"]]):
            continue
        yield item["start"], item["end"], round(min(item["score"], 0.95), 3), item["why"]


def _share_list_evidence(doc, scored: list[dict]) -> None:
    """In "Anna, Piotr and Ewa" a run next to a person in a list is likely a person too."""
    for a, b in itertools.pairwise(scored):
        between = [t.text.lower() for t in doc[a["last"] + 1:b["first"]]]
        if not between or any(w not in {",", "and", "or", "&", "und", "et", "y"} for w in between):
            continue
        for x, y in ((a, b), (b, a)):
            if x["person"] and not y["skip"] and 0.2 < y["score"] < 0.6:
                y["score"] += 0.25
                y["why"] += ", listed with a person"


_SPEAKER = regex.compile(r"^[ \t>*•-]*(\p{Lu}[\p{L}'’-]+(?:[ \t]\p{Lu}[\p{L}'’-]+){0,2})[ \t]*:", flags=regex.MULTILINE)


def speaker_labels(text: str):
    """Yield (start, end, score, why) for dialogue speaker labels at line starts ("Anna: ...").

    A label whose words are listed names counts on its own; unknown words count only in a
    dialogue (two or more labels) where at least one label is a listed name, so that a glossary
    ("Docker: ...", "Helm: ...") is left alone.
    """
    found = []
    for m in _SPEAKER.finditer(text):
        words = m.group(1).split()
        classes = [name_class(w) for w in words]
        if any(c in ("stop", "common", "ambiguous") for c in classes) or any(
                w.casefold() in NOT_NAMES or w.casefold() in HONORIFICS for w in words):
            continue
        found.append((m.start(1), m.end(1), classes))
    listed = [f for f in found if any(c in ("name", "name_noun") for c in f[2])]
    for start, end, classes in found:
        if any(c in ("name", "name_noun") for c in classes):
            yield start, end, 0.75, "speaker label, listed name"
        elif len(found) >= 2 and listed:
            yield start, end, 0.6, "speaker label in a dialogue"


def _english(word: str) -> bool:
    """An ordinary English word, also in the plural ("Tales", "Pleasures")."""
    classes = {name_class(word)}
    if classes & {"name", "name_noun"}:
        return False
    if len(word) > 3 and word.lower().endswith("s"):
        classes.add(name_class(word[:-1]))
    return bool(classes & {"common", "stop"})


class FilteredSpacyRecognizer(SpacyRecognizer):
    """spaCy NER results, without PERSON spans made only of ordinary English words, cut at line
    breaks and quotes (the small model sometimes runs a name into the next line), and without a
    leading title: it stays in the text, and the surname keeps the full name's placeholder."""

    _PIECE = regex.compile(r"[^\n:\"“”()<>|]+")
    _TITLE = regex.compile(r"([\p{L}.]+?)\.?[ \t]+")

    def analyze(self, text, entities, nlp_artifacts=None):
        results = super().analyze(text, entities, nlp_artifacts)
        doc = getattr(nlp_artifacts, "tokens", None)
        out = []
        for r in results:
            if r.entity_type != "PERSON":
                out.append(r)
                continue
            value = text[r.start:r.end]
            for m in self._PIECE.finditer(value):
                piece = m.group()
                lead = len(piece) - len(piece.lstrip())
                piece = piece.strip()
                for suffix in ("'s", "’s"):
                    if piece.endswith(suffix):
                        piece = piece[: -len(suffix)].rstrip()
                while (title := self._TITLE.match(piece)) and title.group(1).casefold() in HONORIFICS:
                    lead, piece = lead + title.end(), piece[title.end():]  # "Ms Kowalski": Ms <PERSON_1>
                if not piece or (not any(ch.isupper() for ch in piece) and text != text.lower()):
                    continue
                words = regex.findall(r"\p{L}+", piece)
                if not words or all(_english(w) for w in words):
                    continue
                if piece.islower() and all(name_class(w) in ("common", "stop", "ambiguous") for w in words):
                    continue  # lower-case text: "smart meter", "wan" are words unless a cue says otherwise
                if len(words) == 1 and piece.isupper() and name_class(piece) != "name":
                    continue  # an acronym ("STA", "API")
                s = r.start + m.start() + lead
                if doc is not None and (span := doc.char_span(s, s + len(piece), alignment_mode="expand")) \
                        and product_context(doc, span.start, span.end - 1):
                    continue  # "Harper Sync", "the Atlas export"
                out.append(recognizer_result(self, "PERSON", s, s + len(piece), r.score, "spaCy NER"))
        return out


class ProperNounNameRecognizer(LocalRecognizer):
    """Person names among the proper nouns of the cased text (see module docstring)."""

    def __init__(self, supported_language: str = "en", name: str | None = None):
        super().__init__(supported_entities=["PERSON"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        doc = getattr(nlp_artifacts, "tokens", None)
        if doc is None or not hasattr(doc, "ents"):
            return []
        found = [(s, e, score, why) for s, e, score, why in name_runs(doc) if score > 0.25]
        found += list(speaker_labels(text))
        return [recognizer_result(self, "PERSON", s, e, score, why) for s, e, score, why in found]


_ALLCAPS_WORD = regex.compile(r"\b\p{Lu}{2,}(?:['’-]\p{Lu}+)*\b")
_LOWER_WORD = regex.compile(r"\b\p{Ll}{2,}(?:['’-]\p{Ll}+)*\b")
_LOWER_CUE = regex.compile(
    r"(?i:\b(?:name\s+is|name's|named|called|call\s+me|i\s+am|i'm|this\s+is|mr|mrs|ms|miss|dr|dear|hi|hello|hey)"
    r"\.?\s+)(\p{Ll}{2,})"
)


def _title(word: str) -> str | None:
    new = word[:1].upper() + word[1:].lower()
    return new if len(new) == len(word) else None


def _all_recased(start: int, end: int, copy: str, changed) -> bool:
    """Every word of the span was re-cased (ALL CAPS names are all caps throughout), and there
    are at least two of them (a single all-caps word is an acronym more often than a name)."""
    words = list(regex.finditer(r"\p{L}{2,}", copy[start:end]))
    return len(words) >= 2 and all(changed[start + m.start()] for m in words)


def _has_name_evidence(value: str, ner_person: bool) -> bool:
    words = regex.findall(r"\p{L}[\p{L}'’-]*", value)
    classes = [name_class(w) for w in words]
    if any(c == "name" for c in classes) or sum(c in ("name", "ambiguous") for c in classes) >= 2:
        return True
    return ner_person and any(c == "unknown" for c in classes)


class CaseNormalizedNameRecognizer(LocalRecognizer):
    """Names in ALL CAPS or in all-lower-case messages (see module docstring)."""

    def __init__(self, nlp, supported_language: str = "en", name: str | None = None):
        self._nlp = nlp
        super().__init__(supported_entities=["PERSON"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    @staticmethod
    def normalized_copy(text: str):
        """(copy, changed flags per char, all-caps mode) or None when there is nothing to re-case.

        In a cased text only ALL-CAPS words are re-cased; single all-caps words are acronyms
        more often than names, so they need a cue. In an all-lower-case text, listed names (and
        the word after "my name is", "call me" ...) are re-cased."""
        targets: list[tuple[int, int]] = []
        caps_mode = any(ch.isupper() for ch in text)
        if caps_mode:
            caps = list(_ALLCAPS_WORD.finditer(text))
            if caps and (any(len(m.group()) >= 3 and name_class(m.group()) == "name" for m in caps)
                         or regex.search(r"\b\p{Lu}{2,}\s+\p{Lu}{2,}\b", text)):
                targets = [m.span() for m in caps]
        else:
            words = list(_LOWER_WORD.finditer(text))
            classes = [name_class(m.group()) for m in words]
            targets = [m.span() for m, c in zip(words, classes) if c == "name"]
            # "anna, adam and chad": a listed name next to a name in a list is a name too
            for k, (m, c) in enumerate(zip(words, classes)):
                if c not in ("name_noun", "ambiguous"):
                    continue
                for j in (k - 1, k + 1):
                    if 0 <= j < len(words) and classes[j] == "name":
                        gap = text[min(m.end(), words[j].end()):max(m.start(), words[j].start())]
                        if gap.strip() in (",", "and", ", and", "or", "&"):
                            targets.append(m.span())
                            break
            targets += [m.span(1) for m in _LOWER_CUE.finditer(text) if name_class(m.group(1)) != "stop"]
        if not targets:
            return None
        chars = list(text)
        changed = [False] * len(text)
        for s, e in targets:
            new = _title(text[s:e])
            if new is None:
                continue
            chars[s:e] = new
            changed[s:e] = [True] * (e - s)
        return "".join(chars), changed, caps_mode

    def analyze(self, text, entities, nlp_artifacts=None):
        prepared = self.normalized_copy(text)
        if prepared is None:
            return []
        copy, changed, caps_mode = prepared
        doc = self._nlp(copy)
        results = []
        for ent in doc.ents:
            if ent.label_ == "PERSON" and any(changed[ent.start_char:ent.end_char]) \
                    and (not caps_mode or _all_recased(ent.start_char, ent.end_char, copy, changed)) \
                    and _has_name_evidence(ent.text, True):
                results.append(recognizer_result(self, "PERSON", ent.start_char, ent.end_char, 0.75,
                                                 "NER on case-normalised copy"))
        for s, e, score, why in name_runs(doc, only_chars=changed, title_case=False):
            cued = any(c in why for c in ("name cue", "greeting", "speaker", "person verb"))
            if caps_mode and not _all_recased(s, e, copy, changed):
                continue
            several = len(copy[s:e].split()) >= 2 or not caps_mode
            if score >= 0.5 and (cued or (several and _has_name_evidence(copy[s:e], False))):
                results.append(recognizer_result(self, "PERSON", s, e, score, why + " (case-normalised)"))
        return results
