"""Person names found by the words around them, in any case: introductions, sign-offs, read-backs.

Why: chat users type their names in lower case ("hi, this is amaya okoro", "thanks, amaya") and
agents repeat them as typed. A cased NER model and the proper-noun runs in ``person.py`` cannot
see those; the phrase around the name can. A cue only opens a *slot*; the words in it must still
be shaped like a name: not a stop word, not an English word unless a name list has it too (the
gazetteer is supporting evidence, not a requirement: an unknown word with a vowel is name-shaped),
and for the weaker cues ("this is", "thanks,") the slot must end where a clause ends, so "this is
urgent" or "thanks, that works" never match.

Cue kinds (``why`` of each finding names its kind):

* ``intro``: "my name is X", "this is X.", "I'm X from ...", "X here from ...", "X speaking";
* ``signoff``: "thanks, X" / "regards,\\nX" / "cheers X" running to the end of a message;
* ``readback``: "thank you, X.", "Dear X,", "under the name X", "Ms X", "hi X,";
* ``third_party``: "my colleague X", "opened by X", "add X as an authorised user".

Regex and word lists only, no spaCy: the same cues also run in the residual check of scrubbed
text (``residual_pii``), so a leak of this kind fails the dataset gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import regex
from presidio_analyzer import LocalRecognizer

from .names import HONORIFICS, NOT_NAMES, ORG_HEADS, PARTICLES, name_class
from .recognizers import recognizer_result

STRONG, WEAK, HONORIFIC, SIGNOFF, INTRO = "strong", "weak", "honorific", "signoff", "intro"

_KIN = (
    r"kid|child|son|daughter|wife|husband|spouse|partner|mother|mom|mum|father|dad|brother|sister|friend|"
    r"colleague|coworker|co-worker|boss|manager|supervisor|uncle|aunt|cousin|grandfather|grandmother|grandson|"
    r"granddaughter|nephew|niece|fianc[ée]e?|boyfriend|girlfriend|neighbou?r|tenant|landlord|assistant|"
    r"accountant|lawyer|doctor|flatmate|roommate|housemate"
)
# (kind, strength, pattern ending right before the name slot), matched case-insensitively. Longer
# alternatives first: the leftmost match wins and is not retried with a longer one.
_BEFORE = [
    ("intro", INTRO, r"\bmy\s+name\s+is|\bmy\s+name['’]s|\bname\s+is|\bi\s+go\s+by|\bcall\s+me|\bknown\s+as"),
    ("intro", WEAK, r"\bthis\s+is|\bit['’]s|\bit\s+is|\bi\s+am|\bi['’]m|\bhere\s+is|"
                    r"\byou(?:['’]re|\s+are)\s+(?:speaking|chatting)\s+(?:to|with)"),
    ("readback", HONORIFIC, r"\b(?:mr|mrs|ms|mx|(?-i:Miss|MISS|Dr|DR|Prof|PROF))\.?(?=[ \t])"),
    ("readback", STRONG, r"\bdear|\bunder\s+the\s+name(?:\s+of)?|\bin\s+the\s+name\s+of|"
                         r"\b(?:customer|account\s+holder|cardholder|card\s+holder|caller)['’]?s?\s+name(?:\s+is)?|"
                         r"\bname\s+on\s+the\s+(?:account|card|booking|order|policy|ticket)(?:\s+is)?|"
                         r"\b(?:first|last|full|given|sur|maiden)\s*name(?:\s+is)?"),
    ("readback", WEAK, r"\bthank\s+you(?:\s+(?:so\s+much|again))?|\bthanks(?:\s+(?:a\s+lot|so\s+much|again))?|"
                       r"\bmany\s+thanks|\bhi|\bhello|\bhey|\bgood\s+(?:morning|afternoon|evening)|"
                       r"\bwelcome(?:\s+back)?|\bsorry|\bok(?:ay)?"),
    ("third_party", STRONG, rf"\b(?:my|our|his|her|their|your)\s+(?:{_KIN})"),
    ("third_party", WEAK, r"\b(?:opened|set\s+up|created|registered|requested|submitted|approved|authori[sz]ed|"
                          r"signed|handled|raised)\s+by|\b(?:spoke|speak|speaking|talked|talk|talking|chatted)"
                          r"\s+(?:to|with)|\bask\s+for|\battn|\battention|\bc/o|\bcc"),
]
# Sign-offs: the slot runs to the end of the message
_SIGNOFF = (
    r"thanks(?:\s+(?:a\s+lot|so\s+much|again))?|thank\s+you(?:\s+(?:so\s+much|again))?|many\s+thanks|thx|ty|"
    r"cheers|kind\s+regards|best\s+regards|warm\s+regards|regards|best\s+wishes|all\s+the\s+best|best|"
    r"sincerely|yours(?:\s+(?:truly|sincerely|faithfully))?|bye|goodbye|talk\s+soon|speak\s+soon|ta|br"
)
# Phrases after the slot that make it a name: "X here from ...", "X speaking", "add X as an authorised user"
_AFTER_INTRO = regex.compile(r"[ \t]+(?:here\b(?:[ \t]+(?:from|at|again|with)\b)?|speaking\b)",
                             flags=regex.IGNORECASE)
_AFTER_ADD = regex.compile(
    r"[ \t]+as[ \t]+(?:an?[ \t]+|my[ \t]+|our[ \t]+)?(?:(?:authori[sz]ed|additional|secondary|joint|new|named)[ \t]+"
    r"(?:user|contact|holder|member|signatory|admin|driver|person)|beneficiary|nominee|payee|dependa?n[tc]|"
    r"executor|guardian|trustee|signatory|next[ \t]+of[ \t]+kin|emergency[ \t]+contact)",
    flags=regex.IGNORECASE,
)
_CUES = [(kind, strength, regex.compile(rf"(?i:(?:{pattern}))(?!\p{{L}})[ \t]*[,:]?[ \t]*"))
         for kind, strength, pattern in _BEFORE]
_SIGNOFF_RE = regex.compile(rf"(?i:\b(?:{_SIGNOFF}))(?!\p{{L}})[ \t]*[,!.:-]*[ \t]*\n?[ \t]*")
_LINE_START_RE = regex.compile(r"(?:^|\n)[ \t>*-]*(?:(?i:hi|hello|hey)(?!\p{L})[ \t]*[,!]?[ \t]*)?(?=\p{L})")
_ADD_RE = regex.compile(r"(?i:\b(?:please[ \t]+)?add)[ \t]+(?=\p{L})")
_TOKEN = regex.compile(r"\p{L}[\p{L}\p{M}]*(?:['’-]\p{L}[\p{L}\p{M}]*)*")
_GAP = regex.compile(r"[ \t]+")
_MESSAGE_END = regex.compile(r"[\s.!:)\-–—]*\Z")
_CONTRACTION = regex.compile(r"(?i:['’](?:s|re|m|ll|d|ve|t))$")
_VOWEL = regex.compile(r"[aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿāăąēĕėęěīĭįōŏőœūŭůűųə]")
# what may follow the name slot of a weak cue: the end, punctuation, or a word that continues an intro.
# These patterns are used with ``match(text, pos)``: they match at ``pos``, no slicing of long texts.
_BOUNDARY = regex.compile(
    r"(?:\s*$|\s*[.,!?;:)\]\-–—/]|[ \t]*\n|[ \t]+(?:from|here|again|and|speaking|calling|writing|at|with|as|"
    r"on\s+behalf)\b)",
    flags=regex.IGNORECASE,
)
_INTRO_GOES_ON = regex.compile(r"[ \t]+(?:from|here|again|speaking|calling|writing)\b", flags=regex.IGNORECASE)
# chat words that are in no dictionary and no name list
SLANG = frozenset(
    [
        "pls", "plz", "thx", "ty", "lol", "btw", "tbh", "fyi", "imo", "idk", "asap", "gonna", "wanna", "gotta",
        "dunno", "kinda", "sorta", "yeah", "yep", "yup", "nope", "nah", "ok", "okay", "hmm", "uh", "um", "wifi",
        "app", "apps", "online", "offline", "email", "emails", "login", "logout", "signup", "username", "iphone",
        "android", "ios", "usb", "pdf", "url", "vpn", "sms", "otp", "wan", "lan", "isp", "router", "modem",
        "smartphone", "laptop", "bluetooth", "firmware", "update", "updated", "refund", "refunded", "cancelled",
        "canceled", "unsubscribe", "customer", "agent", "bot", "admin", "user", "team", "support", "everyone",
        "everybody", "guys", "folks", "all", "mate", "pal", "buddy", "dude", "sir", "madam", "maam",
    ]
)
_MAX_TOKENS = 3
# words that end a name slot: "amaya okoro here from", "anna calling about"
_ENDS_SLOT = frozenset(["from", "here", "again", "and", "speaking", "calling", "writing", "at", "with", "as"])


def _token_kind(word: str, known: frozenset[str]) -> str | None:
    """'strong' (name-shaped: listed, or unknown with a vowel), 'weak' (listed, and an English word
    too), 'common' (an English word) or None (stop word, chat word, contraction)."""
    low = word.casefold()
    if low in known:
        return "strong"
    if low in _ENDS_SLOT:
        return None
    cls = name_class(word)
    if word.isupper() and ((len(word) <= 3 and cls != "name") or (len(word) == 4 and cls == "unknown")):
        return None  # an acronym: "DOB", "VAT", "IBAN"
    if len(low) < 2 or low in SLANG or low in NOT_NAMES or low in HONORIFICS or _CONTRACTION.search(low):
        return None
    if cls in ("name", "name_noun"):
        return "strong"
    if cls == "unknown":
        return "strong" if _VOWEL.search(low) else None
    if cls == "ambiguous":
        return "weak"
    return "common" if cls == "common" else None


def _slot(text: str, pos: int, known: frozenset[str]) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the words from ``pos`` on one line: at most three, particles allowed
    between them ("maria da silva"), a possessive ending the slot ("anna's account")."""
    tokens: list[tuple[int, int, str]] = []
    i = pos
    while len(tokens) < _MAX_TOKENS:
        m = _TOKEN.match(text, i)
        if m is None:
            break
        start, end, word = m.start(), m.end(), m.group()
        possessive = regex.search(r"['’]s$", word) is not None
        if possessive:
            word, end = word[:-2], end - 2
        kind = _token_kind(word, known) if word else None
        if kind is None:
            if tokens and word.casefold() in PARTICLES:
                gap = _GAP.match(text, end)
                nxt = _TOKEN.match(text, gap.end()) if gap else None
                if nxt and _token_kind(nxt.group(), known) == "strong":
                    i = nxt.start()
                    continue
            break
        tokens.append((start, end, kind))
        gap = _GAP.match(text, m.end())
        if possessive or gap is None:
            break
        i = gap.end()
    if any(k != "common" for _, _, k in tokens) and not _BOUNDARY.match(text, tokens[-1][1]):
        while tokens[-1][2] == "common":  # "my colleague anna kowalska set it up" (not "... ngo.")
            tokens.pop()
    return tokens


