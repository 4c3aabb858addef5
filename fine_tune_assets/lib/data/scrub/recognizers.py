"""Recognizers for what stock Presidio 2.2.366 misses in chat data.

Each one is a Presidio ``LocalRecognizer`` so that the analyzer, the batch analyzer and the naive
per-message loop all run exactly the same detection. Context words are checked here, in a
character window on both sides of the match (Presidio's own enhancer only looks at the five words
before), and the result is marked as already boosted so that Presidio does not boost it twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers
import regex
from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import IbanRecognizer, PhoneRecognizer

from .names import product_shaped

CONTEXT_BOOST = 0.35


def recognizer_result(recognizer: LocalRecognizer, entity: str, start: int, end: int, score: float,
                      why: str) -> RecognizerResult:
    """A finding with its explanation, marked as context-boosted already (see the module docstring)."""
    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=round(min(score, 1.0), 4),
        analysis_explanation=AnalysisExplanation(
            recognizer=recognizer.name, original_score=score, textual_explanation=why
        ),
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
            RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
        },
    )


def _context_hit(pattern: regex.Pattern, text: str, start: int, end: int, before: int = 48,
                 after: int = 24) -> bool:
    return bool(pattern.search(text, max(0, start - before), start)) or bool(
        after and pattern.search(text, end, min(len(text), end + after))
    )


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# --------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------

PHONE_REGIONS = (
    "US", "GB", "DE", "FR", "IN", "ES", "IT", "NL", "AU", "BR", "CA", "CH", "SE", "BE", "AT",
    "PL", "PT", "IE", "DK", "NO", "FI", "MX", "ZA", "NZ", "JP", "IL", "SG", "CZ", "HU", "GR",
)

_PHONE_CANDIDATE = regex.compile(
    r"(?<![\w@/+.:#-]|\d[.,])"
    r"(?:(?:\+|\b00)\s?\d{1,3}[\s.-]?)?"        # country code
    r"(?:\(\d{1,5}\)[\s.-]?)?"                  # (area) or (0)
    r"\d{1,10}(?:(?:[ .-]|\s?/\s?)\(?\d{1,8}\)?){0,6}"  # digit groups
    r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?"     # extension
    r"(?![\w@/]|-\d|[.,:]\d)",
    flags=regex.IGNORECASE,
)
_PHONE_CONTEXT = regex.compile(
    r"(?i:\b(?:phone|phones|telephone|tel|mobile|cell|cellphone|call|calls|calling|called|fax|desk|"
    r"office|landline|contact|reach|text|sms|whatsapp|dial|ring|extension|ext|hotline|answering|"
    r"voicemail|messages|number|home|work|direct|switchboard)\b)"
)
_DATE_LIKE = regex.compile(r"^(?:\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.](?:\d{4}|\d{2}))$")
_SSN_LIKE = regex.compile(r"^\d{3}-\d{2}-\d{4}$")
_DATE_OR_IP_INSIDE = regex.compile(
    # plausible dates only (year 19xx/20xx, day/month <= 31): "+44.20.7946.0385" is a phone, not a date
    r"\b(?:(?:19|20)\d{2}-[01]?\d-[0-3]?\d|[0-3]?\d[./][0-3]?\d[./](?:19|20)\d{2})\b"
    r"|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"
)
_IPV4_LIKE = regex.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


class MultiRegionPhoneRecognizer(PhoneRecognizer):
    """Phone numbers in international and local formats of many regions.

    Candidates are found by one permissive pattern and then validated with python-phonenumbers
    against ``supported_regions`` (30 by default instead of Presidio's 8). Scores: a valid number
    written with separators 0.6 (found without context), a valid bare digit run 0.4 and a
    phone-shaped but unvalidated group of digits 0.3 (both need a context word such as "phone",
    "call", "mobile", "fax"); context adds 0.35. Texts with fewer than 7 digits are skipped.
    """

    def __init__(self, supported_regions: Sequence[str] = PHONE_REGIONS, **kwargs):
        super().__init__(supported_regions=tuple(supported_regions), **kwargs)

    def analyze(self, text, entities, nlp_artifacts=None):
        if sum(ch.isdigit() for ch in text) < 7:
            return []
        results = []
        for match in _PHONE_CANDIDATE.finditer(text):
            start, end = match.span()
            candidate = match.group().rstrip(" .-")
            end = start + len(candidate)
            score = self._score(candidate)
            if score is None:
                continue
            why = "phone-shaped number"
            if _context_hit(_PHONE_CONTEXT, text, start, end):
                score += CONTEXT_BOOST
                why += " with phone context"
            results.append(recognizer_result(self, self.supported_entities[0], start, end, score, why))
        return results

    def _score(self, candidate: str) -> float | None:
        main = regex.split(r"(?i)\s?(?:x|ext\.?|extension)\s?\d", candidate)[0]
        digits = _digits(main)
        if not 7 <= len(digits) <= 15:
            return None
        if _DATE_LIKE.match(main) or _IPV4_LIKE.match(main) or _SSN_LIKE.match(main) \
                or _DATE_OR_IP_INSIDE.search(main):
            return None
        groups = regex.findall(r"\d+", main)
        if "." in main and not main.startswith("+") and (len(groups) < 3 or max(len(g) for g in groups) > 4):
            return None  # a decimal number or a timestamp, not "030.123.4567"
        separated = bool(regex.search(r"[\s.()-]", main.strip()))
        international = main.startswith(("+", "00"))
        if international:
            number = "+" + digits[2:] if main.startswith("00") else main
            try:
                parsed = phonenumbers.parse(number, None)
                if phonenumbers.is_valid_number(parsed):
                    return 0.75
                if phonenumbers.is_possible_number(parsed):
                    return 0.55
            except phonenumbers.NumberParseException:
                pass
            return 0.3
        for region in self.supported_regions:
            try:
                parsed = phonenumbers.parse(main, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(parsed):
                return 0.6 if separated else 0.4
        if not separated:
            return None
        return 0.3


# country code, check digits, then groups of four (the last one shorter), compact or spaced
_IBAN_CANDIDATE = regex.compile(
    r"(?<![\p{L}\d])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z\d]{4}){2,7}(?:[ -]?[A-Za-z\d]{1,3})?"
)
_ALNUM_RUN = regex.compile(r"[A-Za-z\d]+")


class CaseInsensitiveIbanRecognizer(IbanRecognizer):
    """IBANs in any case, validated by Presidio's checksum and per-country format check.

    Presidio's pattern takes a following word as one more group ("ES82...5088 THAN" + "KS" once a
    text is upper-cased) and only retries without its last two optional groups, so an IBAN followed
    by "thanks" was lost. Here every end of a space- or dash-separated chunk that ends a word is
    tried, longest first, and the first that validates is the finding (score 1.0).
    """

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        results = []
        pos = 0
        while (m := _IBAN_CANDIDATE.search(text, pos)) is not None:
            start = m.start()
            ends = [start + c.end() for c in _ALNUM_RUN.finditer(m.group())]
            ends = [e for e in reversed(ends) if e == len(text) or not text[e].isalnum()]
            end = next((e for e in ends if self.validate_result(text[start:e].upper())), None)
            if end is None:
                pos = start + 1
                continue
            results.append(recognizer_result(self, self.supported_entities[0], start, end, 1.0,
                                             "IBAN checksum and country format"))
            pos = end
        return results


# --------------------------------------------------------------------------------------------
# Credit cards
# --------------------------------------------------------------------------------------------

_CARD_CANDIDATE = regex.compile(r"(?<![\w.-])\d(?:[ -]?\d){11,18}(?![\w-]|\.\d)")
_CARD_CONTEXT = regex.compile(
    r"(?i:\b(?:credit|debit|card|cards|cc|visa|mastercard|amex|american\s+express|discover|jcb|diners|"
    r"maestro|unionpay|payment|pay|charge|charged|billing|expir\w*|cvv|cvc)\b)"
)
# Issuer identification number ranges (public scheme tables) and the lengths each scheme issues.
_IIN = (
    (("4",), range(13, 20)),  # Visa 13/16/19
    ((*(str(p) for p in range(51, 56)), *(str(p) for p in range(2221, 2721))), range(16, 17)),  # Mastercard
    (("34", "37"), range(15, 16)),  # Amex
    (("6011", "65", *(str(p) for p in range(644, 650))), range(16, 20)),  # Discover
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), range(14, 20)),  # Diners
    (tuple(str(p) for p in range(3528, 3590)), range(16, 20)),  # JCB
    (("1800", "2131"), range(15, 16)),  # JCB (15 digits)
    (("50", "56", "57", "58", "6304", "6759", "676", "6390"), range(12, 20)),  # Maestro
    (("62", "81"), range(16, 20)),  # UnionPay
    (("2200", "2201", "2202", "2203", "2204"), range(16, 20)),  # Mir
)


def _known_iin(digits: str) -> bool:
    return any(digits.startswith(prefixes) and len(digits) in lengths for prefixes, lengths in _IIN)


class PaymentCardRecognizer(LocalRecognizer):
    """Payment card numbers, 12-19 digits, Luhn-validated.

    Presidio 2.2.366 misses Mastercard's 2-series (2221-2720) and 19-digit cards. Here a Luhn-valid
    number with a known issuer prefix and length scores 0.95; any other Luhn-valid 12-19 digit
    number scores 0.4 and needs a card word nearby ("card", "cc", "visa" ...), which lifts it to
    0.75. Requiring both keeps order numbers and timestamps out (10% of random numbers pass Luhn).
    """

    def __init__(self, supported_language: str = "en", name: str | None = None):
        super().__init__(supported_entities=["CREDIT_CARD"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if sum(ch.isdigit() for ch in text) < 12:
            return []
        results = []
        for match in _CARD_CANDIDATE.finditer(text):
            digits = _digits(match.group())
            if not 12 <= len(digits) <= 19 or len(set(digits)) == 1 or not luhn_ok(digits):
                continue
            start, end = match.span()
            if _known_iin(digits):
                results.append(recognizer_result(self, "CREDIT_CARD", start, end, 0.95,
                                                 "Luhn-valid, known issuer prefix"))
                continue
            score = 0.4
            why = "Luhn-valid number"
            if _context_hit(_CARD_CONTEXT, text, start, end):
                score += CONTEXT_BOOST
                why += " with card context"
            results.append(recognizer_result(self, "CREDIT_CARD", start, end, score, why))
        return results


# --------------------------------------------------------------------------------------------
# Dates of birth
# --------------------------------------------------------------------------------------------

_MONTH_NAME = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH = rf"{_MONTH_NAME}\.?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{4}})"
)
_DOB = regex.compile(
    r"(?i:\b(?:born|birth\s*date|birthdate|date\s+of\s+birth|d\.?\s?o\.?\s?b\.?|birthday|b\.)"
    r"(?:\s*(?:is|was|on|in|the|:|-|=|,))*\s*)"
    rf"(?P<date>(?i:{_DATE}))\b"
)


class DateOfBirthRecognizer(LocalRecognizer):
    """Dates of birth: a date right after "born", "DOB", "date of birth", "birthday".

    Generic DATE_TIME would also remove "since Tuesday" or "the 3rd of May release", which the
    training data needs, so only dates introduced by a birth cue are taken (score 0.85).
    """

    def __init__(self, supported_language: str = "en", name: str | None = None):
        super().__init__(supported_entities=["DATE_OF_BIRTH"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        lowered = text.lower()
        if not any(cue in lowered for cue in ("born", "birth", "dob", "d.o.b", "b.")):
            return []
        return [
            recognizer_result(self, "DATE_OF_BIRTH", m.start("date"), m.end("date"), 0.85, "date after a birth cue")
            for m in _DOB.finditer(text)
        ]


# --------------------------------------------------------------------------------------------
# Street addresses
# --------------------------------------------------------------------------------------------

_NUM = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?"
_CAP = r"(?:\p{Lu}[\p{L}'’.-]*|\d{1,3}(?:st|nd|rd|th))"
_ANYW = r"[\p{L}][\p{L}'’.-]*"
_EN_TYPES = (
    r"(?:street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|way|court|ct|place|pl|boulevard|blvd|"
    r"terrace|ter|close|crescent|cres|square|sq|squares|parkway|pkwy|highway|hwy|circle|cir|trail|"
    r"row|mews|grove|gardens|gdns|walk|green|hill|park|rise|vale|wharf|quay|cove|alley|loop|pike|"
    r"plaza|crossing|ridge|heights|parade|esplanade|embankment|causeway|fields|gate|meadows?|"
    r"orchard|yard|flats|forges?|streets|rapids|junction|villas|cottages|estates?|extension|falls|"
    r"harbor|harbour|hollow|island|knoll|landing|manor|mill|mills|oval|pass|point|port|prairie|"
    r"ranch|shoals?|springs?|stream|summit|track|turnpike|union|valley|via|view|village|ville|vista|"
    r"wells|út|utca|tér|körút)"
)
_CONT_SUFFIX = (
    r"(?:straße|strasse|str\.|gasse|weg|allee|platz|damm|ufer|steig|pfad|chaussee|markt|"
    r"gatan|gata|gate|gränd|vägen|väg|veien|vei|vegen|vej|gade|stræde|allé|torv|"
    r"katu|kuja|tie|polku|kaari|rinne|raitti|laan|straat|plein|gracht|kade|singel|dreef|"
    r"braut|stígur|vegur|stræti|straeti|gasse|utca)"
)
_CONT_WORD = r"(?:strasse|straße|str\.|gasse|weg|allee|platz|vej|gade|gata|gatan|vägen|veien|katu|tie|laan|straat|utca)"
_PREFIX_TYPES = (
    r"(?:Rue|Rua|Rúa|Via|Viale|Vicolo|Corso|Piazza|Piazzale|Largo|Calle|Carrer|Avenida|Avda\.?|"
    r"Av\.|Avenue|Boulevard|Bd\.?|Chemin|Allée|Impasse|Plaza|Paseo|Camino|Carretera|Travessa|"
    r"Travesía|Praça|Estrada|Alameda|ul\.|Ul\.|ulica|Ulica|al\.|Al\.|aleja|Aleja|os\.|Os\.|trg|Trg|"
    r"ulice|Ulice|náměstí|nám\.|Strada|Str\.|Bulevardul|Calea|Odos|Οδός|Λ\.|Λεωφ\.|ул\.|улица|"
    r"Jalan|Jl\.)"
)
_UNIT = r"(?i:apt\.?|apartment|suite|ste\.|unit|flat|fl\.|floor|room|rm\.?|no\.?|#)\s*#?\s*\d{1,5}[A-Za-z]?"
# "Flat 6, " / "Apt 4B " before the house number
_UNIT_PREFIX = rf"(?:{_UNIT}[ \t]*,?[ \t]+)?"
_PARTICLE = r"(?:de|da|do|dos|das|del|della|des|du|la|le|les|di|von|der|van|den|of|the|y|e|i)"

_STREET_LINE = regex.compile(
    r"(?:"
    # 1. number first, English street type last: "14 Crown Street", "3536 1659 Hoog St",
    #    "Flat 6, 36 Larkspur Street"
    rf"(?<![\w.,-]){_UNIT_PREFIX}{_NUM}(?:[ ,]+{_NUM})?[ \t]+(?:(?:{_CAP}|{_PARTICLE})[ \t]+){{0,4}}"
    rf"{_CAP}[ \t]+(?i:{_EN_TYPES})\b"
    # 2. continental street word (compound or separate), then number: "Friedhofstrasse 33",
    #    "Harjukuja 54", "Villacher Strasse 89"
    rf"|(?<![\w.,-])(?:{_NUM}[ \t]+){{0,2}}(?:{_CAP}[ \t]+){{0,2}}"
    rf"(?:\p{{Lu}}[\p{{L}}-]*?(?i:{_CONT_SUFFIX})|(?i:{_CONT_WORD}))"
    rf"(?:[ \t]+{_CAP}){{0,2}}[ \t]+{_NUM}\b\.?"
    # 3. street type first: "Via Roma 131", "ul. Słowicza 10", "Rue de Piétrain 371"
    rf"|(?<![\w.,-])(?:{_NUM}[ \t]+){{0,2}}{_PREFIX_TYPES}[ \t]+(?:(?:{_ANYW})[ \t]+){{0,5}}?(?:{_NUM}\b|(?:{_CAP}))"
    # 4. name then type word: "Hegyalja út 98", "Fő utca 12"
    rf"|(?<![\w.,-])(?:{_NUM}[ \t]+)?(?:\p{{Lu}}[\p{{L}}-]+[ \t]+){{1,2}}"
    rf"(?:út|utca|u\.|tér|körút|krt\.|rkp\.|sokak|caddesi|cad\.)[ \t]+{_NUM}\b\.?"
    # 5. post office boxes
    r"|(?i:\bP\.?\s?O\.?\s*Box|\bPost\s*(?:Office\s*)?Box|\bPostbox|\bPostfach|\bApartado(?:[ \t]+de[ \t]+Correos)?"
    r"|\bCaixa[ \t]+Postal|\bBoîte[ \t]+Postale|\bSkrytka[ \t]+pocztowa)\s*(?:No\.?\s*)?#?\s*\d{1,6}"
    # 6. US military mail
    r"|(?i:\b(?:PSC|Unit|CMR)\s+\d{3,5},?\s+Box\s+\d{3,5}|\bUS[NC]?[SV]?\s+\p{L}+)\s*\n?\s*"
    r"(?i:APO|FPO|DPO)\s+(?i:AA|AE|AP)\s+\d{5}"
    r")",
    flags=regex.MULTILINE,
)
# lower-case street line, only for texts written entirely in lower case
_STREET_LINE_LOWER = regex.compile(
    rf"(?<![\w.,-]){_UNIT_PREFIX}{_NUM}(?:[ ,]+{_NUM})?[ \t]+(?:{_ANYW}[ \t]+){{1,4}}{_EN_TYPES}\b\.?"
    rf"|(?<![\w.,-])(?:{_NUM}[ \t]+)?[\p{{L}}-]{{3,}}?{_CONT_SUFFIX}[ \t]+{_NUM}\b"
    rf"|(?<![\w.,-])(?:{_NUM}[ \t]+)?(?i:{_PREFIX_TYPES})[ \t]+(?:{_ANYW}[ \t]+){{0,4}}?{_NUM}\b"
    rf"|(?<![\w.,-])[\p{{L}}-]+[ \t]+(?:út|utca|tér)[ \t]+{_NUM}\b",
    flags=regex.MULTILINE | regex.IGNORECASE,
)
# "number + capitalised words + number": "20789 Allika 46", "0138 Brisas 6802"
_NOT_A_DATE = rf"(?!(?i:{_MONTH_NAME})\.?,?[ \t]+\d)"
_NUM_NAME_NUM = regex.compile(
    rf"(?<![\w.,:-])\d{{1,6}}[ \t]+{_NOT_A_DATE}(?:(?!(?:The|Of|To|And|For|In|On|At|A|An)\b){_CAP}[ \t]+){{1,3}}"
    rf"\d{{1,5}}[A-Za-z]?\b\.?(?![.,]?\d)"
)
# "Capitalised words + house number", only next to an address word
_NAME_NUMBER = regex.compile(
    rf"(?<![\w.,-])(?:{_NUM}[ \t]+)?{_NOT_A_DATE}\p{{Lu}}[\p{{L}}'’-]+(?:[ \t]+{_CAP}){{0,2}}[ \t]+\d{{1,5}}[A-Za-z]?\b"
)
_UNIT_ONLY = regex.compile(r"(?<![\w-])(?i:apt\.?|apartment|suite|ste\.)\s*#?\s*\d{1,5}[A-Za-z]?\b")
_UK_POSTCODE = regex.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s*\d[A-Z]{2}\b")
_ADDRESS_CONTEXT = regex.compile(
    r"(?i:\b(?:address|addresses|live|lives|lived|living|reside|resides|residing|located|ship|shipping|"
    r"shipped|deliver|delivered|delivery|send|sent|mail|mailing|post|postal|street|moved|move|moving|"
    r"visit|office|home|house|apartment|flat|statement|bill|billing|door|meet|at|corner)\b)"
)
# Words that end an address's tail: "..., Leeds LS6 9AD, pay it back to ..." stops before "pay".
_TAIL_STOP = (
    r"(?:a|an|the|and|or|but|so|then|to|of|on|in|at|for|from|with|by|as|is|are|was|were|be|been|it|its|"
    r"i|me|my|we|our|us|you|your|he|she|they|his|her|their|this|that|these|there|here|which|who|when|"
    r"if|not|also|just|now|can|could|would|will|should|do|does|did|have|has|had|please|pls|thanks|thank|"
    r"thx|cheers|ok|okay|since|until|before|after|via)"
)
# a line that continues an address block: unit, city, "City, ST 12345", "Country 12345", a postcode
# (not "thanks" or "and the card is ...")
_TAIL_LINE = regex.compile(
    rf"^[\s>]*(?!(?i:{_TAIL_STOP})\b)(?:{_UNIT}|(?:[\p{{L}}(][\p{{L}}().'’-]*\s*,?\s*){{1,4}}(?:\s*\d{{3,6}}(?:-\d{{4}})?)?|"
    r"\d{3,6}(?:-\d{4})?|,\s*\p{L}{1,4}|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})[\s,]*$",
    flags=regex.MULTILINE,
)
_PLACE_WORD = (
    r"(?:\p{Lu}{2}\b"  # a state or country code: "IL", "OR", "UK"
    r"|\p{Lu}\p{Ll}{1,2}\.(?=[ ]\p{Lu})"  # "St. Louis", "Ft. Worth"
    rf"|(?!(?i:{_TAIL_STOP})\b)[\p{{L}}(][\p{{L}}()'’-]*)"
)
_POSTCODE = (
    r"(?:\b(?i:[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}|[A-Z]{1,2}\d[A-Z\d]?)\b"  # UK, or its outward part
    r"|\b\p{L}{2}[ ]\d{5}(?:-\d{4})?\b"  # US state and ZIP: "IL 62735", "or 97201"
    r"|\d{3,6}(?:-\d{4})?\b|\d{2}-\d{3}\b)"  # ZIP / PLZ / "00-950"
)
_PLACE = rf"{_PLACE_WORD}(?:[ ](?:(?i:of|on|upon|am|im|de|la|le|sur)[ ])?{_PLACE_WORD}){{0,3}}"
_CAP_PLACE = rf"(?!(?i:{_TAIL_STOP})\b)\p{{Lu}}[\p{{L}}'’-]*(?:[ ](?!(?i:{_TAIL_STOP})\b)\p{{Lu}}[\p{{L}}'’-]*){{0,3}}"
# one comma-separated part of the tail: "Leeds LS6 9AD", "IL 62735", "04109 Leipzig", place words that
# end where the part ends (comma, line or sentence end), or capitalised ones before a function word
# ("..., Estonia for this card"); so "..., it was charged to" / "..., pay it back" is not taken
_TAIL_PART = (
    rf"(?:\d{{3,6}}(?:[ ]{_PLACE_WORD}){{1,3}}|(?:{_PLACE}[ ])?{_POSTCODE}"
    rf"|{_PLACE}(?=[ \t]*(?:[,;:)?!\n]|$)|\.(?:\s|$))"
    rf"|{_CAP_PLACE}(?=[ ](?i:{_TAIL_STOP})\b))"
)
_SAME_LINE_TAIL = regex.compile(rf"\G(?:,?[ \t]*{_UNIT})?(?:[ \t]*,[ \t]*{_TAIL_PART}){{0,4}}")
_SAME_LINE_WORDS = regex.compile(
    rf"\G(?:[ \t]+(?:{_UNIT}|(?!(?i:{_TAIL_STOP})\b)\p{{Lu}}[\p{{L}}'’.-]*|\d{{3,6}}))+"
)
_STOP_LINE = regex.compile(r"[@:?!]|\d[\d ().-]{6,}\d|^\s*$")


class StreetAddressRecognizer(LocalRecognizer):
    """Street addresses, US/UK and continental European style, with the lines that follow them.

    A street line (number + name + street type, "Flat 6, 36 Larkspur Street", "Harjukuja 54",
    "Via Roma 131", a PO box, US military mail) scores 0.7. The finding then takes in the tail of
    the address: unit, city, region, country and postcode on the same line after commas, and on up
    to four following short lines, stopping at a blank line or a line with a phone number, an
    e-mail or a question. A tail part is a place (before a postcode, a comma, the line's or the
    sentence's end) or a postcode, never "it was charged to ...": an address that swallows the
    next card, IBAN or date of birth would lose the overlap to it, or hide its type.
    "Capitalised words + number" (not a date: "4 February 1943"), a lone "Apt. 5" or a UK postcode
    need an address word nearby.
    """

    def __init__(self, supported_language: str = "en", name: str | None = None):
        super().__init__(supported_entities=["STREET_ADDRESS"], supported_language=supported_language, name=name)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if not any(ch.isdigit() for ch in text):
            return []
        spans: list[tuple] = []
        lower_text = not any(ch.isupper() for ch in text)
        patterns = [_STREET_LINE] + ([_STREET_LINE_LOWER] if lower_text else [])
        for pattern in patterns:
            for m in pattern.finditer(text):
                spans.append((m.start(), self._extend(text, m.end()), 0.7, "street line"))
        for m in _NUM_NAME_NUM.finditer(text):
            if any(s <= m.start() < e for s, e, _, _ in spans):
                continue
            end = self._extend(text, m.end(), same_line_words=False)
            if end > m.end() + 2 or _context_hit(_ADDRESS_CONTEXT, text, m.start(), m.end(), before=60, after=0):
                spans.append((m.start(), end, 0.7, "number, name, number with address tail or context"))
            else:
                spans.append((m.start(), m.end(), 0.45, "number, name, number"))
        context_patterns = [(_NAME_NUMBER, 0.2), (_UNIT_ONLY, 0.3), (_UK_POSTCODE, 0.35)]
        for pattern, base in context_patterns:
            for m in pattern.finditer(text):
                if any(s <= m.start() < e for s, e, _, _ in spans):
                    continue
                if pattern is _NAME_NUMBER and product_shaped(m.group()):
                    continue  # "FiberMax 1000", "HaloBox 6": a product and its model number
                if _context_hit(_ADDRESS_CONTEXT, text, m.start(), m.end(), before=60, after=0):
                    spans.append((m.start(), self._extend(text, m.end()), base + CONTEXT_BOOST,
                                  "address-like with address context"))
                elif base >= 0.3:
                    spans.append((m.start(), m.end(), base, "address part"))
        return [recognizer_result(self, "STREET_ADDRESS", s, e, score, why) for s, e, score, why in spans]

    @staticmethod
    def _extend(text: str, end: int, same_line_words: bool = True) -> int:
        """Extend a street line over the rest of the address (same line, then following lines)."""
        m = _SAME_LINE_TAIL.match(text, end)
        if m and m.end() > end:
            end = m.end()
        sentence_end = end > 0 and text[end - 1] == "."
        m = _SAME_LINE_WORDS.match(text, end) if same_line_words and not sentence_end else None
        if m and m.end() > end:
            end = m.end()
        for _ in range(4):
            if end >= len(text) or text[end] != "\n":
                # allow trailing spaces before the newline
                stripped = text[end:].lstrip(" \t")
                if not stripped.startswith("\n"):
                    break
                end = len(text) - len(stripped)
            line_end = text.find("\n", end + 1)
            line_end = len(text) if line_end < 0 else line_end
            line = text[end + 1:line_end]
            if len(line) > 60 or _STOP_LINE.search(line) or not _TAIL_LINE.match(line):
                break
            end = end + 1 + len(line.rstrip(" ,\t"))
        # a sentence's full stop is not part of the address ("... 20095 Hamburg. Thanks")
        if text[end - 1:end] == "." and (end == len(text) or text[end].isspace()):
            word = regex.search(r"(\w+)\.$", text[max(0, end - 12):end])
            if word and len(word.group(1)) > 3:
                end -= 1
        return end
