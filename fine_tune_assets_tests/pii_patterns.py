"""Independent, regex-only detectors of structured PII, used to check that nothing leaks.

Deliberately not Presidio: a test of the scrubber must not use the scrubber as its own judge.
"""

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# not the digits of a float, nor a digit run inside a hyphenated hex token (a UUID such as an OpenLineage
# runId held a Luhn-valid run of 13 digits and failed a CI run)
CARD = re.compile(r"(?<![\w.])(?<!\w-)(?:\d[ -]?){12,18}\d(?!\d|\.\d|[A-Za-z])")
EMPLOYEE_ID = re.compile(r"\bHBE-\d{6}\b")
ACCOUNT = re.compile(r"\bHB-\d{8}\b")


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def structured_pii(text: str) -> list[str]:
    """Kinds of structured PII found in text (never the values, so assertion messages stay clean)."""
    kinds = []
    for name, pattern in (("email", EMAIL), ("ssn", SSN), ("iban", IBAN), ("ipv4", IPV4),
                          ("employee_id", EMPLOYEE_ID), ("account", ACCOUNT)):
        kinds += [name] * len(pattern.findall(text))
    for match in CARD.findall(text):
        digits = re.sub(r"\D", "", match)
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            kinds.append("card")
    return kinds