def _accept(tokens: list[tuple[int, int, str]], strength: str, text: str, cased: bool, cue: str = "") -> bool:
    """Whether the words of a slot are a name, given how strong the cue before them is."""
    kinds = [k for _, _, k in tokens]
    if not kinds:
        return False
    if all(k == "common" for k in kinds):
        # one capitalised English word standing alone after "my name is" or a title, or ending a
        # message after a sign-off ("Hello, my name is Jericho and", "Ms Ngo,", "Regards,\nMERE"),
        # or after "I'm"/"this is" when an intro goes on ("I'm Jericho from the billing team");
        # not after "Dear" or "hi" ("Dear Halcyon," greets a company)
        titled = strength == HONORIFIC and cue[:1].isupper() and cue[1:2].islower()
        intro = strength in (HONORIFIC, SIGNOFF, INTRO) or (
            strength == WEAK and _INTRO_GOES_ON.match(text, tokens[0][1]) is not None)
        capital = cased and text[tokens[0][0]].isupper() and intro
        return len(kinds) == 1 and (titled or capital) and bool(_BOUNDARY.match(text, tokens[0][1]))
    if strength == HONORIFIC:  # "Ms Ngo", "Mr Shin": any name-like word after a title
        return True
    if "strong" in kinds:
        return True
    if strength == WEAK:
        return False
    # only listed names that are English words too ("grace", "mark"): a capital letter, or several
    return len(kinds) >= 2 or (cased and text[tokens[0][0]].isupper())


def cue_names(text: str, known: Iterable[str] = ()) -> Iterator[tuple[int, int, float, str]]:
    """Yield (start, end, score, why) for names in cue slots. ``known``: person words already
    decided for this conversation (they count as name-shaped even when they are English words)."""
    if not text:
        return
    known = frozenset(w.casefold() for w in known)
    cased = any(ch.isupper() for ch in text) and any(ch.islower() for ch in text)
    seen: set[tuple[int, int]] = set()

    def emit(tokens, score, why):
        span = (tokens[0][0], tokens[-1][1])
        if span not in seen:
            seen.add(span)
            yield span[0], span[1], score, why

    for kind, strength, pattern in _CUES:
        for m in pattern.finditer(text):
            tokens = _slot(text, m.end(), known)
            if not tokens or not _accept(tokens, strength, text, cased, m.group().strip()):
                continue
            if strength == WEAK and not _BOUNDARY.match(text, tokens[-1][1]):
                continue  # "this is urgent", "thanks, that works"
            yield from emit(tokens, 0.7 if strength == WEAK else 0.8, f"{kind} cue")
    for m in _SIGNOFF_RE.finditer(text):  # "thanks, X" / "Kind regards,\nX" ending the message
        tokens = _slot(text, m.end(), known)
        if not tokens or not _MESSAGE_END.match(text, tokens[-1][1]) or not _accept(tokens, SIGNOFF, text, cased):
            continue
        lead = text[m.start():tokens[0][0]]
        if "strong" not in [k for _, _, k in tokens] and "," not in lead and "\n" not in lead:
            continue  # "thanks will" without a comma or a line break reads as a verb
        yield from emit(tokens, 0.8, "signoff cue")
    for m in _LINE_START_RE.finditer(text):  # "amaya okoro here from ...", "Anna speaking"
        tokens = _slot(text, m.end(), known)
        if tokens and _AFTER_INTRO.match(text, tokens[-1][1]) and _accept(tokens, WEAK, text, cased):
            yield from emit(tokens, 0.75, "intro cue")
    for m in _ADD_RE.finditer(text):  # "please add amaya okoro as an authorised user"
        tokens = _slot(text, m.end(), known)
        if tokens and _AFTER_ADD.match(text, tokens[-1][1]) and _accept(tokens, STRONG, text, cased):
            yield from emit(tokens, 0.75, "third_party cue")


# Title-case names by what is said of them: "the Sokolov novel", "a song by Kleist", "Tomomi is from
# Areavibes", "Irenka is very reliable", "said Maslin to Antonio". Cased text only.
_NAME = r"\p{Lu}[\p{Ll}\p{M}]+(?:[-'’]\p{Lu}?[\p{Ll}\p{M}]+)?"
_NAMES = rf"(?P<n>{_NAME}(?:[ \t]+(?:{_NAME}|\p{{Lu}}\.?))*?)"
_WORKS = (r"novels?|books?|songs?|albums?|films?|movies?|plays?|poems?|paintings?|symphony|concerto|biography|"
          r"memoir|recordings?|concerts?|interviews?|speech|lectures?|essays?|novella|opera|sonata|portraits?|"
          r"sculptures?|exhibitions?|retrospective|autobiography|tracks?|singles?|covers?|remix|photographs?")
_TRAITS = (r"reliable|unreliable|impulsive|sympathetic|kind|unkind|friendly|honest|dishonest|generous|lazy|smart|"
           r"clever|shy|rude|polite|funny|brave|talented|ambitious|stubborn|patient|impatient|trustworthy|helpful|"
           r"selfish|caring|thoughtful|arrogant|humble|charming|loyal|moody|grumpy|cheerful|outgoing|introverted|"
           r"extroverted|creative|hardworking|hard-working|punctual|nervous|anxious|jealous|wise|gentle")
_DESCRIBED = [
    regex.compile(rf"\b(?:the|a|an)[ \t]+{_NAMES}[ \t]+(?:{_WORKS})\b"),
    regex.compile(rf"\b(?:{_WORKS})[ \t]+(?:(?:written|directed|painted|sung|performed|composed|recorded)[ \t]+)?"
                  rf"by[ \t]+(?:(?:ex|former)-\p{{L}}+[ \t]+|the[ \t]+late[ \t]+)?{_NAMES}(?!\p{{L}})"),
    regex.compile(rf"(?:^|(?<=[.!?\n])[ \t]*){_NAMES}[ \t]+(?:is|was)[ \t]+from\b"),
    regex.compile(rf"{_NAMES}[ \t]+(?:is|was|seems|looks)[ \t]+(?:(?:very|so|really|quite|extremely|always|never|"
                  rf"such|a|an|not)[ \t]+)*(?:{_TRAITS})\b"),
    regex.compile(rf"\b(?:is|was|isn['’]t|wasn['’]t)[ \t]+{_NAMES}[ \t]+(?:so|very|always|really|that|too)[ \t]+"
                  rf"(?:{_TRAITS})\b"),
    regex.compile(rf"(?:^|(?<=[.!?\n])[ \t]*){_NAMES}[ \t]+(?:lives|lived|resides|resided|was[ \t]+born|grew[ \t]+up)"
                  rf"[ \t]+(?:on|at|in|near)\b"),
    regex.compile(rf"(?:^|(?<=\n)){_NAMES},[ \t]+(?:can|could|would|will|please|do|did|have|are|is)[ \t]"),
    regex.compile(rf"(?:\bincluding|\band|,)[ \t]+(?P<n>{_NAME}[ \t]+{_NAME})[ \t]+of[ \t]+\p{{Lu}}"),
    regex.compile(rf"\b(?:said|says|asked|told|replied|shouted|whispered)[ \t]+{_NAMES}[ \t]+to\b"),
    regex.compile(rf"\b(?:said|says|asked|replied|shouted|whispered)[ \t]+\p{{L}}+[ \t]+to[ \t]+{_NAMES}(?!\p{{L}})"),
]


def described_names(text: str) -> Iterator[tuple[int, int, float, str]]:
    """Yield (start, end, score, why) for Title-case names by what is said of them (cased text)."""
    if not any(ch.islower() for ch in text):
        return
    for pattern in _DESCRIBED:
        for m in pattern.finditer(text):
            start, end = m.span("n")
            words = text[start:end].split()
            kinds = [_token_kind(w.rstrip("."), frozenset()) for w in words]
            if pattern in _DESCRIBED[:2]:  # "a song by Kleist": the creator of a work, English word or not
                kinds = ["strong" if k == "common" and w[:1].isupper() else k for w, k in zip(words, kinds)]
            if words[-1].casefold() in ORG_HEADS or kinds[0] is None or kinds[-1] in (None, "common") \
                    or "strong" not in kinds or (pattern is _DESCRIBED[-3] and kinds != ["strong", "strong"]):
                continue
            yield start, end, 0.7, "described as a person"


class CueNameRecognizer(LocalRecognizer):
    """PERSON from cue phrases, in any case (see module docstring). Needs no NLP artifacts."""

    def __init__(self, supported_language: str = "en", name: str | None = None):
        super().__init__(supported_entities=["PERSON"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        found = [*cue_names(text), *described_names(text)]
        return [recognizer_result(self, "PERSON", s, e, score, why) for s, e, score, why in found]
