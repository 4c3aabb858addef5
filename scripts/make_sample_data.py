#!/usr/bin/env python3
"""Write the deterministic Halcyon Broadband sample data under ``data/``.

    python scripts/make_sample_data.py [--data-dir DIR]

Outputs (all rewritten on every run, byte-identical from run to run for a given pyarrow version):

    raw/chat_export_2026-09.jsonl        OpenAI-style chat JSONL: triage + support conversations
    raw/chat_export_2026-10.jsonl
    raw/helpdesk_tickets_2026-10.csv     ticketing-system export (mapped to chat by the YAML below)
    raw/helpdesk_tickets_2026-11.parquet
    mappings/helpdesk_tickets.yaml       column -> message mapping for the two ticket exports
    sample_manifest.json                 everything that was planted, with line / row numbers
    README.md                            what the sample is

Only the standard library plus pyarrow (for the one Parquet file). One ``random.Random(20261130)``
drives everything, in a fixed order, so the output never changes unless this file does.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

SEED = 20261130
REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------------

CATEGORIES = ["billing", "outage", "hardware", "plan_change", "cancellation", "account_security", "installation"]
PRIORITIES = ["P1", "P2", "P3", "P4"]
NEXT_ACTIONS = ["escalate_noc", "dispatch_technician", "issue_credit", "send_replacement", "route_retention",
                "reset_credentials", "schedule_install", "reply_with_kb"]

TRIAGE_SYSTEM_PROMPT = (
    "You are the ticket triage assistant for Halcyon Broadband, an internet provider. "
    "Read the customer's message and classify it for the support queue. "
    "category must be one of: billing, outage, hardware, plan_change, cancellation, account_security, "
    "installation. "
    "priority must be one of: P1 (outage affecting many customers or a business, or an account security "
    "breach), P2 (one household completely without service, failed equipment, a missed appointment or an "
    "angry cancellation), P3 (degraded service, billing disputes, plan changes and other routine requests), "
    "P4 (questions and requests for information). "
    "next_action must be one of: escalate_noc, dispatch_technician, issue_credit, send_replacement, "
    "route_retention, reset_credentials, schedule_install, reply_with_kb. "
    "summary is one short, neutral sentence in Halcyon's terms and must not contain any personal data "
    "(no names, contact details, addresses, account or card numbers). "
    "Answer with a single JSON object with the keys category, priority, summary and next_action, "
    "in that order, and nothing else."
)

SUPPORT_SYSTEM_PROMPT = (
    "You are a friendly customer support agent for Halcyon Broadband. You help customers with their "
    "HaloBox router, FiberMax 500 and FiberMax 1000 plans, Halcyon TV, the Halcyon app and their bills. "
    "Be warm and concise, explain steps clearly, and never ask customers for full card numbers or passwords."
)


def triage_answer(category: str, priority: str, summary: str, next_action: str) -> str:
    """The assistant turn, byte for byte what the mapping's json_fields renders (json.dumps defaults)."""
    return json.dumps({"category": category, "priority": priority, "summary": summary,
                       "next_action": next_action}, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------
# PII
# ---------------------------------------------------------------------------------------------------

FIRST_NAMES = [
    "James", "Maria", "Priya", "Wei", "Oluwaseun", "Sofia", "Liam", "Aisha", "Mateo", "Hannah", "Rahul", "Chloé",
    "Lukas", "Fatima", "Kenji", "Emily", "Diego", "Anika", "Tomás", "Grace", "Mohammed", "Ingrid", "Yusuf",
    "Olivia", "Arjun", "Camille", "Jonas", "Nadia", "Ethan", "Zoë", "Carlos", "Mei", "Patrick", "Leila", "Daniel",
    "Sakura", "Noah", "Isabella", "Omar", "Freya", "Siobhan", "Rajesh", "Ana", "Kwame", "Elena", "Marcus",
    "Ayesha", "Benjamin", "Lucía", "Hiroshi", "Margaret", "Dmitri", "Chiamaka", "Brian", "Sunita", "Gareth",
]
LAST_NAMES = [
    "Okafor", "Martinez", "Sharma", "Chen", "Müller", "Dubois", "O'Connor", "Nakamura", "Johnson", "Rossi",
    "Kowalski", "Haddad", "Patel", "Smith", "Fernández", "Nguyen", "Schmidt", "Williams", "Kim", "Andersson",
    "Brown", "Moreau", "Ivanova", "Singh", "García", "Thompson", "Lefebvre", "Hoffmann", "Adeyemi", "Murphy",
    "Costa", "Rahman", "Fischer", "Walsh", "Tanaka", "Bianchi", "Novak", "Campbell", "Mensah", "Lopez", "Jansen",
    "de Vries", "MacDonald", "Petrov", "Yilmaz", "Hughes", "Kaur", "Bakker", "Reyes", "Dimitriou", "Osei",
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "inbox.example.org",
                 "post.example.net", "home.example.com"]
US_PLACES = [("Springfield", "IL", "62704"), ("Portland", "OR", "97205"), ("Austin", "TX", "78701"),
             ("Columbus", "OH", "43215"), ("Denver", "CO", "80202"), ("Raleigh", "NC", "27601"),
             ("Madison", "WI", "53703"), ("Sacramento", "CA", "95814"), ("Boise", "ID", "83702"),
             ("Albany", "NY", "12207")]
US_STREETS = ["Maple Avenue", "Oak Street", "Cedar Lane", "Elm Drive", "Lakeview Road", "Pine Court",
              "Washington Blvd", "Highland Avenue", "Willow Way", "Birch Street", "Sunset Drive", "Park Place"]
UK_PLACES = [("London", "NW1 6XE"), ("Manchester", "M1 4BT"), ("Leeds", "LS1 5DL"), ("Bristol", "BS1 4DJ"),
             ("Edinburgh", "EH1 1YZ"), ("Cardiff", "CF10 1EP"), ("London", "SE1 7PB"), ("Brighton", "BN1 1AE")]
UK_STREETS = ["Baker Street", "Station Road", "Church Lane", "Victoria Road", "High Street", "Mill Lane",
              "Queen's Road", "Albert Terrace", "Kingsway", "Park View"]
DE_PLACES = [("Berlin", "10115"), ("Köln", "50667"), ("München", "80331"), ("Hamburg", "20095")]
DE_STREETS = ["Hauptstraße", "Lindenallee", "Gartenweg", "Schillerstraße", "Bahnhofstraße"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def luhn_check_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended on the right
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_number(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text))


def make_iban(country: str, bban: str) -> str:
    check = 98 - _iban_number(bban + country + "00") % 97
    return f"{country}{check:02d}{bban}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    return _iban_number(compact[4:] + compact[:4]) % 97 == 1


def french_rib_key(bank: str, branch: str, account: str) -> str:
    return f"{97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97:02d}"


class PiiFactory:
    """Fake but realistic personal data. Variants rotate so every format shows up."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._turn: dict[str, int] = {}

    def _next(self, key: str, options: list):
        i = self._turn.get(key, 0)
        self._turn[key] = i + 1
        return options[i % len(options)]

    def make(self, kind: str) -> tuple[str, str, str]:
        return getattr(self, kind)()

    # names ---------------------------------------------------------------------------------------
    def name_parts(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def person_name(self, caps: bool | None = None, parts: tuple[str, str] | None = None):
        first, last = parts or self.name_parts()
        value = f"{first} {last}"
        if self.rng.random() < 0.08:
            value = f"{first} {self.rng.choice(string.ascii_uppercase)}. {last}"
        if caps is None:
            caps = self.rng.random() < 0.14
        if caps:
            return ("person_name", "all_caps", value.upper())
        return ("person_name", "full_name", value)

    def first_name(self, first: str | None = None):
        return ("person_name", "first_name", first or self.rng.choice(FIRST_NAMES))

    # contact -------------------------------------------------------------------------------------
    def email(self, parts: tuple[str, str] | None = None):
        first, last = parts or self.name_parts()
        f = re.sub(r"[^a-z]", "", ascii_fold(first).lower())
        l = re.sub(r"[^a-z]", "", ascii_fold(last).lower())
        local = self.rng.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}{l}{self.rng.randint(1, 99)}", f"{f}_{l}",
                                 f"{l}.{f}", f"{f}.{l}{self.rng.randint(70, 99)}"])
        return ("email", "address", f"{local}@{self.rng.choice(EMAIL_DOMAINS)}")

    def phone(self):
        rng = self.rng
        variant = self._next("phone", ["us", "uk", "de", "fr", "in", "intl", "us", "uk"])
        if variant == "us":
            area, line = rng.choice([415, 312, 503, 512, 614, 303, 919, 608, 916, 206]), f"01{rng.randint(0, 99):02d}"
            value = rng.choice([f"({area}) 555-{line}", f"{area}-555-{line}", f"+1 {area} 555 {line}",
                                f"({area}) 555 {line}"])
        elif variant == "uk":
            tail = f"{rng.randint(0, 999):03d}"
            value = rng.choice([f"+44 20 7946 0{tail}", f"020 7946 0{tail}", f"+44 7700 900{tail}",
                                f"07700 900{tail}"])
        elif variant == "de":
            value = rng.choice([f"+49 30 {rng.randint(1000000, 9999999)}", f"+49 (0)30 {rng.randint(10000000, 99999999)}",
                                f"+49 151 {rng.randint(10000000, 99999999)}", f"030 {rng.randint(1000000, 9999999)}"])
        elif variant == "fr":
            pairs = " ".join(f"{rng.randint(0, 99):02d}" for _ in range(4))
            value = rng.choice([f"+33 1 {pairs}", f"01 {pairs}", f"+33 6 {pairs}", f"06 {pairs}"])
        elif variant == "in":
            a, b = f"{rng.randint(6, 9)}{rng.randint(0, 9999):04d}", f"{rng.randint(0, 99999):05d}"
            value = rng.choice([f"+91 {a} {b}", f"+91-{a}-{b}", f"+91 {a}{b}"])
        else:  # international with dots / dashes
            area, line = rng.choice([415, 312, 503, 206]), f"01{rng.randint(0, 99):02d}"
            pairs = [f"{rng.randint(0, 99):02d}" for _ in range(4)]
            value = rng.choice([f"+1-{area}-555-{line}", f"+44.20.7946.0{rng.randint(0, 999):03d}",
                                f"+49-30-{rng.randint(1000000, 9999999)}", "+33." + "6." + ".".join(pairs),
                                f"{area}.555.{line}", f"0044-20-7946-0{rng.randint(0, 999):03d}"])
        return ("phone", variant, value)

    # identifiers ---------------------------------------------------------------------------------
    def us_ssn(self):
        rng = self.rng
        area = rng.choice([a for a in range(1, 900) if a != 666])
        value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        return ("us_ssn", "dashed", value)

    def credit_card(self):
        rng = self.rng
        variant = self._next("card", ["visa_16", "mastercard_5", "mastercard_2", "amex_15", "visa_19"])

        def digits(n: int) -> str:
            return "".join(str(rng.randint(0, 9)) for _ in range(n))

        if variant == "visa_16":
            partial = "4" + digits(14)
        elif variant == "mastercard_5":
            partial = f"5{rng.randint(1, 5)}" + digits(13)
        elif variant == "mastercard_2":
            partial = str(rng.randint(2221, 2720)) + digits(11)
        elif variant == "amex_15":
            partial = rng.choice(["34", "37"]) + digits(12)
        else:
            partial = "4" + digits(17)
        number = partial + luhn_check_digit(partial)
        assert luhn_valid(number)
        groups = [4, 6, 5] if variant == "amex_15" else [4, 4, 4, 4, 3][: (5 if variant == "visa_19" else 4)]
        parts, i = [], 0
        for g in groups:
            parts.append(number[i:i + g])
            i += g
        style = rng.random()
        value = " ".join(parts) if style < 0.6 else ("-".join(parts) if style < 0.75 else number)
        return ("credit_card", variant, value)

    def iban(self):
        rng = self.rng
        country = self._next("iban", ["DE", "GB", "FR", "NL"])

        def digits(n: int) -> str:
            return "".join(str(rng.randint(0, 9)) for _ in range(n))

        if country == "DE":
            iban = make_iban("DE", digits(8) + digits(10))
        elif country == "GB":
            iban = make_iban("GB", rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + digits(6) + digits(8))
        elif country == "FR":
            bank, branch, account = digits(5), digits(5), digits(11)
            iban = make_iban("FR", bank + branch + account + french_rib_key(bank, branch, account))
        else:
            while True:  # Dutch account numbers also pass the old 11-test
                acc = digits(9)
                rest = sum(int(d) * w for d, w in zip(acc, range(10, 1, -1))) % 11
                last = (11 - rest) % 11
                if last < 10:
                    break
            iban = make_iban("NL", rng.choice(["ABNA", "RABO", "INGB", "TRIO"]) + acc + str(last))
        assert iban_valid(iban)
        value = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.7 else iban
        return ("iban", country, value)

    def ipv4(self):
        rng = self.rng
        variant = self._next("ipv4", ["public", "public", "documentation", "private"])
        if variant == "public":
            value = (f"{rng.choice([81, 86, 92, 109, 141, 152, 176, 185, 212, 217])}.{rng.randint(1, 254)}."
                     f"{rng.randint(0, 254)}.{rng.randint(1, 254)}")
        elif variant == "documentation":
            value = f"{rng.choice(['203.0.113', '198.51.100', '192.0.2'])}.{rng.randint(1, 254)}"
        else:
            value = rng.choice([f"192.168.1.{rng.randint(2, 254)}", f"10.0.{rng.randint(0, 9)}.{rng.randint(2, 254)}"])
        return ("ipv4", variant, value)

    def ipv6(self):
        rng = self.rng

        def group() -> str:
            return f"{rng.randint(0, 0xFFFF):x}"

        variant = self._next("ipv6", ["compressed", "full"])
        prefix = rng.choice(["2001:db8", "2a02:c7f", "2a00:23c6", "2001:db8"])
        if variant == "compressed":
            value = f"{prefix}:{group()}:{group()}::{group()}:{group()}"
        else:
            value = f"{prefix}:" + ":".join(group() for _ in range(6))
        return ("ipv6", variant, value)

    def street_address(self):
        rng = self.rng
        variant = self._next("address", ["us", "uk", "us", "uk", "de"])
        if variant == "us":
            city, state, zip_code = rng.choice(US_PLACES)
            street = f"{rng.randint(100, 9899)} {rng.choice(US_STREETS)}"
            if rng.random() < 0.25:
                street += f", Apt {rng.randint(1, 30)}{rng.choice('ABCD')}"
            value = f"{street}, {city}, {state} {zip_code}"
        elif variant == "uk":
            city, postcode = rng.choice(UK_PLACES)
            value = f"{rng.randint(1, 180)} {rng.choice(UK_STREETS)}, {city} {postcode}"
            if rng.random() < 0.5:
                value = f"Flat {rng.randint(1, 24)}, " + value
        else:
            city, plz = rng.choice(DE_PLACES)
            value = f"{rng.choice(DE_STREETS)} {rng.randint(1, 120)}, {plz} {city}"
        return ("street_address", variant, value)

    def date_of_birth(self):
        rng = self.rng
        y, m, d = rng.randint(1948, 2004), rng.randint(1, 12), rng.randint(1, 28)
        variant = self._next("dob", ["dd/mm/yyyy", "iso", "d month yyyy", "dd.mm.yyyy", "month d, yyyy"])
        value = {"dd/mm/yyyy": f"{d:02d}/{m:02d}/{y}", "iso": f"{y}-{m:02d}-{d:02d}",
                 "d month yyyy": f"{d} {MONTHS[m - 1]} {y}", "dd.mm.yyyy": f"{d:02d}.{m:02d}.{y}",
                 "month d, yyyy": f"{MONTHS[m - 1]} {d}, {y}"}[variant]
        return ("date_of_birth", variant, value)

    def employee_id(self):
        return ("employee_id", "hbe", f"HBE-{self.rng.randint(100000, 999999)}")

    def account_number(self):
        return ("account_number", "hb", f"HB-{self.rng.randint(10000000, 99999999)}")


# Placeholders keep PII out of the way of typos and case changes until the text is final.
PH_OPEN, PH_CLOSE = "\u27e6", "\u27e7"
PH_RE = re.compile("\u27e6(\\d+)\u27e7")


class Registry:
    """The PII items of one conversation; text refers to them through placeholders."""

    def __init__(self):
        self.items: list[tuple[str, str, str]] = []

    def ph(self, item: tuple[str, str, str]) -> str:
        self.items.append(item)
        return f"{PH_OPEN}{len(self.items) - 1}{PH_CLOSE}"

    def render(self, text: str) -> tuple[str, list[int]]:
        used = [int(m.group(1)) for m in PH_RE.finditer(text)]
        return PH_RE.sub(lambda m: self.items[int(m.group(1))][2], text), used


# ---------------------------------------------------------------------------------------------------
# Slots: the non-personal details that make tickets differ
# ---------------------------------------------------------------------------------------------------

ROUTERS = ["HaloBox", "HaloBox 6", "Halobox", "HaloBox router", "router", "Halo box", "HaloBox 6 router", "halobox",
           "wifi box", "HaloBox (the white one)", "HaloBox 6", "HaloBox"]
PLANS = {"FiberMax 500": ["FiberMax 500", "Fibermax 500", "the FiberMax 500 plan", "FiberMax 500", "the 500 plan"],
         "FiberMax 1000": ["FiberMax 1000", "FIBERMAX 1000", "the FiberMax 1000 plan", "the gig plan (FiberMax 1000)",
                           "FiberMax 1000"]}
LIGHTS = ["red", "flashing red", "blinking orange", "solid amber", "flashing white", "purple", "blinking red"]
DEVICES = ["iPhone 13", "iPhone 15 Pro", "Galaxy S23", "Pixel 8", "MacBook Air", "ThinkPad", "work laptop", "iPad",
           "Chromebook", "Surface Pro", "Galaxy Tab", "Dell laptop", "OnePlus 12", "Fire TV stick", "desktop PC"]
CONSOLES = ["PS5", "Xbox Series X", "Xbox One", "Nintendo Switch", "gaming PC", "Steam Deck"]
TV_MODELS = ["LG OLED TV", "Samsung Frame TV", "Sony Bravia", "Hisense smart TV", "TCL Google TV", "Philips Ambilight TV"]
AREAS = ["Riverside", "the Oakwood estate", "Hillcrest", "the town centre", "Northfield", "the harbour district",
         "Millbrook", "Eastgate", "Westbury", "Cedar Park", "Ashford Green", "Kingsmead", "Fairview", "Old Town"]
TIMES = ["6am", "7:15", "9 this morning", "lunchtime", "half past two", "4pm", "8pm", "11pm", "midnight",
         "10:40"]
BIZ = ["dental practice", "café", "law firm", "accounting firm", "veterinary clinic", "hair salon",
       "architecture studio", "bakery", "physiotherapy clinic", "logistics company", "estate agency", "print shop",
       "yoga studio", "pharmacy"]
CAUSES = ["the builders next door", "a delivery lorry", "our gardener", "the bin lorry", "a fallen branch",
          "a digger from the roadworks", "the scaffolders", "a removal van"]
INTERVALS = ["10 minutes", "half an hour", "hour or so", "few minutes", "20 minutes", "couple of hours"]
WHENS = ["between 8 and 11pm", "around dinner time", "in the mornings", "when we're all home", "late at night",
         "during work hours"]
DUR2 = ["for the last week", "since last Tuesday", "for about a fortnight", "all month", "for a few days",
        "since the weekend", "for ages"]
AGES = ["a year", "18 months", "two years", "six months", "three years", "eight months", "four years"]
COMPETITORS = ["another provider", "a local fibre company", "my mobile network's home broadband",
               "a cheaper provider", "the new fibre company in town"]
TOWNS = ["a village up north", "the countryside", "Scotland", "the coast", "a small town out west",
         "my parents' farm", "an island with no fibre"]
FEES = ["£5 late payment fee", "$9.99 'network access fee'", "paper bill fee", "$12 equipment rental charge",
        "€7.50 'service charge'", "$4.99 'HaloBox protection' fee", "$25 'truck roll' charge"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "yesterday"]
ETAS = ["6pm today", "midnight", "tomorrow morning", "around 3pm", "later this evening"]
# (what the customer says, what the summary says)
DURATIONS = [("since this morning", "since this morning"), ("since about 7am", "since early morning"),
             ("since last night", "since last night"), ("for 3 days now", "for three days"),
             ("for two days", "for two days"), ("since yesterday afternoon", "since yesterday"),
             ("for the past few hours", "for several hours"), ("since 6:30 this morning", "since this morning"),
             ("for almost 5 hours", "for about five hours"), ("since Saturday", "for several days"),
             ("all weekend", "over the weekend"), ("since the storm on Tuesday night", "since a storm"),
             ("for over 24 hours", "for over a day"), ("since I got home from work", "since this evening"),
             ("since around lunchtime", "since midday"), ("for about an hour", "for about an hour")]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def money(rng: random.Random) -> str:
    cur = rng.choice(["$", "$", "$", "£", "€"])
    return f"{cur}{rng.randint(35, 189)}.{rng.choice(['00', '99', '49', '50', '95'])}"


def make_slots(rng: random.Random, month: int) -> dict:
    """Every slot any template may use; month is the export month (1-12)."""
    dur, dur_s = rng.choice(DURATIONS)
    router = rng.choice(ROUTERS)
    plan_canon = rng.choice(list(PLANS))
    amount = money(rng)
    return {
        "dur": dur, "dur_s": dur_s, "router": router, "Router": "HaloBox 6" if "6" in router else "HaloBox",
        "plan": rng.choice(PLANS[plan_canon]), "Plan": plan_canon, "light": rng.choice(LIGHTS),
        "device": rng.choice(DEVICES), "console": rng.choice(CONSOLES), "tv_model": rng.choice(TV_MODELS),
        "area": rng.choice(AREAS), "time": rng.choice(TIMES), "n": rng.randint(3, 12), "biz": rng.choice(BIZ),
        "staff": rng.randint(4, 60), "sites": rng.randint(2, 7), "minutes": rng.randint(20, 95),
        "times": rng.choice(["three", "four", "five", "like 10", "several", "two"]), "cause": rng.choice(CAUSES),
        "interval": rng.choice(INTERVALS), "when": rng.choice(WHENS), "dur2": rng.choice(DUR2),
        "speed": rng.randint(8, 160), "speed2": rng.randint(430, 940), "age": rng.choice(AGES),
        "amount": amount, "amount2": amount[0] + f"{rng.randint(25, 60)}.00", "month": MONTHS[month - 1],
        "prev_month": MONTHS[(month - 2) % 12], "month2": MONTHS[(month + rng.randint(0, 2)) % 12],
        "fee": rng.choice(FEES), "days": rng.choice(["two", "three", "four", "five", "2", "3"]),
        "years": rng.randint(2, 14), "competitor": rng.choice(COMPETITORS), "town": rng.choice(TOWNS),
        "date": f"{ordinal(rng.randint(1, 28))} {MONTHS[(month + rng.randint(0, 1)) % 12]}",
        "day": rng.choice(DAYS), "day_ord": ordinal(rng.randint(1, 28)), "weeks": rng.randint(2, 10),
        "eta": rng.choice(ETAS), "exp": f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}",
    }


# ---------------------------------------------------------------------------------------------------
# Triage tickets. Labels follow fixed rules: the category from the topic, the priority from severity
# cues (many customers or a business down / a breach -> P1; one home fully down, dead equipment, missed
# appointment, angry cancellation -> P2; degraded service and routine requests -> P3; questions -> P4),
# the next action from the category and the cues.
# ---------------------------------------------------------------------------------------------------

TRIAGE = {
    "outage_area": {
        "labels": ("outage", "P1", "escalate_noc"), "weight": 6,
        "scenarios": [
            (["Our internet has been completely down {dur} and it's not just us, {n} of our neighbours are offline too.",
              "Nobody on our street has had internet {dur}. I've checked with the neighbours and they're all on Halcyon.",
              "Total loss of service {dur}. The neighbours on both sides are down as well so this is clearly a wider problem.",
              "is there an outage in {area}?? nobody around here has internet {dur}",
              "Every house on our road seems to have lost broadband {dur}, we've been comparing notes in the street group chat."],
             ["Customer reports a total outage {dur_s} that also affects neighbouring homes.",
              "Multiple households on the same street have had no service {dur_s}; likely area outage."]),
            (["The whole apartment building is offline {dur}. I've spoken to people on three other floors and none of us have internet.",
              "Everyone in our block of flats lost internet and Halcyon TV at around {time}.",
              "Our entire condo complex ({n} units, all Halcyon) has had no service {dur}.",
              "All the flats in our building have had no broadband {dur}, the caretaker says the Halcyon cabinet in the basement has no lights on."],
             ["Whole residential building without service; several units confirmed affected.",
              "Customer reports that all units in their building have lost broadband."]),
            (["No internet at all {dur}, and the Halcyon community forum is full of people from {area} saying the same.",
              "Looks like there's a big outage in {area}, half the town has been posting about it {dur}.",
              "Fibre seems to be dead for the whole of {area} {dur}. Even the café down the road with Halcyon is offline.",
              "Massive outage here in {area}, multiple streets have been down {dur}."],
             ["Widespread outage reported in the customer's area {dur_s}, many customers affected.",
              "Customer reports a neighbourhood-wide loss of service {dur_s}."]),
        ],
        "details": ["I already restarted the {router}, no change.", "The {router} shows a {light} light.",
                    "Halcyon TV is down too.", "There were workmen digging near the street cabinet yesterday.",
                    "The Halcyon app says there are no known issues, which clearly isn't right.",
                    "I work from home and have calls all afternoon.",
                    "One of the neighbours is elderly and relies on the internet for her care alarm.",
                    "Mobile data is the only thing working for any of us.", "We're on {plan}.",
                    "I tried calling but was on hold for {minutes} minutes.",
                    "It started right after a short power cut in the area.",
                    "My {device} can't connect to anything.",
                    "Someone said the green cabinet at the end of the road has its door hanging open."],
        "asks": ["Can you please get your network team on it?", "Is there an ETA for a fix?", "Please escalate this.",
                 "Can someone look into it urgently?", "Any update would be appreciated.", "When will it be back?",
                 "How long is this going to take?"],
        "subjects": ["Area outage", "Outage in {area}?", "Internet down for everyone here", "URGENT - everyone offline",
                     "Wider outage?", "No internet for anyone around here"],
    },
    "outage_business": {
        "labels": ("outage", "P1", "escalate_noc"), "weight": 4,
        "scenarios": [
            (["Our office has been completely offline {dur}. We're a {biz} with {staff} staff and nobody can work.",
              "Business account here. Our fibre line dropped at {time} and nothing has worked since.",
              "We run a {biz} and our Halcyon business connection has been down {dur}, the whole team is sitting idle.",
              "URGENT: business line down {dur}, {staff} people unable to work."],
             ["Business customer's office has had no service {dur_s}; staff unable to work.",
              "Business fibre line down, affecting the whole office."]),
            (["All {sites} of our shop locations lost connectivity {dur}.",
              "We have {sites} branches on Halcyon business fibre and every one of them has been down {dur}.",
              "Our {sites} offices across town have all been offline {dur}, including the VPN between them."],
             ["Business customer reports all {sites} sites offline {dur_s}.",
              "Multi-site business outage {dur_s}; every location affected."]),
            (["Our card terminals and internet have been down {dur}, we can't take payments.",
              "The VoIP phones and internet at our {biz} went dead {dur}. Customers can't reach us.",
              "Our {biz} cannot process card payments or take bookings because the Halcyon line has been down {dur}."],
             ["Business customer cannot take payments or calls due to a line outage {dur_s}.",
              "Business line down {dur_s}, affecting card payments and phones."]),
        ],
        "details": ["We're on the business {plan} package with a static IP.",
                    "Staff are tethering to their phones, which isn't sustainable.",
                    "We are losing money every hour this continues.",
                    "Our contract says four hour response for business faults.",
                    "The {router} in the comms cupboard shows a {light} light.",
                    "Our IT contractor already power cycled everything.",
                    "The static IP isn't responding to ping from outside.", "We have customers waiting at the counter.",
                    "Our cloud accounting and booking system are unreachable.", "It's our busiest day of the week.",
                    "The backup 4G dongle only covers the tills."],
        "asks": ["Please treat this as a priority.", "We need an engineer or an update ASAP.",
                 "Please call us back urgently.", "What is the ETA?", "Please escalate to your network team immediately."],
        "subjects": ["URGENT: business line down", "Business outage - all staff offline", "Office internet down",
                     "P1 - no connectivity at our {biz}", "Business connectivity lost"],
    },
    "outage_single": {
        "labels": ("outage", "P2", "dispatch_technician"), "weight": 6,
        "scenarios": [
            (["No internet at home {dur}. My neighbours are fine so it seems to be just our line.",
              "We have had no service at all {dur}. Next door is on Halcyon too and theirs works fine.",
              "Internet has been down {dur}. The Halcyon app shows no outage for my area and the neighbours are online, so it must be our line.",
              "hello my broadband is not working {dur}, the neighbours are all fine, just us"],
             ["Single household has had no service {dur_s} while neighbours are unaffected, suggesting a line fault.",
              "Customer's home is completely without service {dur_s}; nearby homes are working."]),
            (["Our connection has been completely dead {dur}. The fibre box on the wall has a red LOS light.",
              "Fibre terminal shows a red LOS light and we've had no internet {dur}.",
              "No service {dur}, the little white fibre box where the cable comes in has a flashing red light marked LOS.",
              "Broadband dead {dur}. Your support article says a red LOS light means a fibre fault, and that's what we've got."],
             ["Customer has had no service {dur_s} and the fibre terminal shows a LOS light, indicating a line fault.",
              "Total loss of service with a LOS alarm on the customer's fibre terminal."]),
            (["The fibre cable outside our house was cut by {cause} and now we have no internet.",
              "A tree came down in the storm and pulled the cable off our house. No service {dur}.",
              "The cable from the pole to our house is hanging on the ground after {cause} hit it, and the internet is dead.",
              "Our drop cable got ripped off the wall by {cause}. Obviously nothing works now."],
             ["Drop cable to the customer's home was physically damaged and service is down.",
              "Customer's external fibre cable was damaged, causing a total loss of service."]),
        ],
        "details": ["I've rebooted the {router} {times} times.", "I did a factory reset like the app suggested, no change.",
                    "Halcyon TV just says 'no signal'.", "I'm working from home and using my phone hotspot for now.",
                    "My kids have online school tomorrow.", "We're on {plan}.",
                    "I'm home all week if a technician needs to come.", "I tried a different ethernet cable, still nothing.",
                    "All the lights on the {router} are on except the internet one.",
                    "Can't even load the Halcyon website on my {device}.",
                    "Paying for a service that doesn't work isn't great."],
        "asks": ["Can you send someone out to fix it?", "When can a technician come?", "Please arrange a repair.",
                 "How soon can you get an engineer here?", "Please help, we really need the internet back.",
                 "What do I need to do?"],
        "subjects": ["Line down", "Broadband not working", "No internet at home", "Total loss of service",
                     "Need an engineer - no internet", "Connection dead"],
    },
    "outage_intermittent": {
        "labels": ("outage", "P3", "reply_with_kb"), "weight": 6,
        "scenarios": [
            (["My connection keeps dropping every {interval}, then comes back after a minute.",
              "Internet cuts out several times an evening, usually {when}.",
              "The wifi disconnects randomly {dur2}. It always comes back on its own but it's driving me mad.",
              "we keep losing connection for a few seconds at a time, especially on video calls",
              "Our broadband has been dropping out {dur2}, just for a minute or two each time."],
             ["Customer reports intermittent connection drops that recover on their own.",
              "Connection drops out repeatedly for short periods; service otherwise working."]),
            (["I'm paying for {plan} but speed tests only show {speed} Mbps.",
              "Speeds have been terrible {dur2}, {speed} Mbps on a plan that should give me way more.",
              "Everything is really slow in the evenings, streaming buffers and pages take ages to load.",
              "The speed on my {device} is about {speed} Mbps even right next to the {router}."],
             ["Customer reports slower speeds than expected on their connection.",
              "Customer reports degraded speeds well below what their plan should deliver."]),
        ],
        "details": ["I've restarted the {router} a few times.", "It's the same on wifi and ethernet.",
                    "Mainly happens in the evening.", "Video calls freeze and then drop.",
                    "My {device} loses connection but the others sometimes stay on.", "It's been like this {dur2}.",
                    "Online gaming is basically impossible.", "The {router} lights look normal.",
                    "Nothing has changed on our side.", "I ran the speed test in the Halcyon app too.",
                    "Streaming on the {tv_model} keeps dropping to low quality."],
        "asks": ["Is there anything I can try?", "What can I do to fix this?", "Is there a known issue?", "Any tips?",
                 "Can you check my line?", ""],
        "subjects": ["Connection problems", "Internet not right", "Poor connection", "Problems with my broadband",
                     "Connection quality"],
    },
    "hw_dead": {
        "labels": ("hardware", "P2", "send_replacement"), "weight": 4,
        "scenarios": [
            (["My {router} won't turn on at all. No lights, nothing.",
              "The {router} died overnight. Completely dead, not even the power light.",
              "Our HaloBox stopped working after a power surge and doesn't power up any more.",
              "The power adapter for the {router} seems to be broken, the box gets no power whatsoever.",
              "HaloBox is dead - I smelt burning plastic this morning and now it won't switch on."],
             ["Customer's {Router} will not power on and appears to have failed.",
              "The customer's {Router} is completely dead after a failure or power surge."]),
        ],
        "details": ["I've tried different sockets.", "There was a thunderstorm last night.",
                    "So we have no internet at all at the moment.", "It's about {age} old.",
                    "The fibre box on the wall still has a green light.", "The reset button does nothing.",
                    "My neighbour lent me their spare power supply and that didn't work either.",
                    "I tried it in another room as well.", "We're on {plan}."],
        "asks": ["Can you send me a new one?", "How quickly can I get a replacement?", "Please send a replacement router.",
                 "What are my options?", "Do I need to return the old one?"],
        "subjects": ["HaloBox dead", "Router won't power on", "Need replacement router", "No lights on HaloBox",
                     "Router dead"],
    },
    "hw_faulty": {
        "labels": ("hardware", "P3", "send_replacement"), "weight": 5,
        "scenarios": [
            (["My {router} keeps rebooting itself every {interval}.",
              "The {router} gets really hot and then restarts.",
              "The {router} randomly restarts, I can see the lights cycling through the startup sequence."],
             ["Customer's {Router} reboots repeatedly and appears faulty."]),
            (["One of the ethernet ports on the {router} stopped working, nothing I plug in gets a link light.",
              "The 5GHz wifi on my {router} has disappeared completely, only the 2.4GHz network shows up.",
              "The wifi from the {router} only reaches a few metres now, it used to cover the whole house."],
             ["Customer reports a partial hardware fault on their {Router}."]),
            (["The Halcyon TV box freezes on the logo screen every time I switch it on.",
              "The remote for our Halcyon TV box stopped working, new batteries didn't help.",
              "Halcyon TV box makes a clicking noise and the picture keeps freezing."],
             ["Customer's Halcyon TV equipment is faulty and needs replacing."]),
        ],
        "details": ["I did a factory reset, no change.", "Internet works otherwise.", "It's about {age} old.",
                    "I've tried other cables and devices.", "It sits on a shelf with plenty of ventilation.",
                    "The firmware is up to date according to the app.", "It started after the last update.",
                    "I've tried it in a different socket.", "My {device} shows the same thing."],
        "asks": ["Can I get a replacement?", "Is this a known fault?", "Please swap it.", "What do you suggest?",
                 "Can you send a new one?"],
        "subjects": ["Equipment fault", "Faulty equipment", "Hardware problem", "Something wrong with my equipment",
                     "Device fault"],
    },
    "hw_howto": {
        "labels": ("hardware", "P4", "reply_with_kb"), "weight": 5,
        "scenarios": [
            (["How do I change the wifi name and password on my {router}?",
              "What's the default admin password for the HaloBox 6?",
              "Can I turn off the 2.4GHz band on the {router}?"],
             ["Customer asks how to change settings on their {Router}."]),
            (["How do I set up port forwarding on the {router} for my {console}?",
              "Is it possible to put the {router} into bridge mode so I can use my own mesh system?",
              "How do I give my {device} a fixed IP address on the HaloBox?"],
             ["Customer asks how to configure advanced settings on their {Router}."]),
            (["Where is the best place to put the {router}? Signal upstairs is weak.",
              "Does the {router} work with third-party wifi extenders?",
              "Does the HaloBox 6 support WPA3 and can I turn it on?"],
             ["Customer asks for advice on wifi coverage and features of their {Router}."]),
        ],
        "details": ["I'm not very technical.", "I looked in the app but couldn't find it.",
                    "The leaflet that came with it is pretty thin.", "It's for my {device}.", "No rush.",
                    "Just want to make sure I don't break anything.", "My son usually does this but he's away.",
                    "Everything else is working fine."],
        "asks": ["Thanks for any pointers.", "Is there a guide somewhere?", "Can you send me instructions?",
                 "Just a quick question.", ""],
        "subjects": ["Question about HaloBox settings", "HaloBox question", "Router settings question",
                     "Quick question about my router", "Wifi question"],
    },
    "bill_dispute": {
        "labels": ("billing", "P3", "issue_credit"), "weight": 7,
        "scenarios": [
            (["I've been charged twice for my {month} bill, {amount} went out on the 1st and again on the 3rd.",
              "There are two identical payments of {amount} on my statement this month.",
              "You took my direct debit twice in {month}."],
             ["Customer was charged twice for one monthly bill and requests a refund."]),
            (["My bill went up to {amount} but I was promised {amount2} a month for the first year when I signed up.",
              "I'm still being charged for Halcyon TV even though I cancelled it in {prev_month}.",
              "There's a {fee} on my bill that nobody told me about."],
             ["Customer disputes an incorrect charge on their bill."]),
            (["We had no internet for {days} days last week. I'd like a service credit for that.",
              "After the long outage in {prev_month} I'd expect some money back, can you apply a service credit?",
              "Your engineer confirmed the line fault lasted {days} days, so please credit my account."],
             ["Customer requests a service credit for a multi-day outage."]),
        ],
        "details": ["I've checked my bank statement twice.", "This is the second time this has happened.",
                    "I've been a customer for {years} years.", "The Halcyon app shows the same.", "I'm on {plan}.",
                    "Money is tight this month so I need it sorted.", "Nobody replied to my last email.",
                    "I don't want to have to go to my bank about this."],
        "asks": ["Please refund the difference.", "I want that money back.", "Can you fix this and refund me?",
                 "Please credit my account.", "Please sort this out."],
        "subjects": ["Refund request", "Billing error", "Problem with my bill", "Charge dispute", "Bill is wrong",
                     "{month} bill"],
    },
    "bill_question": {
        "labels": ("billing", "P4", "reply_with_kb"), "weight": 5,
        "scenarios": [
            (["Why is my first bill higher than the monthly price?",
              "Can you explain the line 'pro-rata adjustment' on my bill?",
              "What does the 'HaloBox rental' item on my invoice mean? I thought the router was included."],
             ["Customer asks for an explanation of items on their bill."]),
            (["How do I change the date my direct debit comes out?", "Can I switch to paperless billing?",
              "How can I update the card you charge each month?",
              "Where can I download my invoices for my accountant?"],
             ["Customer asks how to change their billing or payment settings."]),
        ],
        "details": ["Not complaining, just want to understand.", "I'm new to Halcyon.",
                    "I looked in the Halcyon app but couldn't see it.", "My partner normally handles this.",
                    "I get paid on the 25th so that would help.", "No rush on this.", "I'm on {plan}."],
        "asks": ["Thanks!", "Could you explain?", "Thanks in advance for the info.", "Just let me know.",
                 "Appreciate it."],
        "subjects": ["Question about my bill", "Billing question", "Invoice question", "Quick billing query"],
    },
    "plan_upgrade": {
        "labels": ("plan_change", "P3", "reply_with_kb"), "weight": 4,
        "scenarios": [
            (["I'd like to upgrade from FiberMax 500 to FiberMax 1000.",
              "Please upgrade my plan to FiberMax 1000, we've got {n} people working from home now.",
              "We want to go up to the gig plan, what do I need to do?"],
             ["Customer wants to upgrade from FiberMax 500 to FiberMax 1000."]),
            (["Can you add Halcyon TV to my broadband package?",
              "I'd like to add the sports pack to Halcyon TV.",
              "We'd like Halcyon TV added on to our internet, the kids keep asking."],
             ["Customer wants to add Halcyon TV or a TV package to their plan."]),
        ],
        "details": ["Happy to stay on the same contract length.", "Does it need a new router?", "Is there an upgrade fee?",
                    "My current contract ends in {month2}.", "The kids are gaming and streaming at the same time.",
                    "I saw the offer in the Halcyon app."],
        "asks": ["Please go ahead.", "Let me know the next steps.", "How soon can it be active?", "Can you set that up?"],
        "subjects": ["Plan upgrade", "Change my package", "Upgrade request", "Adding to my plan"],
    },
    "plan_downgrade": {
        "labels": ("plan_change", "P3", "route_retention"), "weight": 4,
        "scenarios": [
            (["I need to downgrade from FiberMax 1000 to FiberMax 500, it's just too expensive now.",
              "We don't need the gig speed any more since my son moved out, please drop us to the 500 plan."],
             ["Customer wants to downgrade from FiberMax 1000 to FiberMax 500 to reduce costs."]),
            (["Can I move to a cheaper plan? Money is tight and {amount} a month is too much.",
              "Is there anything cheaper than what I'm paying now? {amount} a month is a lot for us."],
             ["Customer wants to move to a cheaper plan to reduce costs."]),
            (["Please remove Halcyon TV from my package, we never watch it and I need to cut costs.",
              "Can you take the TV part off my bill? We only use the internet and need to save money."],
             ["Customer wants to remove Halcyon TV from their package to save money."]),
        ],
        "details": ["I've been with you {years} years.", "I lost my job recently.", "My contract finished last month.",
                    "I don't want to leave Halcyon, I just need it cheaper.", "Prices have gone up everywhere.",
                    "I saw cheaper deals online."],
        "asks": ["What can you offer?", "Please let me know what's possible.", "Please make the change from next month.",
                 "How much would I save?"],
        "subjects": ["Downgrade plan", "Cheaper plan please", "Change my plan", "Reduce my bill"],
    },
    "plan_question": {
        "labels": ("plan_change", "P4", "reply_with_kb"), "weight": 4,
        "scenarios": [
            (["What's the actual difference between FiberMax 500 and FiberMax 1000?",
              "Is FiberMax 1000 really twice as fast as the 500 plan in practice?"],
             ["Customer asks about the differences between the FiberMax plans."]),
            (["When does my minimum term end?", "How long is left on my contract?"],
             ["Customer asks when their minimum contract term ends."]),
            (["Which channels are included in basic Halcyon TV?", "Does Halcyon TV include the sports channels?"],
             ["Customer asks which channels are included in Halcyon TV."]),
            (["Can I pause my plan while I'm abroad for {weeks} weeks?",
              "Is there a data cap on FiberMax 500?"],
             ["Customer asks a general question about their plan terms."]),
        ],
        "details": ["Just curious before I decide anything.", "We're {n} people in the house.",
                    "Mostly streaming and some gaming.", "The website isn't very clear on this.",
                    "I'm on {plan} right now."],
        "asks": ["Thanks.", "Could you clarify?", "Let me know please.", ""],
        "subjects": ["Plan question", "Question about my package", "Quick question", "Plan info"],
    },
    "cancel_routine": {
        "labels": ("cancellation", "P3", "route_retention"), "weight": 5,
        "scenarios": [
            (["I'm moving abroad in {month2} and need to cancel my Halcyon broadband.",
              "We're moving to {town}, which Halcyon doesn't cover, so I'd like to cancel.",
              "Please cancel my service from the end of {month2}, I'm moving in with my partner who already has internet."],
             ["Customer wants to cancel their service because they are moving home."]),
            (["I've found a cheaper deal elsewhere and want to cancel.",
              "Another provider is offering me double the speed for less, so please cancel my contract.",
              "I'd like to cancel my broadband, I'm switching to {competitor}."],
             ["Customer wants to cancel to switch to a cheaper competitor offer."]),
        ],
        "details": ["My contract ended in {prev_month}.", "How do I return the {router}?",
                    "Please confirm there are no early termination fees.", "I've been a customer for {years} years.",
                    "Nothing wrong with the service itself.", "I need the final bill sent by email."],
        "asks": ["Please confirm the cancellation.", "What do I need to do?", "Let me know the final date.",
                 "Please process this."],
        "subjects": ["Cancel my service", "Cancellation request", "Moving - cancel broadband", "Leaving Halcyon"],
    },
    "cancel_angry": {
        "labels": ("cancellation", "P2", "route_retention"), "weight": 3,
        "scenarios": [
            (["That's it, I want to cancel. {n} outages this month and nobody can tell me why.",
              "I am DONE with Halcyon. Cancel my account today, not in 30 days, TODAY.",
              "After three missed appointments and weeks without reliable internet I want to cancel immediately and without any fees.",
              "Your service has been down more than it's been up. Cancel everything now."],
             ["Frustrated customer demands immediate cancellation after repeated service problems."]),
            (["Cancel my contract now. I've been lied to by your agents over and over and I'm reporting you to the regulator.",
              "I want to cancel and I'm filing a formal complaint with the ombudsman, this has been a disaster."],
             ["Angry customer demands immediate cancellation and threatens a formal complaint."]),
        ],
        "details": ["I've wasted hours on hold.", "I want written confirmation.", "I will not pay any exit fee.",
                    "Every time I call I get a different story.",
                    "I work from home and have lost income because of this.",
                    "Don't bother trying to offer me a discount."],
        "asks": ["Cancel it now.", "I expect a reply today.", "Confirm in writing.", "Do it today."],
        "subjects": ["CANCEL MY ACCOUNT", "Formal complaint and cancellation", "Cancel immediately", "Fed up - cancel"],
    },
    "sec_breach": {
        "labels": ("account_security", "P1", "reset_credentials"), "weight": 3,
        "scenarios": [
            (["Someone has logged into my Halcyon account and changed the email address.",
              "I got an alert that my Halcyon app password was changed, but it wasn't me.",
              "There are devices listed on my Halcyon account I don't recognise and my account password has been changed.",
              "Somebody ordered a new HaloBox on my account and had it sent to a different address."],
             ["Customer reports unauthorised access to their Halcyon account."]),
            (["I clicked a link in a text that looked like it was from Halcyon and entered my password. Now I can't log in.",
              "I think I've been scammed: I gave my account password to someone who called saying they were Halcyon.",
              "I entered my login details on a fake Halcyon site and now my account shows changes I didn't make."],
             ["Customer's account credentials were compromised through a phishing attempt."]),
        ],
        "details": ["I've never shared my password with anyone before.", "The change happened yesterday evening.",
                    "I'm worried about the card details stored on the account.", "I can't log in at all now.",
                    "The contact number on the account was also changed.", "Please lock the account."],
        "asks": ["Please secure my account urgently.", "What do I do now?", "Please help ASAP.",
                 "Can you lock it down and reset everything?"],
        "subjects": ["Account hacked", "URGENT - unauthorised access", "Someone changed my password",
                     "Possible fraud on my account", "Security problem"],
    },
    "sec_locked": {
        "labels": ("account_security", "P3", "reset_credentials"), "weight": 4,
        "scenarios": [
            (["I've forgotten my password for the Halcyon app and the reset email never arrives.",
              "My account is locked after too many login attempts."],
             ["Customer is locked out of their Halcyon account and needs a credential reset."]),
            (["The two-factor code for the Halcyon app never arrives on my new phone.",
              "I changed my mobile number and now I can't get the verification code to log in."],
             ["Customer cannot receive login verification codes and needs access restored."]),
        ],
        "details": ["I've checked my spam folder.", "It's been like this {dur2}.", "I need to download my invoices.",
                    "I've tried on my {device} and on the laptop.", "Nothing suspicious, I just forgot it."],
        "asks": ["Can you reset it for me?", "How do I get back in?", "Please help me log in.", "What should I do?"],
        "subjects": ["Can't log in", "Locked out of account", "Login problem", "Can't access my account"],
    },
    "sec_phishing": {
        "labels": ("account_security", "P4", "reply_with_kb"), "weight": 3,
        "scenarios": [
            (["I received an email saying my Halcyon account will be suspended unless I pay a fee. Is this genuine?",
              "Got a text from 'Halcyon' with a link to claim a refund. Looks dodgy, is it really from you?",
              "Someone phoned claiming to be from Halcyon tech support and asked me to install remote access software. I hung up. Was that you?",
              "I keep getting emails from an address ending in halcyon-refunds-secure.net. Are they yours?"],
             ["Customer reports a suspected phishing message and asks whether it is genuine."]),
        ],
        "details": ["I didn't click anything.", "I haven't given any details.", "Just checking before I do anything.",
                    "My mum got the same message.", "It used your logo.", "The spelling was a bit off."],
        "asks": ["Can you confirm?", "Should I just delete it?", "Thought you should know.", "Is it real?"],
        "subjects": ["Is this genuine?", "Suspicious message", "Scam?", "Phishing?"],
    },
    "inst_new": {
        "labels": ("installation", "P3", "schedule_install"), "weight": 5,
        "scenarios": [
            (["I've just signed up for {plan} and need to book the installation.",
              "We're new customers and would like to arrange the fibre install as soon as possible.",
              "Ordered Halcyon broadband online yesterday, how do I book the install?"],
             ["New customer needs an installation appointment booked."]),
            (["We're moving house on the {date} and want to take our Halcyon service with us.",
              "I'm moving to a new flat next month, can you set up the internet there from day one?",
              "Please move my broadband to my new address, we get the keys on the {date}."],
             ["Customer is moving home and needs service installed at the new address."]),
        ],
        "details": ["Weekday mornings work best.", "I work from home so any time is fine.",
                    "The new place already has a Halcyon fibre point.", "I don't think the building has ever had fibre.",
                    "We're on {plan}.", "Can the technician also set up Halcyon TV?",
                    "I'm available from the {day_ord} onwards."],
        "asks": ["What slots do you have?", "Please book the earliest date.", "Let me know the available dates.",
                 "Can you arrange that?"],
        "subjects": ["Book installation", "Installation appointment", "Installation request", "Need an install date"],
    },
    "inst_missed": {
        "labels": ("installation", "P2", "schedule_install"), "weight": 3,
        "scenarios": [
            (["The technician was supposed to come between 8 and 12 today for our installation and nobody showed up.",
              "I took a day off work for the install and the engineer never arrived.",
              "Our installation appointment was {day} and nobody came, and no one called to explain."],
             ["Installation technician missed the booked appointment; customer needs a new slot."]),
            (["Second time the installer hasn't turned up. I waited in all day.",
              "This is the second installation appointment you've missed. Nobody came again today."],
             ["Installer missed a booked appointment for the second time; customer needs a reliable new date."]),
        ],
        "details": ["I've lost a day's pay.", "We've been without internet since we moved in.",
                    "The app still says 'technician en route'.", "Nobody answered when I called.",
                    "We need the internet for work."],
        "asks": ["Please rebook urgently.", "I want a guaranteed slot this time.", "When can you come?",
                 "What happened?"],
        "subjects": ["Technician no-show", "Missed installation appointment", "Installer didn't turn up",
                     "Where is the engineer?"],
    },
    "inst_question": {
        "labels": ("installation", "P4", "reply_with_kb"), "weight": 4,
        "scenarios": [
            (["How long does a typical fibre installation take?", "Do I need to be home for the whole installation?",
              "Will the technician need to drill through the wall?",
              "Do I need to do anything to prepare before the installer comes?"],
             ["Customer asks what to expect on installation day."]),
            (["Can the installer put the HaloBox in the upstairs office instead of by the front door?",
              "Can the fibre point go in the living room rather than the hallway?"],
             ["Customer asks where the equipment can be installed."]),
        ],
        "details": ["The install is booked for the {date}.", "We rent, so I need to ask the landlord about drilling.",
                    "Just want to plan the day.", "It's an older house with thick walls."],
        "asks": ["Thanks.", "Just checking.", "Any info appreciated.", ""],
        "subjects": ["Installation day question", "What happens at install", "Installation question",
                     "Preparing for install"],
    },
}

# Which PII a customer tends to volunteer, by category (weights).
PII_BY_CATEGORY = {
    "billing": {"credit_card": 5, "iban": 4, "account_number": 3, "email": 2, "phone": 1, "us_ssn": 1},
    "outage": {"ipv4": 3, "ipv6": 2, "street_address": 3, "phone": 3, "account_number": 2, "employee_id": 1},
    "hardware": {"ipv4": 2, "ipv6": 2, "street_address": 3, "phone": 2, "account_number": 2, "employee_id": 1},
    "plan_change": {"account_number": 3, "email": 2, "phone": 2, "credit_card": 1, "street_address": 1, "us_ssn": 1},
    "cancellation": {"account_number": 3, "street_address": 2, "iban": 1, "credit_card": 1, "phone": 2, "email": 1},
    "account_security": {"date_of_birth": 4, "us_ssn": 3, "email": 3, "phone": 2, "account_number": 2, "ipv4": 1},
    "installation": {"street_address": 4, "phone": 3, "employee_id": 2, "email": 1, "account_number": 1,
                     "date_of_birth": 1},
}

PII_SNIPPETS = {
    "email": ["You can email me at {v}.", "My login email is {v}.", "Please send the confirmation to {v}.",
              "Reply to {v} please, I don't check the other inbox.", "the email on the account is {v}"],
    "phone": ["Call me on {v} if that's easier.", "My mobile is {v}.", "Best number to reach me is {v}.",
              "You can ring me on {v} any time after 5.", "please call {v}"],
    "us_ssn": ["For verification my SSN is {v}.", "The account is under my name, social security number {v}.",
               "Your agent asked for my SSN last time so here it is: {v}."],
    "credit_card": ["The charge went on my card {v}.", "Please refund it to my card {v} (exp {exp}).",
                    "I paid with {v}, expiry {exp}.", "Card number is {v} if you need it."],
    "iban": ["Please refund to my bank account, IBAN {v}.", "The direct debit comes out of {v}.",
             "My IBAN is {v} in case you need it for the refund."],
    "ipv4": ["The HaloBox status page shows WAN IP {v}.", "My public IP is {v}, if that helps.",
             "I can't even ping the gateway at {v}.", "Traceroute stops at {v}."],
    "ipv6": ["The router shows an IPv6 address of {v} but nothing loads.", "My IPv6 address is {v}.",
             "The status page lists IPv6 {v}."],
    "street_address": ["The service address is {v}.", "I live at {v}.", "Address: {v}", "We're at {v}."],
    "date_of_birth": ["My date of birth is {v}, for verification.", "DOB: {v}", "I was born {v} if you need to verify me.",
                      "d.o.b. {v}"],
    "employee_id": ["Your technician (ID {v}) said someone would call back.",
                    "Agent {v} promised me a callback that never happened.",
                    "I spoke to employee {v} on the phone last week.", "The engineer's badge said {v}."],
    "account_number": ["My account number is {v}.", "Account: {v}", "acct no. {v}", "It's for account {v}."],
}
SIGNATURE_KINDS = {"phone": ["{v}", "Tel: {v}", "Mobile: {v}", "m. {v}"], "email": ["{v}", "Email: {v}"],
                   "street_address": ["{v}"], "account_number": ["Account {v}", "Acct: {v}"]}

GREETINGS = ["Hi,", "Hello,", "Hi there,", "Hey,", "Good morning,", "Good afternoon,", "Dear Halcyon,",
             "Dear Halcyon Broadband support,", "Hello Halcyon team,", "To whom it may concern,", "Hiya,", "Evening,",
             "hi", "Hello support,", "Hi team,", "Morning all,"]
SIGNOFFS = ["Thanks", "Thanks,", "Thank you,", "Regards,", "Kind regards,", "Best regards,", "Cheers,", "Many thanks,",
            "Thx", "Best,", "Sincerely,", "Thanks in advance,", "Appreciate the help,"]
NAME_INTROS = ["My name is {v}.", "This is {v}.", "{v} here.", "I'm {v}, the account holder.", "{v} writing."]


# ---------------------------------------------------------------------------------------------------
# Ordinary support conversations (friendly agent, 2-4 exchanges). Placeholders in capitals ({EMAIL},
# {ADDRESS}, {CARD}, {IBAN}) carry personal data; an exchange that needs them is only used when the
# conversation carries PII ("pii": True).
# ---------------------------------------------------------------------------------------------------

SUPPORT = {
    "wifi_password": [
        {"u": ["How do I change the wifi password on my {router}?",
               "the wifi password is still the one on the sticker and half the street probably knows it by now. how do I change it?",
               "Could you tell me how to change our Wi-Fi name and password? We just got the {router}.",
               "I'd like a new wifi password, what's the easiest way to do it on the HaloBox?"],
         "a": ["The easiest way is in the Halcyon app: tap 'My HaloBox', then 'Wi-Fi settings', and you can set a new network name and password there. Tap save and the HaloBox will restart its Wi-Fi, which takes about a minute.",
               "Open the Halcyon app, go to 'My HaloBox' and choose 'Wi-Fi settings'. You can change the network name and the password on that screen. Once you save, give it a minute or so while the HaloBox applies the change.",
               "You can do it from your phone. In the Halcyon app, 'My HaloBox' > 'Wi-Fi settings' lets you pick a new name and password; the Wi-Fi restarts for about a minute after you save."]},
        {"u": ["Will everything get disconnected when I do that?", "ok and what happens to the devices already connected?",
               "Do I have to reconnect the {tv_model} and everything after?"],
         "a": ["Yes, any device that was using the old password will drop off and you'll need to reconnect it with the new one. Phones and laptops just need the new password; for smart TVs and speakers it's usually under Settings > Network.",
               "They will disconnect, I'm afraid. Each device needs to be reconnected with the new password. Smart speakers and TVs are the ones people usually forget, so it's worth making a quick list first."]},
        {"u": ["Can I also set up a separate network for guests?", "Is there a guest wifi option? My in-laws visit a lot.",
               "what about a guest network so visitors don't get my main password"],
         "a": ["Yes! In the same 'Wi-Fi settings' screen there's a 'Guest network' toggle. Guests get internet access but can't see your other devices, and you can set it to switch off automatically after 24 hours.",
               "There is. Turn on 'Guest network' under Wi-Fi settings in the app. It has its own name and password, and devices on it can't see your computers or printers."]},
        {"u": ["The app says 'HaloBox unreachable' when I try to save.", "it just says unreachable when I open my halobox in the app",
               "Hmm, I'm getting an error: HaloBox unreachable."],
         "a": ["That usually means your phone is on mobile data rather than the HaloBox Wi-Fi. Connect to your home Wi-Fi, close and reopen the app, and try again. If it still says unreachable, restarting the HaloBox normally clears it.",
               "That message appears when the app can't talk to the HaloBox directly. Make sure your phone is connected to your home Wi-Fi, not mobile data, then pull down to refresh. If that doesn't help, a quick restart of the HaloBox should fix it."]},
    ],
    "tv_setup": [
        {"u": ["I just got a new {tv_model} and want to set up Halcyon TV on it, where do I start?",
               "can I watch Halcyon TV on my new smart TV without the box?",
               "We bought a {tv_model}, how do we get Halcyon TV working on it?"],
         "a": ["Great choice! On most smart TVs you can install the Halcyon TV app from the TV's app store. Open it and it will show a code on screen; then go to 'TV > Add a screen' in the Halcyon app on your phone and enter the code. That links the TV to your subscription.",
               "Yes, you can! Search for 'Halcyon TV' in your TV's app store and install it. When you open it you'll see a short activation code; enter that in the Halcyon app under 'TV > Add a screen' and you're all set."]},
        {"u": ["Does it count as an extra screen? We already have the box in the living room.", "how many TVs can we use at once?",
               "Is there a limit on how many TVs we can have?"],
         "a": ["Your Halcyon TV plan includes up to three screens streaming at the same time, and the box counts as one of them. So you can use the living room box plus two more TVs or tablets together.",
               "You can have up to three streams at once on a standard Halcyon TV plan. The set-top box counts as one, so you'd still have two left for other screens."]},
        {"u": ["Some channels are missing in the app compared to the box.", "why can't I see the sports channels on the TV app?",
               "A few channels don't show up on the new TV, is that normal?"],
         "a": ["A small number of channels are only licensed for the set-top box, so they won't appear in the app. Sports channels should appear if your package includes them; if they don't, try signing out and back in so the app refreshes your channel list.",
               "That can happen. A handful of channels are box-only because of licensing rules. For anything that's part of your package but not showing, sign out of the app and sign back in; that refreshes the channel list."]},
        {"u": ["Can I record shows from the TV app?", "is there a way to record on the new TV", "Does recording work on the app too?"],
         "a": ["Recordings are stored in the cloud, so anything you record on the box is also available in the app. You can start new recordings from the app as well by pressing the record button on a programme's page.",
               "Yes: Halcyon TV uses cloud recording, so you can schedule recordings from the app and watch them on any screen, including the box."]},
    ],
    "first_bill": [
        {"u": ["my first bill is {amount} but the plan is supposed to be {amount2} a month. Why?",
               "why is my first bill so high? I thought FiberMax was cheaper than this",
               "Could you explain my first invoice? It's a lot more than I expected."],
         "a": ["Your first bill usually includes a part-month charge from your installation date to the start of your billing cycle, plus the first full month in advance. From the second bill onwards you'll just see the regular monthly price.",
               "The first bill covers the days between your installation and your regular billing date (the pro-rata part) as well as the next full month in advance, which is why it's higher. Your next bill will be the standard monthly amount."]},
        {"u": ["What's the 'one-off activation' line?", "there's also an activation fee on there, is that normal?",
               "And what is the activation charge?"],
         "a": ["That's the one-time setup charge for new connections. It only appears on your first bill. If you signed up during a promotion that waived it, let me know and I'll check.",
               "Yes, the activation fee is a one-time charge for setting up the line and it won't come back on future bills."]},
        {"u": ["Can I change the date the payment comes out?", "is it possible to move my payment date to later in the month?",
               "Could I pay on the 28th instead?"],
         "a": ["Absolutely. In the Halcyon app go to 'Billing' > 'Payment date' and pick any day between the 1st and the 28th. The change applies from your next bill.",
               "Yes, you can choose a payment date between the 1st and the 28th in the app under Billing > Payment date. If you change it, one bill may be slightly adjusted to cover the difference in days."]},
    ],
    "parental_controls": [
        {"u": ["How can I set up parental controls for my kids' devices?", "is there a way to block certain websites for my children?",
               "I want to limit screen time on my son's {device}, can the HaloBox do that?"],
         "a": ["In the Halcyon app, open 'My HaloBox' > 'Family'. You can create a profile for each child, add their devices, and choose a content filter level. Everything is applied at the HaloBox, so it works on any device connected to your Wi-Fi.",
               "You can do that from the Halcyon app: go to 'Family', create a profile for each child and assign their devices to it. You can then pick a filter level and block specific sites."]},
        {"u": ["Can I pause the internet at bedtime?", "can I turn the wifi off for them at 9pm automatically",
               "Is there a schedule option?"],
         "a": ["There is. Each profile has a 'Bedtime' schedule; set the times and their devices lose internet access during those hours while everyone else stays online.",
               "Yes, under each profile you'll find 'Schedules'. You can set a bedtime and school-night hours, and you can also pause a profile instantly with the pause button."]},
        {"u": ["Will this work when they use mobile data?", "what if they just switch to 4g?", "Does it still apply outside the house?"],
         "a": ["The HaloBox controls only apply to your home Wi-Fi, so they won't cover mobile data. For that you'd need the parental settings on the phone itself or from the mobile network.",
               "Only on your home Wi-Fi, I'm afraid. Mobile data goes through the phone network, so you'd need to use the phone's own parental controls for that."]},
        {"u": ["Can I see which sites they've been visiting?", "is there a history of what got blocked?",
               "Do I get a report of their usage?"],
         "a": ["Each profile shows a weekly summary with time online and any blocked attempts, but not a full browsing history. That keeps things useful for parents without being too intrusive.",
               "You'll find a weekly report on each profile with time online and blocked sites. It doesn't list every page visited."]},
    ],
    "moving_house": [
        {"u": ["We're moving house next month, can we take our Halcyon broadband with us?",
               "i'm moving to a new flat on the {date}, how do i transfer my internet",
               "Moving home soon. What do I need to do to keep my Halcyon service?"],
         "a": ["Congratulations on the move! Yes, you can move your service. I just need the new address and your moving date, and I'll check availability and book the installation there.",
               "Exciting! We can move your service with you. Could you tell me the new address and the date you get the keys? I'll check FiberMax availability and set up the move."]},
        {"pii": True,
         "u": ["The new place is {ADDRESS} and we move on the {date}.", "it's {ADDRESS}, moving in on the {date}",
               "New address: {ADDRESS}. Keys on the {date}."],
         "a": ["Thanks! I've checked {ADDRESS} and FiberMax is available there. I've booked a technician for your moving day between 8am and 12pm, and service at your current address will stop the evening before.",
               "Good news, {ADDRESS} can get FiberMax. I've booked the installation for the {date}, morning slot, and you'll get a text reminder the day before."]},
        {"u": ["Do I need to bring the HaloBox?", "what do we do with the router?", "Should we take the HaloBox and TV box with us?"],
         "a": ["Yes, please bring your HaloBox and any Halcyon TV boxes with you. The technician will connect them at the new place, so there's no need for new equipment.",
               "Please take the HaloBox and the TV box with you. The technician will set them up at the new address."]},
        {"u": ["Will my price change?", "Is my monthly price staying the same?", "do we pay anything for the move?"],
         "a": ["Your plan and monthly price stay exactly the same, and there's no fee for moving within our coverage area.",
               "Moving is free within our coverage area and your current price carries over."]},
    ],
    "slow_wifi": [
        {"u": ["I'm on {plan} but my {device} only gets about {speed} Mbps on wifi. Is that normal?",
               "speed test on my phone says {speed} Mbps, thought FiberMax was meant to be fast??",
               "My wifi speeds are way lower than the plan speed, what gives?"],
         "a": ["Wi-Fi speeds are usually lower than the speed to your home, especially further from the HaloBox or through walls. Could you run a test with a laptop plugged into the HaloBox with a cable? That tells us whether the line itself is delivering the full speed.",
               "The plan speed is what reaches your HaloBox; over Wi-Fi you'll often see less depending on distance, walls and the device. A wired speed test is the best way to check the line itself. Could you try one?"]},
        {"u": ["With a cable I get {speed2} Mbps.", "ok plugged in the laptop, it's {speed2} now", "Wired test gives {speed2} Mbps."],
         "a": ["That's great, so the line is performing as it should. To get more over Wi-Fi, make sure your devices are on the 5GHz network and try moving the HaloBox somewhere central and off the floor.",
               "Perfect, that means your line is fine. For better Wi-Fi, connect to the 5GHz network and keep the HaloBox out in the open rather than in a cupboard."]},
        {"u": ["How do I know if I'm on 5GHz?", "what's 5ghz and how do I switch?", "Is the 5GHz network a different name?"],
         "a": ["On the HaloBox 6 both bands share one name by default and devices pick the best one automatically. You can split them in the app under Wi-Fi settings > 'Separate bands' if you want to choose manually.",
               "By default the HaloBox shows one network name and moves devices between bands for you. If you prefer, you can split them into two names in the app so you can pick the 5GHz one."]},
        {"u": ["Would an extender help upstairs?", "should I buy a wifi booster for the bedroom?", "Do you sell mesh extenders?"],
         "a": ["An extender can help if the signal upstairs is weak. Most mesh extenders work with the HaloBox 6, and we also offer the Halo Mesh point for a small monthly fee, which you can add in the app.",
               "It might! If you still have weak spots after moving the HaloBox, a mesh point will help. You can add a Halo Mesh point from the app and it pairs automatically."]},
    ],
    "gaming_nat": [
        {"u": ["My {console} says NAT type strict, how do I fix it on the HaloBox?", "I need to open ports for my {console}, how do I do that?",
               "online gaming keeps saying my NAT is strict, help"],
         "a": ["In the Halcyon app go to 'My HaloBox' > 'Advanced' > 'Port forwarding'. Choose your console from the device list and select the gaming preset, or add the ports manually. Then restart the console.",
               "You can fix that in the Halcyon app: 'My HaloBox' > 'Advanced' > 'Port forwarding'. Pick the console from the list and use the gaming preset; that opens the ports it needs."]},
        {"u": ["Should I also turn on UPnP?", "is upnp on by default?", "Do I need UPnP as well?"],
         "a": ["UPnP is on by default on the HaloBox 6, so many consoles don't need manual port forwarding at all. If it's on and the NAT type is still strict, the manual ports are the next step.",
               "It's on by default. If your NAT type is still strict with UPnP enabled, setting up the port forwarding manually usually solves it."]},
        {"u": ["Now it says NAT type moderate.", "ok now it shows moderate instead of strict", "Better, it's moderate now. Can it be open?"],
         "a": ["Moderate is fine for most games. To get Open, give the console a reserved IP address in the app under 'Devices', then re-apply the port forwarding rule to that address.",
               "That's progress! For Open NAT, reserve a fixed IP for the console under 'Devices' and make sure the port forwarding rule points to it, then restart the console."]},
    ],
    "payment_method": [
        {"u": ["I need to change the card my bill is paid with.", "my card expired, how do I update the payment details?",
               "Can I switch from card payments to direct debit?"],
         "a": ["For security, please don't send card details in chat. You can update your payment method in the Halcyon app under 'Billing' > 'Payment method', or on the website under My Account.",
               "Please update it yourself in the Halcyon app (Billing > Payment method) so your card details stay secure. I can't take card numbers here."]},
        {"pii": True,
         "u": ["Oh sorry, I already typed it out: {CARD} exp {exp}.", "can't you just use this one: {CARD}",
               "The new bank account is {IBAN}, can you set it up?"],
         "a": ["Thanks, but for your security I won't use details shared in chat, and I'd recommend not sharing them here in future. Please enter them in the app under Billing > Payment method; it only takes a minute.",
               "I understand, but I can't process payment details sent in chat. Please add them in the app under Billing. If you're worried the number was exposed, you may want to let your bank know."]},
        {"u": ["When will the new method be used?", "will this month's bill use the new card?", "Does the change apply to the current bill?"],
         "a": ["If you update it at least three working days before your payment date, this month's bill will use the new method. Otherwise it applies from the next bill.",
               "Changes made three or more working days before the payment date apply straight away; otherwise from the following bill."]},
    ],
    "outage_status": [
        {"u": ["Is there an outage in {area} right now?", "internet's down, is it just me or is there a problem in {area}?",
               "How do I check if there's an outage in {area} before I call?"],
         "a": ["Let me check. Yes, the NOC is working on a fibre fault affecting parts of {area}. The current estimate is that service will be restored by {eta}. You can follow updates in the Halcyon app under 'Service status'.",
               "The Halcyon app has a 'Service status' page that shows any known outages for your address. Right now I can see a reported fault in {area} that our network team is working on, with an estimated fix by {eta}."]},
        {"u": ["Will I get money back for the time it's down?", "do we get compensated for this?", "Is there a refund for outages?"],
         "a": ["If an outage lasts more than 24 hours, a service credit is applied automatically to your next bill for each full day without service. You don't need to claim it.",
               "For outages longer than 24 hours we add a service credit to your next bill automatically, one day's worth for each full day affected."]},
        {"u": ["Can you text me when it's back?", "can I get a notification when it's fixed?", "Is there a way to get alerts?"],
         "a": ["Turn on notifications under 'Service status' in the Halcyon app and you'll get a message as soon as the fault is cleared.",
               "In the app's 'Service status' page tap 'Notify me' and we'll send a push notification when service is restored."]},
    ],
    "upgrade_info": [
        {"u": ["Thinking about upgrading to FiberMax 1000, is it worth it for a family of {n}?",
               "what would I gain going from FiberMax 500 to 1000?", "Is the 1000 plan much faster in practice?"],
         "a": ["FiberMax 500 is plenty for most households, including several 4K streams at once. FiberMax 1000 makes a difference if you move big files, have lots of people gaming or streaming together, or use wired devices that can take advantage of gigabit speeds.",
               "It depends on how you use the internet. With FiberMax 1000 downloads and uploads are roughly twice as fast, which helps busy households and people who work with large files. For everyday streaming and browsing, FiberMax 500 is usually enough."]},
        {"u": ["Do I need a new router for it?", "will my halobox handle gigabit?", "Would I get the HaloBox 6 with the upgrade?"],
         "a": ["If you already have a HaloBox 6 you're all set. If you have the older HaloBox, we'll send you a HaloBox 6 free of charge with the upgrade.",
               "The HaloBox 6 supports full gigabit speeds. If you're on an older model, we'll swap it for a HaloBox 6 at no cost when you upgrade."]},
        {"u": ["Does it restart my contract?", "would upgrading lock me in for another 2 years?", "What happens to my contract if I upgrade?"],
         "a": ["Upgrading starts a new 12-month minimum term for the new plan, but there's no upgrade fee, and the new speed is usually active within 24 hours.",
               "An upgrade starts a fresh 12-month term at the new price. There's no fee and the change usually happens within a day."]},
    ],
    "app_login": [
        {"u": ["I can't log into the Halcyon app, it keeps saying my password is wrong.", "forgot my halcyon app password, help",
               "The app won't let me sign in on my new {device}."],
         "a": ["Sorry about that! Tap 'Forgot password' on the login screen and we'll email you a reset link. It's valid for 30 minutes, so use it soon after it arrives.",
               "Let's get you back in. Use 'Forgot password' on the sign-in screen to get a reset email. If you don't see it within a few minutes, check your spam folder."]},
        {"u": ["The reset email isn't arriving.", "no email came, checked spam too", "Still no reset email after 10 minutes."],
         "a": ["Thanks for checking. Could you confirm the email address on your account? Sometimes it's an older address.",
               "Let's check the email on file. Which address do you usually receive your bills at?"]},
        {"pii": True,
         "u": ["It should be {EMAIL}.", "probably {EMAIL}", "My bills go to {EMAIL}."],
         "a": ["Thanks! I've sent a fresh reset link to {EMAIL}. It should arrive within a couple of minutes.",
               "Got it. A new reset link is on its way to {EMAIL}."]},
        {"u": ["Got it, I'm in now!", "that worked, thanks", "All sorted, I can log in."],
         "a": ["Brilliant! Consider turning on two-step verification under Settings > Security for extra protection.",
               "Great to hear! If you'd like extra security, you can turn on two-step verification in the app's security settings."]},
    ],
}
SUPPORT_FORCE_PII = {"moving_house"}

SUPPORT_PREAMBLES = ["Quick question.", "Sorry if this is a silly question.", "We just moved in last week.",
                     "I'm not very techy.", "Hope you can help.", "First time using this chat.",
                     "My partner usually sorts this stuff out.", "Been meaning to ask this for a while.",
                     "I've looked on the website but couldn't find it.", "Hope you're having a good day."]
ASSISTANT_OPENERS = ["Sure!", "Good question.", "Happy to help.", "Thanks for asking!", "Of course.",
                     "No problem at all.", "Great question!", "Absolutely.", "Let me help with that.", ""]
ASSISTANT_EXTRAS = ["Let me know if you get stuck on any step.", "If anything looks different on your screen, tell me what you see.",
                    "I can also send you a link to the step-by-step guide.", "Is there anything else you'd like to check while we're here?",
                    "It usually takes less than five minutes.", "Feel free to ask if any of that isn't clear."]
CLOSINGS_U = ["Perfect, thanks!", "That worked, cheers.", "great, thank you so much", "Thanks, that's really helpful.",
              "ok brilliant, thanks for your help", "Super, appreciate it!", "Thank you, that answers everything.",
              "thanks!! sorted", "Lovely, thanks a lot.", "OK that makes sense, thank you."]
CLOSINGS_A = ["You're welcome! Is there anything else I can help with today?", "Happy to help! Have a lovely day.",
              "Glad that helped. Enjoy your evening!", "Any time! If anything else comes up, just message us here.",
              "My pleasure. Take care!", "Glad we got that sorted. Have a great week!"]
AGENT_INTROS = ["Hi {CUST}, this is {AGENT} from Halcyon! ", "Hello, {AGENT} here from Halcyon Broadband. ",
                "Thanks for getting in touch, my name is {AGENT}. ", "Hi! I'm {AGENT} (agent ID {EMPID}) from Halcyon support. ",
                "Hi {CUST}, {AGENT} from the Halcyon support team here. "]
PLAIN_INTROS = ["Hi there! Thanks for reaching out to Halcyon. ", "Hello and thanks for contacting Halcyon support. ",
                "Hi! ", "Thanks for your message. ", ""]
USER_INTROS = ["Hi, this is {CUST_FULL}, account {ACCOUNT}. ", "Hello, {CUST_FULL} here. ",
               "Hi, my name is {CUST_FULL} (account {ACCOUNT}). ", "{CUST_FULL} here, account holder. "]
ECHO = {"account_number": "Thanks, I can see account {v} on my side. ", "email": "I'll send a copy of this to {v} as well. ",
        "phone": "If anything changes we'll call you on {v}. ", "date_of_birth": "Thanks, date of birth {v} matches our records. ",
        "street_address": "I've noted the address as {v}. "}
SUPPORT_PII_EXTRA = ["account_number", "email", "phone", "date_of_birth", "street_address"]


# ---------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------

TYPO_WORDS = {"internet": ["intenet", "interent"], "because": ["becuase", "becasue"], "receive": ["recieve"],
              "definitely": ["definately"], "connection": ["conection", "connectoin"], "password": ["pasword", "passwrod"],
              "working": ["wroking", "workign"], "really": ["realy"], "please": ["pls", "plz", "pleas"],
              "address": ["adress"], "appointment": ["appointmnet", "apointment"], "technician": ["technitian"],
              "tomorrow": ["tommorow", "tomorow"], "broadband": ["braodband", "broadbnad"], "which": ["wich"],
              "completely": ["completly"], "neighbours": ["neighbors", "nieghbours"], "anything": ["anythign"]}
_PROTECT = re.compile(r"halo|fiber|halcyon|\u27e6|\u27e7", re.IGNORECASE)
_WORD_TOKEN = re.compile(r"([A-Za-z]{5,})([,.!?]?)")
_NON_WORD = re.compile(r"[^\w<>]+")


def add_typos(rng: random.Random, text: str, k: int) -> str:
    tokens = re.split(r"(\s+)", text)
    candidates = [i for i, t in enumerate(tokens) if _WORD_TOKEN.fullmatch(t) and not _PROTECT.search(t)]
    for i in sorted(rng.sample(candidates, min(k, len(candidates)))):
        word, punct = _WORD_TOKEN.fullmatch(tokens[i]).groups()
        low = word.lower()
        if low in TYPO_WORDS and rng.random() < 0.8:
            new = rng.choice(TYPO_WORDS[low])
            new = new.capitalize() if word[0].isupper() else new
        else:
            j = rng.randint(1, len(word) - 2)
            op = rng.choice(["swap", "drop", "double"])
            if op == "swap":
                new = word[:j] + word[j + 1] + word[j] + word[j + 2:]
            elif op == "drop":
                new = word[:j] + word[j + 1:]
            else:
                new = word[:j] + word[j] + word[j:]
        tokens[i] = new + punct
    return "".join(tokens)


def stylize(rng: random.Random, text: str, strength: float = 1.0) -> str:
    """Real customers: lower case, typos, missing full stops, double quotes instead of single."""
    if rng.random() < 0.11 * strength:
        text = text.lower()
    if rng.random() < 0.35 * strength:
        text = add_typos(rng, text, rng.randint(1, 3))
    if rng.random() < 0.10 * strength:
        text = re.sub(r"\.(?=\s|$)", "", text)
    if rng.random() < 0.06 * strength:
        text = re.sub(r"\?(?=\s|$)", "??", text, count=1)
    if rng.random() < 0.5:
        text = re.sub(r"(?<=\s)'([A-Za-z][^'\n]{1,40}?)'(?=[\s.,!?])", r'"\1"', text)
    return text


def words_of(text: str) -> list[str]:
    return _NON_WORD.sub(" ", text.lower()).split()


def shingles_of(text: str, n: int = 3) -> frozenset:
    words = words_of(text)
    if len(words) < n:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def weighted_sample(rng: random.Random, weights: dict[str, int], k: int) -> list[str]:
    pool = dict(weights)
    out = []
    for _ in range(min(k, len(pool))):
        keys = list(pool)
        pick = rng.choices(keys, weights=[pool[x] for x in keys])[0]
        out.append(pick)
        del pool[pick]
    return out


class Lazy(dict):
    """Slots for str.format_map; PII placeholders are created on first use only."""

    def __init__(self, base: dict, makers: dict):
        super().__init__(base)
        self.makers = makers

    def __missing__(self, key):
        if key in self.makers:
            self[key] = self.makers[key]()
            return self[key]
        raise KeyError(key)


# ---------------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------------

class Conv:
    """A conversation with PII placeholders; renders to messages and records where the PII ended up."""

    def __init__(self, kind: str, group: str, registry: Registry, messages: list[tuple[str, str]],
                 labels: tuple[str, str, str] | None = None):
        self.kind, self.group, self.registry, self.labels = kind, group, registry, labels
        self.messages_ph = messages

    def messages(self) -> list[dict]:
        return [{"role": role, "content": self.registry.render(text)[0]} for role, text in self.messages_ph]

    def pii(self) -> list[dict]:
        out = []
        for index, (role, text) in enumerate(self.messages_ph):
            for item_index in self.registry.render(text)[1]:
                kind, variant, value = self.registry.items[item_index]
                out.append({"message_index": index, "role": role, "kind": kind, "variant": variant, "value": value})
        return out

    def masked_text(self, roles: tuple[str, ...] = ("user", "assistant")) -> str:
        """Non-system text with PII replaced by <KIND>: what duplicate detection sees after scrubbing."""
        parts = [PH_RE.sub(lambda m: f" <{self.registry.items[int(m.group(1))][0].upper()}> ", text)
                 for role, text in self.messages_ph if role in roles]
        return " ".join(parts)

    def user_text(self) -> str:
        return " ".join(self.registry.render(t)[0] for r, t in self.messages_ph if r == "user")


class Ticket:
    """A triage ticket: subject + body (with placeholders) + labels; maps to a Conv."""

    def __init__(self, group, registry, subject, body, labels, summary, name_parts, name_item):
        self.group, self.registry, self.subject, self.body = group, registry, subject, body
        self.labels, self.summary, self.name_parts, self.name_item = labels, summary, name_parts, name_item

    def answer(self) -> str:
        category, priority, action = self.labels
        return triage_answer(category, priority, self.summary, action)

    def conv(self, with_subject: bool) -> Conv:
        user = f"Subject: {self.subject}\n\n{self.body}" if with_subject else self.body
        return Conv("triage", self.group, self.registry,
                    [("system", TRIAGE_SYSTEM_PROMPT), ("user", user), ("assistant", self.answer())], self.labels)


class Generator:
    def __init__(self, seed: int = SEED):
        self.rng = random.Random(seed)
        self.pii = PiiFactory(self.rng)
        self.accepted: dict[str, list[frozenset]] = {}
        self.resamples = 0

    # distinctness -----------------------------------------------------------------------------------
    def _distinct(self, group: str, conv: Conv, threshold: float) -> bool:
        """Far from every accepted conversation of the group: in all non-system text and in the user text."""
        sh, user = shingles_of(conv.masked_text()), shingles_of(conv.masked_text(("user",)))
        if any(jaccard(sh, a) >= threshold or jaccard(user, u) >= 0.6 for a, u in self.accepted.get(group, [])):
            return False
        self.accepted.setdefault(group, []).append((sh, user))
        return True

    def ticket(self, group: str, pii_on: bool, month: int, with_subject: bool, register: bool = True) -> Ticket:
        for _ in range(60):
            t = self._ticket(group, pii_on, month)
            if not register or self._distinct(group, t.conv(with_subject), 0.5):
                return t
            self.resamples += 1
        raise RuntimeError(f"could not make a distinct {group} ticket")

    def support(self, topic: str, pii_on: bool, month: int, register: bool = True) -> Conv:
        for _ in range(80):
            c = self._support(topic, pii_on, month)
            if not register or self._distinct("support:" + topic, c, 0.55):
                return c
            self.resamples += 1
        raise RuntimeError(f"could not make a distinct {topic} conversation")

    def pick_subtype(self) -> str:
        keys = list(TRIAGE)
        return self.rng.choices(keys, weights=[TRIAGE[k]["weight"] for k in keys])[0]

    # triage -----------------------------------------------------------------------------------------
    def _ticket(self, group: str, pii_on: bool, month: int) -> Ticket:
        rng = self.rng
        spec = TRIAGE[group]
        category, priority, action = spec["labels"]
        slots = make_slots(rng, month)
        reg = Registry()
        openers, summaries = rng.choice(spec["scenarios"])
        sentences = [rng.choice(openers).format_map(slots)]
        n_details = rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])
        sentences += [d.format_map(slots) for d in rng.sample(spec["details"], min(n_details, len(spec["details"])))]
        ask = rng.choice(spec["asks"]).format_map(slots) if rng.random() < 0.8 else ""
        name_parts = self.pii.name_parts()
        name_item, name_mode, sig_lines = None, None, []
        subject = rng.choice(spec["subjects"]).format_map(slots)
        if pii_on:
            for kind in weighted_sample(rng, PII_BY_CATEGORY[category], rng.choice([1, 1, 2, 2, 3])):
                token = reg.ph(self.pii.email(name_parts) if kind == "email" else self.pii.make(kind))
                if kind in SIGNATURE_KINDS and rng.random() < 0.35:
                    sig_lines.append(rng.choice(SIGNATURE_KINDS[kind]).format(v=token))
                else:
                    snippet = rng.choice(PII_SNIPPETS[kind]).format(v=token, exp=slots["exp"])
                    sentences.insert(rng.randint(1, len(sentences)), snippet)
            if rng.random() < 0.65:
                name_mode = rng.choice(["intro", "signature", "signature"])
                name_item = self.pii.person_name(parts=name_parts)
            if rng.random() < 0.15:
                token = reg.ph(self.pii.account_number())
                subject = rng.choice([f"{subject} (account {token})", f"Account {token} - {subject}"])
        parts = []
        if name_mode == "intro":
            parts.append(rng.choice(NAME_INTROS).format(v=reg.ph(name_item)))
        parts += sentences
        if ask:
            parts.append(ask)
        if len(parts) >= 4 and rng.random() < 0.35:
            cut = rng.randint(2, len(parts) - 1)
            text = " ".join(parts[:cut]) + "\n\n" + " ".join(parts[cut:])
        else:
            text = " ".join(parts)
        if rng.random() < 0.65:
            text = rng.choice(GREETINGS) + ("\n\n" if rng.random() < 0.5 else " ") + text
        if name_mode == "signature" or sig_lines or rng.random() < 0.35:
            block = [rng.choice(SIGNOFFS)]
            if name_mode == "signature":
                block.append(reg.ph(name_item))
            block += sig_lines
            text += ("\n\n" if rng.random() < 0.7 else "\n") + "\n".join(block)
        text = stylize(rng, text)
        if rng.random() < 0.08:
            subject = subject.upper() if rng.random() < 0.5 else subject.lower()
        summary = rng.choice(summaries).format_map(slots)
        assert summary.isascii() and "{" not in summary and PH_OPEN not in summary, summary
        return Ticket(group, reg, subject, text, (category, priority, action), summary, name_parts, name_item)

    # support ----------------------------------------------------------------------------------------
    def _support(self, topic: str, pii_on: bool, month: int) -> Conv:
        rng = self.rng
        pii_on = pii_on or topic in SUPPORT_FORCE_PII
        slots = make_slots(rng, month)
        reg = Registry()
        cust, agent = self.pii.name_parts(), self.pii.name_parts()
        makers = {
            "CUST_FULL": lambda: reg.ph(self.pii.person_name(parts=cust)),
            "CUST": lambda: reg.ph(self.pii.first_name(cust[0])),
            "AGENT": lambda: reg.ph(self.pii.first_name(agent[0]) if rng.random() < 0.6
                                    else self.pii.person_name(caps=False, parts=agent)),
            "EMPID": lambda: reg.ph(self.pii.employee_id()),
            "ACCOUNT": lambda: reg.ph(self.pii.account_number()),
            "EMAIL": lambda: reg.ph(self.pii.email(cust)),
            "ADDRESS": lambda: reg.ph(self.pii.street_address()),
            "CARD": lambda: reg.ph(self.pii.credit_card()),
            "IBAN": lambda: reg.ph(self.pii.iban()),
        }
        tokens = Lazy(slots, makers)
        exchanges = [ex for ex in SUPPORT[topic] if pii_on or not ex.get("pii")]
        closing = rng.random() < 0.45
        total = rng.choice([2, 2, 3, 3, 3, 4])
        n_topic = max(1, total - (1 if closing else 0))
        forced = [i for i, ex in enumerate(exchanges) if ex.get("pii") and i > 0]
        optional = [i for i in range(1, len(exchanges)) if i not in forced]
        k = max(0, min(len(optional), n_topic - 1 - len(forced)))
        chosen = [0, *sorted(forced + rng.sample(optional, k))]
        turns: list[list[str]] = []
        for i in chosen:
            ex = exchanges[i]
            turns.append([rng.choice(ex["u"]).format_map(tokens), rng.choice(ex["a"]).format_map(tokens)])
        if closing:
            turns.append([rng.choice(CLOSINGS_U), rng.choice(CLOSINGS_A)])
        if pii_on and rng.random() < 0.6:  # the customer volunteers something; the agent may repeat it
            kind = rng.choice(SUPPORT_PII_EXTRA)
            item = self.pii.email(cust) if kind == "email" else self.pii.make(kind)
            token = reg.ph(item)
            at = rng.randrange(len(turns))
            turns[at][0] = turns[at][0] + " " + rng.choice(PII_SNIPPETS[kind]).format(v=token, exp=slots["exp"])
            if rng.random() < 0.7:
                turns[at][1] = ECHO[kind].format(v=token) + turns[at][1]
        # decorate the first exchange
        first_user = turns[0][0]
        if rng.random() < 0.4:
            first_user = rng.choice(SUPPORT_PREAMBLES) + " " + first_user
        if pii_on and rng.random() < 0.55:
            first_user = rng.choice(USER_INTROS).format_map(tokens) + first_user
        elif rng.random() < 0.5:
            first_user = rng.choice(["Hi!", "Hello,", "hey", "Good evening,", "Hi there,", "Morning!"]) + " " + first_user
        turns[0][0] = first_user
        if pii_on and rng.random() < 0.7:
            turns[0][1] = rng.choice(AGENT_INTROS).format_map(tokens) + turns[0][1]
        else:
            intro = rng.choice(PLAIN_INTROS)
            opener = rng.choice(ASSISTANT_OPENERS) if intro in ("", "Hi! ") else ""
            turns[0][1] = intro + (opener + " " if opener else "") + turns[0][1]
        for t in turns[1:]:
            if rng.random() < 0.4:
                opener = rng.choice(ASSISTANT_OPENERS)
                t[1] = (opener + " " if opener else "") + t[1]
        for t in turns[:len(turns) - (1 if closing else 0)]:
            if rng.random() < 0.3:
                t[1] = t[1] + " " + rng.choice(ASSISTANT_EXTRAS)
        if pii_on and closing and rng.random() < 0.4:
            turns[-1][1] = turns[-1][1] + rng.choice([" - {AGENT}, Halcyon Support", "\n\n{AGENT}\nHalcyon Broadband"]).format_map(tokens)
        messages = [("system", SUPPORT_SYSTEM_PROMPT)]
        for user, assistant in turns:
            messages += [("user", stylize(rng, user, 0.6)), ("assistant", assistant)]
        return Conv("support", topic, reg, messages)


# ---------------------------------------------------------------------------------------------------
# Long pasted logs (the over-length conversations)
# ---------------------------------------------------------------------------------------------------

def _mac(rng: random.Random) -> str:
    return ":".join(f"{rng.randint(0, 255):02x}" for _ in range(6))


def halobox_syslog(rng: random.Random, target: int, day: str) -> str:
    hosts = ["LIVINGROOM-TV", "DESKTOP-7QK2P1", "Galaxy-S23", "iPad", "PS5-3F2A", "ring-doorbell", "sonos-kitchen",
             "android-5f2e9c", "MacBook-Air", "HP-LaserJet"]
    macs = [_mac(rng) for _ in hosts]
    domains = ["netflix.com", "updates.halobox.example", "api.weather.example", "www.bbc.co.uk", "outlook.office.com",
               "teams.microsoft.com", "youtube.com", "time.example.org", "status.halcyon.example"]
    wan = f"{rng.choice([81, 86, 92, 109])}.{rng.randint(1, 254)}.{rng.randint(0, 254)}.{rng.randint(1, 254)}"
    t, lines, size = rng.randint(0, 3600), [], 0
    while size < target:
        t += rng.randint(1, 40)
        ts = f"{day} {t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
        h = rng.randrange(len(hosts))
        r = rng.random()
        if r < 0.06:
            line = f"{ts} HaloBox6 kernel: [WAN] link down (LOS) on pon0"
        elif r < 0.12:
            line = f"{ts} HaloBox6 kernel: [WAN] link up 1000Mbps/Full on pon0"
        elif r < 0.18:
            line = f"{ts} HaloBox6 pppd[{rng.randint(900, 4000)}]: local  IP address {wan}"
        elif r < 0.22:
            line = f"{ts} HaloBox6 pppd[{rng.randint(900, 4000)}]: LCP terminated by peer (session timeout)"
        elif r < 0.40:
            line = (f"{ts} HaloBox6 dnsmasq-dhcp[{rng.randint(900, 4000)}]: DHCPACK(br-lan) 192.168.1.{10 + h} "
                    f"{macs[h]} {hosts[h]}")
        elif r < 0.52:
            line = f"{ts} HaloBox6 hostapd: wlan{rng.randint(0, 1)}: STA {macs[h]} IEEE 802.11: disassociated (reason 8)"
        elif r < 0.64:
            line = f"{ts} HaloBox6 hostapd: wlan{rng.randint(0, 1)}: STA {macs[h]} WPA: pairwise key handshake completed (RSN)"
        elif r < 0.80:
            line = f"{ts} HaloBox6 dnsmasq[{rng.randint(900, 4000)}]: query[A] {rng.choice(domains)} from 192.168.1.{10 + h}"
        elif r < 0.88:
            line = (f"{ts} HaloBox6 ont: optical rx power {-rng.uniform(17, 29):.1f} dBm, "
                    f"tx power {rng.uniform(1, 3):.1f} dBm")
        elif r < 0.95:
            line = f"{ts} HaloBox6 watchdog: cpu temp {rng.randint(58, 97)}C load {rng.uniform(0.1, 3.9):.2f}"
        else:
            line = f"{ts} HaloBox6 kernel: nf_conntrack: table full, dropping packet"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def ping_log(rng: random.Random, target: int) -> str:
    lines, seq, size = ["PING 8.8.8.8 (8.8.8.8): 56 data bytes"], 0, 0
    while size < target:
        if rng.random() < 0.12:
            line = f"Request timeout for icmp_seq {seq}"
        else:
            line = f"64 bytes from 8.8.8.8: icmp_seq={seq} ttl=117 time={rng.uniform(9, 480):.3f} ms"
        lines.append(line)
        size += len(line) + 1
        seq += 1
    lines.append(f"--- 8.8.8.8 ping statistics ---\n{seq} packets transmitted, {int(seq * 0.88)} packets received, 12.0% packet loss")
    return "\n".join(lines)


def crash_log(rng: random.Random, target: int) -> str:
    funcs = ["wlan_tx_complete", "halo_mesh_rx", "nss_core_handle_napi", "skb_release_data", "ath11k_dp_rx_process",
             "__netif_receive_skb_core", "br_handle_frame", "ipt_do_table", "napi_poll", "net_rx_action"]
    lines, size, up = [], 0, rng.uniform(100, 4000)
    while size < target:
        up += rng.uniform(200, 3000)
        block = [f"[{up:12.6f}] Unable to handle kernel NULL pointer dereference at virtual address ffffffc0{rng.randint(0, 0xFFFFFF):08x}",
                 f"[{up:12.6f}] Mem abort info: ESR = 0x96000006", f"[{up:12.6f}] Internal error: Oops: 96000006 [#1] SMP",
                 f"[{up:12.6f}] CPU: {rng.randint(0, 3)} PID: {rng.randint(0, 900)} Comm: ksoftirqd/{rng.randint(0, 3)} Tainted: G W 5.15.120-halo6 #1",
                 f"[{up:12.6f}] pc : {rng.choice(funcs)}+0x{rng.randint(16, 512):x}/0x{rng.randint(600, 2000):x} [halo_wifi]",
                 f"[{up:12.6f}] Call trace:"]
        for _ in range(rng.randint(8, 14)):
            block.append(f"[{up:12.6f}]  {rng.choice(funcs)}+0x{rng.randint(16, 512):x}/0x{rng.randint(600, 2000):x}")
        block += [f"[{up:12.6f}] Kernel panic - not syncing: Oops: Fatal exception in interrupt",
                  f"[{up:12.6f}] Rebooting in 3 seconds..", "", "U-Boot 2023.04-halo6 (Aug 02 2026 - 11:20:41 +0000)",
                  "DRAM:  1 GiB", "Booting kernel from FIT image at 0x44000000 ...", ""]
        text = "\n".join(block)
        lines.append(text)
        size += len(text) + 1
    return "\n".join(lines)


def monitoring_log(rng: random.Random, target: int, sites: int) -> str:
    lines, size, t = [], 0, rng.randint(0, 3000)
    while size < target:
        t += rng.randint(5, 60)
        ts = f"2026-10-07T{8 + t // 3600 % 10:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
        site = rng.randint(1, sites)
        ip = f"{rng.choice([81, 86, 92, 109])}.{rng.randint(1, 254)}.{rng.randint(0, 254)}.{rng.randint(1, 254)}"
        r = rng.random()
        if r < 0.5:
            line = f"{ts} CRITICAL branch-{site}-fw WAN1 DOWN packet loss 100% rtt n/a (probe {ip})"
        elif r < 0.7:
            line = f"{ts} WARNING branch-{site}-fw VPN tunnel hq-branch{site} flapping (phase 2 rekey failed)"
        elif r < 0.85:
            line = f"{ts} CRITICAL branch-{site}-voip SIP trunk unregistered (503 from {ip})"
        else:
            line = f"{ts} OK branch-{site}-fw WAN1 UP rtt {rng.uniform(4, 40):.1f}ms loss {rng.randint(0, 60)}%"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------

JSONL_09 = "raw/chat_export_2026-09.jsonl"
JSONL_10 = "raw/chat_export_2026-10.jsonl"
CSV_10 = "raw/helpdesk_tickets_2026-10.csv"
PARQUET_11 = "raw/helpdesk_tickets_2026-11.parquet"
MAPPING = "mappings/helpdesk_tickets.yaml"
COLUMNS = ["ticket_id", "created_at", "channel", "customer_name", "customer_email", "subject", "body", "agent_id",
           "triage_category", "triage_priority", "triage_summary", "triage_next_action"]
MAPPED_COLUMNS = {"subject", "body", "triage_category", "triage_priority", "triage_summary", "triage_next_action"}

# How many distinct, valid conversations each file holds (before the planted extras).
N_GOOD = {JSONL_09: (216, 54), JSONL_10: (181, 46)}  # (triage, support); JSONL_10 also gets 3 CSV copies
N_CSV_ROWS, N_PARQUET_ROWS = 150, 50

# The reason code the pipeline gives today (fine_tune_assets/lib/data/ingest.py, chat_format.py, validate.py).
MALFORMED_KINDS = {
    JSONL_09: ["invalid_json_truncated", "json_array", "missing_messages", "message_missing_role", "unknown_role",
               "empty_content", "no_assistant_turn", "assistant_first", "invalid_utf8"],
    JSONL_10: ["invalid_json_truncated", "messages_not_list", "message_missing_content", "message_unknown_key",
               "whitespace_content", "consecutive_user_turns", "empty_messages_list"],
}
EXPECTED_REASON = {
    "invalid_json_truncated": "invalid_json", "json_array": "data_type", "missing_messages": "missing_messages_list",
    "messages_not_list": "missing_messages_list", "empty_messages_list": "missing_messages_list",
    "message_missing_role": "message_missing_key", "message_missing_content": "message_missing_key",
    "message_unknown_key": "message_unrecognized_key", "unknown_role": "unrecognized_role",
    "empty_content": "missing_content", "whitespace_content": "whitespace_only_content",
    "no_assistant_turn": "example_missing_assistant_message", "assistant_first": "role_order",
    "consecutive_user_turns": "role_order", "invalid_utf8": "invalid_utf8",
}


def dumps_line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


class Line:
    """One physical line of a JSONL file."""

    def __init__(self, raw: bytes, kind: str, conv: Conv | None = None, **meta):
        self.raw, self.kind, self.conv, self.meta = raw, kind, conv, meta
        self.file: str | None = None
        self.number = 0


def place(rng: random.Random, lines: list[Line], new: Line, after: Line | None = None, lo: int = 1) -> None:
    start = max(lo, next(i for i, x in enumerate(lines) if x is after) + 1) if after is not None else lo
    lines.insert(rng.randint(min(start, len(lines)), len(lines)), new)


SYNONYMS = {"internet": "broadband", "router": "modem", "please": "kindly", "really": "very", "today": "now",
            "working": "functioning", "slow": "sluggish", "change": "update", "thanks": "cheers", "bill": "invoice",
            "help": "assist", "easiest": "simplest", "new": "fresh", "problem": "issue", "weak": "poor",
            "ages": "forever", "bought": "purchased", "want": "need", "quick": "short", "kids": "children",
            "usually": "normally", "quickly": "rapidly", "easy": "simple", "great": "good", "minute": "moment",
            "check": "verify", "choose": "select", "open": "launch", "restart": "reboot", "lovely": "nice"}


class Sample:
    def __init__(self, seed: int = SEED):
        self.seed = seed
        self.g = Generator(seed)
        self.rng = self.g.rng
        self.files: dict[str, bytes] = {}
        self.manifest_files: dict[str, dict] = {}
        self.pii_entries: list[dict] = []
        self.good: list[tuple[str, Conv]] = []  # (file, conv) every distinct valid conversation

    # --- generation ---------------------------------------------------------------------------------
    def pii_on(self, p: float) -> bool:
        return self.rng.random() < p

    def fresh_ticket(self, month: int, with_subject: bool, pii: bool | None = None, register: bool = True) -> Ticket:
        return self.g.ticket(self.g.pick_subtype(), self.pii_on(0.40) if pii is None else pii, month, with_subject,
                             register)

    def fresh_support(self, month: int, pii: bool | None = None, register: bool = True) -> Conv:
        return self.g.support(self.rng.choice(list(SUPPORT)), self.pii_on(0.45) if pii is None else pii, month, register)

    def build(self) -> None:
        csv_tickets = self.build_csv()
        self.build_parquet(csv_tickets)
        lines09 = self.build_jsonl(JSONL_09, 9, extra_good=[])
        copies = [Line(dumps_line({"messages": t.conv(True).messages()}), "good", t.conv(True), csv_copy=True)
                  for t in self.csv_copies]
        lines10 = self.build_jsonl(JSONL_10, 10, extra_good=copies, previous=lines09)
        self.finish_jsonl(JSONL_09, lines09)
        self.finish_jsonl(JSONL_10, lines10)
        self.resolve_cross_references()

    def good_jsonl_lines(self, path: str, month: int, extra: list[Line]) -> list[Line]:
        n_triage, n_support = N_GOOD[path]
        kinds = ["triage"] * n_triage + ["support"] * n_support
        self.rng.shuffle(kinds)
        lines = []
        for kind in kinds:
            if kind == "triage":
                with_subject = self.rng.random() < 0.15  # some exports keep the e-mail subject line
                conv = self.fresh_ticket(month, with_subject).conv(with_subject)
            else:
                conv = self.fresh_support(month)
            lines.append(Line(dumps_line({"messages": conv.messages()}), "good", conv))
        for line in extra:
            lines.insert(self.rng.randint(0, len(lines)), line)
        return lines

    def build_jsonl(self, path: str, month: int, extra_good: list[Line], previous: list[Line] | None = None):
        rng = self.rng
        lines = self.good_jsonl_lines(path, month, extra_good)
        good = [l for l in lines if l.kind == "good"]
        for line in good:
            line.file = path
        # over-length conversations
        for maker in (self.overlong_09 if path == JSONL_09 else self.overlong_10)():
            place(rng, lines, maker)
        # malformed lines
        for kind in MALFORMED_KINDS[path]:
            place(rng, lines, Line(self.malformed(kind, month), "malformed", malformed_kind=kind))
        # exact duplicates (verbatim lines), within the file and from the previous file
        within = rng.sample(good, 5 if path == JSONL_09 else 3)
        if path == JSONL_09:
            within.append(within[0])  # one line appears three times
        for original in within:
            place(rng, lines, Line(original.raw, "exact_duplicate", original.conv, original=original), after=original)
        if previous is not None:
            prev_good = [l for l in previous if l.kind == "good"]
            prev_dups = [l.meta["original"] for l in previous if l.kind == "exact_duplicate"]
            for original in [prev_dups[0], *rng.sample([l for l in prev_good if l is not prev_dups[0]], 3)]:
                place(rng, lines, Line(original.raw, "exact_duplicate", original.conv, original=original))
        # near duplicates
        plan = ["whitespace", "whitespace", "case", "punctuation", "one_word", "one_word"] if path == JSONL_09 else \
            ["whitespace", "case", "punctuation", "one_word"]
        for kind in plan:
            original = self.pick_near_original(good, kind)
            place(rng, lines, self.near_duplicate(original, kind), after=original)
        if previous is not None:
            prev_good = [l for l in previous if l.kind == "good"]
            for kind in ["one_word", "case"]:
                original = self.pick_near_original(prev_good, kind)
                place(rng, lines, self.near_duplicate(original, kind))
        # blank lines, and one at the very end
        for _ in range(rng.randint(3, 5)):
            place(rng, lines, Line(b"\n", "blank"))
        lines.append(Line(b"\n", "blank"))
        for number, line in enumerate(lines, 1):
            line.file, line.number = path, number
        return lines

    # --- near duplicates ----------------------------------------------------------------------------
    def pick_near_original(self, candidates: list[Line], kind: str) -> Line:
        used = getattr(self, "_near_used", set())
        self._near_used = used
        pool = []
        for line in candidates:
            if id(line) in used or line.meta.get("csv_copy") or line.conv.pii():
                continue
            n = len(shingles_of(line.conv.masked_text()))
            if kind == "one_word" and n < 120:
                continue
            if kind != "one_word" and n < 25:
                continue
            pool.append(line)
        choice = self.rng.choice(pool)
        used.add(id(choice))
        return choice

    def near_duplicate(self, original: Line, kind: str) -> Line:
        rng = self.rng
        messages = original.conv.messages()
        user_idx = [i for i, m in enumerate(messages) if m["role"] == "user"]
        i = user_idx[0] if kind != "one_word" else rng.choice(user_idx)
        text = messages[i]["content"]
        if kind == "one_word" and not self._synonym_messages(original, messages):
            kind = "punctuation"  # no word of this conversation has a synonym (a rare seed): change punctuation
        if kind == "whitespace":
            spaces = [m.start() for m in re.finditer(" ", text)]
            for pos in sorted(rng.sample(spaces, min(3, len(spaces))), reverse=True):
                text = text[:pos] + "  " + text[pos:]
            text = text + rng.choice([" ", "\n", "  "])
            text = text.replace("\n\n", "\n \n", 1) if "\n\n" in text else text
        elif kind == "case":
            words = list(re.finditer(r"\b[a-z]{4,}\b", text))
            w = rng.choice(words)
            text = text[:w.start()] + w.group(0).upper() + text[w.end():]
            text = (text[0].lower() if text[0].isupper() else text[0].upper()) + text[1:]
        elif kind == "punctuation":
            new = re.sub(r"[.,!](?=\s|$)", "", text)
            text = new if new != text else text + "!!"
        else:
            j = rng.choice(self._synonym_messages(original, messages))
            found = [m for m in re.finditer(r"\b[a-z]+\b", messages[j]["content"]) if m.group(0) in SYNONYMS]
            i, text = j, messages[j]["content"]
            w = rng.choice(found)
            text = text[:w.start()] + SYNONYMS[w.group(0)] + text[w.end():]
        messages[i]["content"] = text
        conv = Conv(original.conv.kind, original.conv.group, Registry(),
                    [(m["role"], m["content"]) for m in messages], original.conv.labels)
        a, b = original.conv.masked_text(), conv.masked_text()
        same_normalized = " ".join(words_of(a)) == " ".join(words_of(b))
        score = jaccard(shingles_of(a), shingles_of(b))
        if kind == "one_word":
            assert score >= 0.9, score
        else:
            assert same_normalized, kind
        assert messages != original.conv.messages()
        return Line(dumps_line({"messages": messages}), "near_duplicate", conv, original=original, change=kind,
                    jaccard=round(score, 4), same_after_normalization=same_normalized, message_index=i)

    @staticmethod
    def _synonym_messages(original, messages: list[dict]) -> list[int]:
        """Messages (after the first) holding a word with a synonym, where a one-word change may go."""
        found_in = [j for j in range(1, len(messages)) if messages[j]["role"] != "assistant" or
                    original.conv.kind == "support"]
        return [j for j in found_in if any(m.group(0) in SYNONYMS for m in
                                           re.finditer(r"\b[a-z]+\b", messages[j]["content"]))]

        # --- malformed lines ----------------------------------------------------------------------------
    def malformed(self, kind: str, month: int) -> bytes:
        rng = self.rng
        multi = kind in ("unknown_role", "message_unknown_key")
        conv = self.fresh_support(month, pii=False, register=False) if multi else \
            self.fresh_ticket(month, with_subject=False, pii=False, register=False).conv(False)
        msgs = conv.messages()
        if kind == "invalid_json_truncated":
            text = json.dumps({"messages": msgs}, ensure_ascii=False)
            return text[: int(len(text) * rng.uniform(0.45, 0.8))].encode("utf-8") + b"\n"
        if kind == "json_array":
            return dumps_line(msgs)
        if kind == "missing_messages":
            return dumps_line({"conversation_id": f"conv-{rng.randint(100000, 999999)}", "turns": msgs})
        if kind == "messages_not_list":
            return dumps_line({"messages": "\n".join(f"{m['role']}: {m['content']}" for m in msgs)})
        if kind == "empty_messages_list":
            return dumps_line({"messages": [], "source": "widget", "status": "abandoned"})
        if kind == "message_missing_role":
            del msgs[1]["role"]
        elif kind == "message_missing_content":
            del msgs[2]["content"]
        elif kind == "message_unknown_key":
            msgs[1]["timestamp"] = f"2026-{month:02d}-{rng.randint(1, 28):02d}T{rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}:11Z"
        elif kind == "unknown_role":
            msgs[2]["role"] = "agent"
        elif kind == "empty_content":
            msgs[2]["content"] = ""
        elif kind == "whitespace_content":
            msgs[1]["content"] = "   \n\t  "
        elif kind == "no_assistant_turn":
            msgs = msgs[:2]
        elif kind == "assistant_first":
            msgs.insert(1, {"role": "assistant", "content": "Hi! I'm the Halcyon virtual assistant. How can I help you today?"})
        elif kind == "consecutive_user_turns":
            msgs.insert(2, {"role": "user", "content": rng.choice(["Hello?? anyone there?", "still waiting...",
                                                                    "Sorry, forgot to say it's urgent."])})
        elif kind == "invalid_utf8":
            msgs[1]["content"] = (msgs[1]["content"].replace("'", "\u2019")
                                  + "\n\nMerci,\nJos\u00e9 (sent from the caf\u00e9 next door, our internet\u2019s off)")
            return json.dumps({"messages": msgs}, ensure_ascii=False).encode("cp1252") + b"\n"
        return dumps_line({"messages": msgs})

    # --- over-length conversations ------------------------------------------------------------------
    def overlong_09(self) -> list[Line]:
        rng = self.rng
        log = halobox_syslog(rng, 292_000, "2026-09-14")
        user = ("My connection keeps dropping every few minutes. Here is the full log from the HaloBox 6 "
                "diagnostics page:\n\n" + log + "\n\nCan you tell me what is going on?")
        big = self.overlong_line([("system", TRIAGE_SYSTEM_PROMPT), ("user", user), ("assistant", triage_answer(
            "outage", "P3", "Customer reports frequent connection drops and shared a diagnostic log from their HaloBox 6.",
            "reply_with_kb"))], "triage", "outage_intermittent", "pasted_router_syslog")
        assert 280_000 < len(big.raw) < 300_000, len(big.raw)
        ping = ping_log(rng, 36_000)
        support = self.overlong_line([
            ("system", SUPPORT_SYSTEM_PROMPT),
            ("user", "Hi, my internet is really unstable in the evenings. I left a ping running, here's the output:\n\n" + ping),
            ("assistant", ("Thanks for running that! I can see around 12% packet loss and some very high response "
                           "times, which would explain the instability. Are you connected over Wi-Fi or with a cable?")),
            ("user", "wifi, upstairs in the office"),
            ("assistant", ("That's a useful clue. Could you try the same test with a laptop plugged into the HaloBox? "
                           "If the loss disappears on a cable, the Wi-Fi upstairs is the problem and a mesh point "
                           "would help."))],
            "support", "slow_wifi", "pasted_ping_output")
        return [big, support]

    def overlong_10(self) -> list[Line]:
        rng = self.rng
        crash = crash_log(rng, 32_000)
        hw = self.overlong_line([("system", TRIAGE_SYSTEM_PROMPT), ("user",
            "My HaloBox 6 keeps rebooting. I connected to the serial console like a forum post suggested and "
            "captured this:\n\n" + crash + "\n\nPlease send a replacement."), ("assistant", triage_answer(
                "hardware", "P3", "Customer's HaloBox 6 reboots repeatedly with kernel crashes and appears faulty.",
                "send_replacement"))], "triage", "hw_faulty", "pasted_kernel_crash_log")
        mon = monitoring_log(rng, 48_000, 4)
        biz = self.overlong_line([("system", TRIAGE_SYSTEM_PROMPT), ("user",
            "URGENT. All 4 of our branches are down or flapping since this morning. Output from our monitoring:\n\n"
            + mon + "\n\nPlease escalate to your network team."), ("assistant", triage_answer(
                "outage", "P1", "Business customer reports all sites offline with repeated WAN failures.",
                "escalate_noc"))], "triage", "outage_business", "pasted_monitoring_alerts")
        return [hw, biz]

    def overlong_line(self, messages, kind, group, what) -> Line:
        conv = Conv(kind, group, Registry(), messages)
        msgs = conv.messages()
        raw = dumps_line({"messages": msgs})
        return Line(raw, "overlong", conv, what=what, chars=sum(len(m["content"]) for m in msgs),
                    longest_message_chars=max(len(m["content"]) for m in msgs))

    # --- tabular ------------------------------------------------------------------------------------
    def ticket_row(self, t: Ticket, ticket_id: str, created_at: str) -> tuple[dict, list[dict]]:
        rng = self.rng
        first, last = t.name_parts
        email = self.g.pii.email(t.name_parts)
        agent = self.g.pii.employee_id()
        subject, subject_used = t.registry.render(t.subject)
        body, body_used = t.registry.render(t.body)
        category, priority, action = t.labels
        row = {"ticket_id": ticket_id, "created_at": created_at,
               "channel": rng.choice(["email", "email", "web_form", "chat", "app", "phone"]),
               "customer_name": f"{first} {last}", "customer_email": email[2], "subject": subject, "body": body,
               "agent_id": agent[2], "triage_category": category, "triage_priority": priority,
               "triage_summary": t.summary, "triage_next_action": action}
        pii = [{"column": "customer_name", "kind": "person_name", "variant": "full_name", "value": row["customer_name"]},
               {"column": "customer_email", "kind": "email", "variant": "address", "value": email[2]},
               {"column": "agent_id", "kind": "employee_id", "variant": "hbe", "value": agent[2]}]
        for column, used in (("subject", subject_used), ("body", body_used)):
            for index in used:
                kind, variant, value = t.registry.items[index]
                pii.append({"column": column, "kind": kind, "variant": variant, "value": value})
        return row, pii

    def timestamps(self, month: int, n: int) -> list[str]:
        secs = sorted(self.rng.randint(0, 29 * 86400) for _ in range(n))
        return [f"2026-{month:02d}-{1 + s // 86400:02d}T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
                for s in secs]

    def build_csv(self) -> list[tuple[Ticket, dict]]:
        rng = self.rng
        n_defects = 3
        tickets = [self.fresh_ticket(10, with_subject=True) for _ in range(N_CSV_ROWS - n_defects)]
        defect_tickets = {kind: self.fresh_ticket(10, with_subject=True, pii=False, register=False)
                          for kind in ("empty_body", "too_few_fields", "invalid_utf8")}
        slots = sorted(rng.sample(range(5, N_CSV_ROWS - 5), n_defects))
        order: list[tuple[Ticket, str | None]] = [(t, None) for t in tickets]
        for pos, kind in zip(slots, defect_tickets):
            order.insert(pos, (defect_tickets[kind], kind))
        stamps = self.timestamps(10, len(order))
        out = io.BytesIO()
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(COLUMNS)
        out.write(header.getvalue().encode("utf-8"))
        line_no, rows_meta, result = 2, [], []
        copies_from = rng.sample([i for i, (t, k) in enumerate(order) if k is None and "\n" in t.body], 2) + \
            rng.sample([i for i, (t, k) in enumerate(order) if k is None and "\n" not in t.body], 1)
        self.csv_copies, self.csv_copy_meta = [], []
        for row_no, (t, kind) in enumerate(order, 1):
            row, pii = self.ticket_row(t, f"HD-202610-{10000 + row_no * 7:05d}", stamps[row_no - 1])
            if kind == "empty_body":
                row["body"] = ""
                pii = [p for p in pii if p["column"] != "body"]
            if kind == "invalid_utf8":
                row["body"] = row["body"].replace("'", "\u2019") + "\n\nGracias,\nJos\u00e9 Fern\u00e1ndez"
            buf = io.StringIO()
            values = [row[c] for c in COLUMNS]
            if kind == "too_few_fields":
                values = values[:6]
            csv.writer(buf, lineterminator="\n").writerow(values)
            text = buf.getvalue()
            out.write(text.encode("cp1252" if kind == "invalid_utf8" else "utf-8"))
            meta = {"row": row_no, "line": line_no, "ticket_id": row["ticket_id"], "physical_lines": text.count("\n")}
            if kind:
                meta["defect"] = kind
            else:
                result.append((t, row))
                if row_no - 1 not in copies_from:  # the copied ones count once, as their JSONL line
                    self.good.append((CSV_10, t.conv(True)))
                for p in pii:
                    mapped = p["column"] in MAPPED_COLUMNS
                    self.pii_entries.append({"file": CSV_10, "line": line_no, "row": row_no, **p,
                                             "role": "user" if mapped else None, "in_mapped_content": mapped})
                if row_no - 1 in copies_from:
                    meta["duplicate_of_jsonl"] = True  # resolved to a line number once the JSONL is laid out
                    self.csv_copies.append(t)
                    self.csv_copy_meta.append(meta)
            rows_meta.append(meta)
            line_no += text.count("\n")
        self.files[CSV_10] = out.getvalue()
        self.csv_rows_meta = rows_meta
        return result

    def build_parquet(self, csv_tickets: list[tuple[Ticket, dict]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = self.rng
        tickets = [self.fresh_ticket(11, with_subject=True) for _ in range(N_PARQUET_ROWS - 2)]
        null_ticket = self.fresh_ticket(11, with_subject=True, pii=False, register=False)
        dup_ticket, dup_csv_row = rng.choice([x for x in csv_tickets if not any(x[0] is c for c in self.csv_copies)])
        order: list[tuple[Ticket, str | None]] = [(t, None) for t in tickets]
        order.insert(rng.randint(3, len(order) - 3), (null_ticket, "null_body"))
        order.insert(rng.randint(len(order) // 2, len(order)), (dup_ticket, "duplicate_of_csv"))
        stamps = self.timestamps(11, len(order))
        rows, meta = [], []
        for row_no, (t, kind) in enumerate(order, 1):
            row, pii = self.ticket_row(t, f"HD-202611-{20000 + row_no * 11:05d}", stamps[row_no - 1])
            m = {"row": row_no, "ticket_id": row["ticket_id"]}
            if kind == "null_body":
                row["body"] = None
                m["defect"] = "null_body"
            elif kind == "duplicate_of_csv":
                for c in ("customer_name", "customer_email", "subject", "body"):
                    row[c] = dup_csv_row[c]
                pii = [p for p in pii if p["column"] not in ("customer_name", "customer_email")] + \
                    [{"column": "customer_name", "kind": "person_name", "variant": "full_name",
                      "value": row["customer_name"]},
                     {"column": "customer_email", "kind": "email", "variant": "address", "value": row["customer_email"]}]
                m["duplicate_of"] = {"file": CSV_10, "ticket_id": dup_csv_row["ticket_id"]}
            else:
                self.good.append((PARQUET_11, t.conv(True)))
            if kind != "null_body":
                for p in pii:
                    mapped = p["column"] in MAPPED_COLUMNS
                    self.pii_entries.append({"file": PARQUET_11, "line": row_no, "row": row_no, **p,
                                             "role": "user" if mapped else None, "in_mapped_content": mapped})
            rows.append(row)
            meta.append(m)
        table = pa.table({c: pa.array([r[c] for r in rows], type=pa.string()) for c in COLUMNS})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy", row_group_size=32)
        self.files[PARQUET_11] = sink.getvalue().to_pybytes()
        self.parquet_rows_meta = meta

    # --- bookkeeping --------------------------------------------------------------------------------
    def finish_jsonl(self, path: str, lines: list[Line]) -> None:
        self.files[path] = b"".join(line.raw for line in lines)
        info = {"format": "jsonl", "physical_lines": len(lines), "blank_lines": [], "malformed": [],
                "exact_duplicates": [], "near_duplicates": [], "overlong": [], "good_lines": []}
        def ref(other: Line) -> dict:
            return {"file": other.file, "line": other.number}

        for line in lines:
            if line.kind == "blank":
                info["blank_lines"].append(line.number)
            elif line.kind == "malformed":
                kind = line.meta["malformed_kind"]
                info["malformed"].append({"line": line.number, "kind": kind, "expected_reason": EXPECTED_REASON[kind]})
            elif line.kind == "exact_duplicate":
                info["exact_duplicates"].append({"line": line.number, "duplicate_of": ref(line.meta["original"]),
                                                 "expected_reason": "duplicate_exact"})
            elif line.kind == "near_duplicate":
                info["near_duplicates"].append({
                    "line": line.number, "change": line.meta["change"], "message_index": line.meta["message_index"],
                    "near_duplicate_of": ref(line.meta["original"]), "jaccard_3gram": line.meta["jaccard"],
                    "same_after_normalization": line.meta["same_after_normalization"],
                    "expected_reason": "duplicate_near"})
            elif line.kind == "overlong":
                info["overlong"].append({"line": line.number, "what": line.meta["what"], "type": line.conv.kind,
                                         "bytes": len(line.raw), "chars": line.meta["chars"],
                                         "longest_message_chars": line.meta["longest_message_chars"],
                                         "expected_reason": "over_token_limit"})
            elif line.kind == "good":
                info["good_lines"].append(line.number)
                self.good.append((path, line.conv))
                if line.meta.get("csv_copy"):
                    info.setdefault("copies_of_csv_rows", []).append(line.number)
            if line.kind in ("good", "exact_duplicate"):
                for p in line.conv.pii():
                    self.pii_entries.append({"file": path, "line": line.number, **p})
        goods = [l for l in lines if l.kind == "good"]
        info["counts"] = {
            "physical_lines": len(lines), "blank_lines": len(info["blank_lines"]),
            "records": sum(1 for l in lines if l.kind != "blank"), "malformed": len(info["malformed"]),
            "exact_duplicates": len(info["exact_duplicates"]), "near_duplicates": len(info["near_duplicates"]),
            "overlong": len(info["overlong"]),
            "valid_records": sum(1 for l in lines if l.kind in ("good", "exact_duplicate", "near_duplicate", "overlong")),
            "good_distinct": len(goods), "good_triage": sum(1 for l in goods if l.conv.kind == "triage"),
            "good_support": sum(1 for l in goods if l.conv.kind == "support"),
            "good_with_pii": sum(1 for l in goods if l.conv.pii()),
            "good_copies_of_csv_rows": len(info.get("copies_of_csv_rows", [])),
        }
        info["malformed_by_kind"] = {m["kind"]: m["line"] for m in info["malformed"]}
        self.manifest_files[path] = info
        if path == JSONL_10:
            copy_lines = [l for l in lines if l.meta.get("csv_copy")]
            for meta, t in zip(self.csv_copy_meta, self.csv_copies):
                line = next(l for l in copy_lines if l.conv.registry is t.registry)
                meta["duplicate_of"] = {"file": JSONL_10, "line": line.number}

    def resolve_cross_references(self) -> None:
        rows = self.csv_rows_meta
        self.manifest_files[CSV_10] = {
            "format": "csv", "encoding": "utf-8 except the one invalid_utf8 row (cp1252 bytes)",
            "dialect": {"delimiter": ",", "quotechar": "\"", "doublequote": True, "quoting": "minimal",
                        "lineterminator": "\\n", "header": True},
            "columns": COLUMNS, "mapped_columns": sorted(MAPPED_COLUMNS),
            "unmapped_columns": [c for c in COLUMNS if c not in MAPPED_COLUMNS],
            "rows": [dict(r) for r in rows],
        }
        info = self.manifest_files[CSV_10]
        info["defects"] = [{"row": r["row"], "line": r["line"], "ticket_id": r["ticket_id"], "kind": r["defect"],
                            "expected_reason": {"empty_body": "missing_content", "too_few_fields": "malformed_row",
                                                "invalid_utf8": "invalid_utf8"}[r["defect"]]}
                           for r in rows if "defect" in r]
        info["duplicates_of_jsonl"] = [{"row": r["row"], "line": r["line"], "ticket_id": r["ticket_id"],
                                        "duplicate_of": r["duplicate_of"], "expected_reason": "duplicate_exact"}
                                       for r in rows if r.get("duplicate_of_jsonl")]
        info["counts"] = {
            "data_rows": len(rows), "physical_lines": 1 + sum(r["physical_lines"] for r in rows),
            "multi_line_rows": sum(1 for r in rows if r["physical_lines"] > 1), "defects": len(info["defects"]),
            "duplicates_of_jsonl": len(info["duplicates_of_jsonl"]),
            "good_distinct": len(rows) - len(info["defects"]) - len(info["duplicates_of_jsonl"]),
            "rows_with_pii_in_mapped_columns": len({p["row"] for p in self.pii_entries
                                                    if p["file"] == CSV_10 and p["in_mapped_content"]}),
        }
        del info["rows"]  # per-row physical lines are only needed for the counts above
        pq_rows = self.parquet_rows_meta
        self.manifest_files[PARQUET_11] = {
            "format": "parquet", "columns": COLUMNS, "column_type": "string (nullable)", "row_groups": 2,
            "defects": [{"row": r["row"], "ticket_id": r["ticket_id"], "kind": r["defect"],
                         "expected_reason": "missing_content"} for r in pq_rows if "defect" in r],
            "duplicates_of_csv": [{"row": r["row"], "ticket_id": r["ticket_id"], "duplicate_of": r["duplicate_of"],
                                   "expected_reason": "duplicate_exact"} for r in pq_rows if "duplicate_of" in r],
        }
        for d in self.manifest_files[PARQUET_11]["duplicates_of_csv"]:
            d["duplicate_of"]["row"] = next(r["row"] for r in rows if r["ticket_id"] == d["duplicate_of"]["ticket_id"])
            d["duplicate_of"]["line"] = next(r["line"] for r in rows if r["ticket_id"] == d["duplicate_of"]["ticket_id"])
        p_info = self.manifest_files[PARQUET_11]
        p_info["counts"] = {
            "data_rows": len(pq_rows), "defects": len(p_info["defects"]),
            "duplicates_of_csv": len(p_info["duplicates_of_csv"]),
            "good_distinct": len(pq_rows) - len(p_info["defects"]) - len(p_info["duplicates_of_csv"]),
            "rows_with_pii_in_mapped_columns": len({p["row"] for p in self.pii_entries
                                                    if p["file"] == PARQUET_11 and p["in_mapped_content"]}),
        }

    # --- checks -------------------------------------------------------------------------------------
    def check(self) -> dict:
        """Self-checks; returns the statistics the manifest reports."""
        for _, conv in self.good:
            msgs = conv.messages()
            roles = [m["role"] for m in msgs]
            assert roles[0] == "system" and roles[-1] == "assistant", roles
            assert all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles[1:])), roles
            assert all(m["content"].strip() and PH_OPEN not in m["content"] for m in msgs)
            if conv.kind == "triage":
                answer = json.loads(msgs[-1]["content"])
                assert list(answer) == ["category", "priority", "summary", "next_action"]
                assert answer["category"] in CATEGORIES and answer["priority"] in PRIORITIES
                assert answer["next_action"] in NEXT_ACTIONS
        for p in self.pii_entries:
            if p["kind"] == "credit_card":
                assert luhn_valid(p["value"]), p
            if p["kind"] == "iban":
                assert iban_valid(p["value"]), p
            if p["kind"] == "us_ssn":
                area = int(p["value"][:3])
                assert area not in (0, 666) and area < 900, p
        texts = [conv.masked_text() for _, conv in self.good]
        assert len({" ".join(words_of(t)) for t in texts}) == len(texts), "two good conversations collide"
        sh = [shingles_of(t) for t in texts]
        user_sh = [shingles_of(conv.masked_text(("user",))) for _, conv in self.good]
        worst = max(jaccard(sh[i], sh[j]) for i in range(len(sh)) for j in range(i + 1, len(sh)))
        worst_user = max(jaccard(user_sh[i], user_sh[j]) for i in range(len(sh)) for j in range(i + 1, len(sh)))
        assert worst < 0.7, worst
        return {"max_jaccard_3gram_non_system_text": round(worst, 4),
                "max_jaccard_3gram_user_text": round(worst_user, 4)}

    # --- manifest -----------------------------------------------------------------------------------
    def manifest(self, stats: dict) -> dict:
        triage = [c for _, c in self.good if c.kind == "triage"]

        def count(values) -> dict:
            return dict(sorted(Counter(values).items()))

        by_file = {}
        for path, _conv in self.good:
            by_file[path] = by_file.get(path, 0) + 1
        pii_records = {(p["file"], p["line"]) for p in self.pii_entries
                       if p.get("in_mapped_content", True) and (p["file"], p["line"]) in
                       {(f, l) for f, l in self._good_locations()}}
        kinds = count(p["kind"] for p in self.pii_entries)
        variants = {}
        for p in self.pii_entries:
            variants.setdefault(p["kind"], {}).setdefault(p["variant"], 0)
            variants[p["kind"]][p["variant"]] += 1
        totals = {
            "good_distinct_conversations": len(self.good), "good_by_file": by_file,
            "good_triage": len(triage), "good_support": len(self.good) - len(triage),
            "good_with_pii": len(pii_records),
            "triage_labels": {"category": count(c.labels[0] for c in triage),
                              "priority": count(c.labels[1] for c in triage),
                              "next_action": count(c.labels[2] for c in triage),
                              "subtype": count(c.group for c in triage)},
            "support_topics": count(c.group for _, c in self.good if c.kind == "support"),
            "malformed_jsonl_lines": sum(f["counts"]["malformed"] for k, f in self.manifest_files.items() if k.endswith("jsonl")),
            "exact_duplicate_lines": sum(f["counts"]["exact_duplicates"] for k, f in self.manifest_files.items() if k.endswith("jsonl")),
            "near_duplicate_lines": sum(f["counts"]["near_duplicates"] for k, f in self.manifest_files.items() if k.endswith("jsonl")),
            "overlong_lines": sum(f["counts"]["overlong"] for k, f in self.manifest_files.items() if k.endswith("jsonl")),
            "blank_lines": sum(f["counts"]["blank_lines"] for k, f in self.manifest_files.items() if k.endswith("jsonl")),
            "tabular_defect_rows": len(self.manifest_files[CSV_10]["defects"]) + len(self.manifest_files[PARQUET_11]["defects"]),
            "tabular_duplicate_rows": len(self.manifest_files[CSV_10]["duplicates_of_jsonl"])
            + len(self.manifest_files[PARQUET_11]["duplicates_of_csv"]),
            "pii_items": len(self.pii_entries), "pii_items_by_kind": kinds, "pii_items_by_variant": variants,
            **stats,
        }
        return {
            "generator": "scripts/make_sample_data.py", "seed": self.seed,
            "company": "Halcyon Broadband",
            "paths_relative_to": "the data directory (FINE_TUNE_DATA_DIR)",
            "definitions": {
                "line": "JSONL and CSV: 1-based physical line in the file (a CSV row that spans several lines is "
                        "numbered by its first line; the header is line 1). Parquet: 1-based row.",
                "row": "1-based data row (CSV: not counting the header).",
                "records": "non-blank JSONL lines.",
                "valid_records": "lines that are well-formed conversations (good + exact and near duplicates + overlong).",
                "good_distinct": "valid, within the token limit and not a duplicate of anything earlier: what a correct "
                                 "pipeline keeps. Distinct good conversations are far apart: see max_jaccard_* "
                                 "(word 3-grams of non-system text, PII masked).",
                "expected_reason": "the reason code the current pipeline (fine_tune_assets/lib/data/ingest.py, "
                                   "chat_format.py, validate.py) gives the line or row.",
                "near_duplicates": "of each pair one is rejected; the pipeline keeps the smaller record_id, which "
                                   "is not necessarily the earlier line.",
                "pii": "every planted personal-data item in valid records and rows (good lines, exact duplicates, "
                       "tabular rows incl. unmapped columns; not in malformed or overlong lines, whose pasted logs "
                       "also contain IP and MAC addresses).",
            },
            "task": {"triage_system_prompt": TRIAGE_SYSTEM_PROMPT, "support_system_prompt": SUPPORT_SYSTEM_PROMPT,
                     "categories": CATEGORIES, "priorities": PRIORITIES, "next_actions": NEXT_ACTIONS,
                     "answer_format": "json.dumps({category, priority, summary, next_action}, ensure_ascii=False): "
                                      "default separators, keys in that order",
                     "label_rules": {k: {"labels": dict(zip(("category", "priority", "next_action"), v["labels"]))}
                                     for k, v in TRIAGE.items()}},
            "files": {path: {"bytes": len(self.files[path]), "sha256": hashlib.sha256(self.files[path]).hexdigest(),
                             **self.manifest_files.get(path, {})} for path in sorted(self.files)},
            "totals": totals,
            "pii": self.pii_entries,
        }

    def _good_locations(self):
        out = []
        for path, info in self.manifest_files.items():
            if path.endswith(".jsonl"):
                out += [(path, n) for n in info["good_lines"]]
        for p in self.pii_entries:
            if not p["file"].endswith(".jsonl"):
                dup_rows = {d["row"] for d in self.manifest_files[p["file"]].get("duplicates_of_jsonl", [])} | \
                    {d["row"] for d in self.manifest_files[p["file"]].get("duplicates_of_csv", [])}
                if p["row"] not in dup_rows:
                    out.append((p["file"], p["line"]))
        return out


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------

def mapping_yaml() -> bytes:
    return ("# Written by scripts/make_sample_data.py: how the helpdesk ticket exports become chat examples.\n"
            "# Columns no message names (customer_name, customer_email, agent_id, ...) never enter the dataset.\n"
            "name: helpdesk_tickets\n"
            "description: \"Halcyon Broadband helpdesk tickets with the triage team's labels, as support-ticket "
            "triage examples (same system prompt and answer format as the triage conversations in the chat exports).\"\n"
            "files: [\"helpdesk_tickets_*.csv\", \"helpdesk_tickets_*.parquet\"]   # globs relative to raw/\n"
            "messages:\n"
            "  - role: system\n"
            f"    text: {json.dumps(TRIAGE_SYSTEM_PROMPT)}\n"
            "  - role: user\n"
            "    template: \"Subject: {subject}\\n\\n{body}\"\n"
            "  - role: assistant\n"
            "    json_fields: {category: triage_category, priority: triage_priority, summary: triage_summary, "
            "next_action: triage_next_action}\n").encode()


def compact_json(value, indent: int = 0) -> str:
    """JSON with one line per small object or list of scalars, so the manifest stays readable."""
    pad, inner = " " * indent, " " * (indent + 2)
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or len(flat) <= 100 or (
            isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)) or (
            isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values()) and len(flat) <= 300):
        return flat
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + compact_json(v, indent + 2) for v in value) + "\n" + pad + "]"
    return "{\n" + ",\n".join(f"{inner}{json.dumps(k)}: {compact_json(v, indent + 2)}" for k, v in value.items()) \
        + "\n" + pad + "}"


def readme(m: dict) -> str:
    t = m["totals"]
    f = m["files"]
    c09, c10 = f[JSONL_09]["counts"], f[JSONL_10]["counts"]
    ccsv, cpq = f[CSV_10]["counts"], f[PARQUET_11]["counts"]
    return f"""# Sample data: Halcyon Broadband support chats

Fictional, generated data for trying the pipeline end to end. Everything here is written by
`scripts/make_sample_data.py` (seeded, byte-identical on every run); do not edit by hand.
Regenerate with `make sample` or `.venv/bin/python scripts/make_sample_data.py [--data-dir DIR]`.

**Company.** Halcyon Broadband, an internet provider: HaloBox router (HaloBox 6), FiberMax 500/1000
plans, Halcyon TV, the Halcyon app, the NOC, service credits, truck rolls. Employee ids look like
`HBE-204817`, customer account numbers like `HB-40921733`.

**Task.** Support-ticket triage. The system prompt asks for one JSON object
`{{"category", "priority", "summary", "next_action"}}` (category: {", ".join(CATEGORIES)};
priority: P1-P4; next_action: {", ".join(NEXT_ACTIONS)}). Labels follow fixed rules (category by
topic, priority by severity cues, next action by category and cues), so a small model can learn them.
About 20% of the chat records are ordinary multi-turn support conversations with a second prompt.

| file | what | distinct good |
|---|---|---|
| `raw/chat_export_2026-09.jsonl` | {c09["physical_lines"]} lines, {c09["records"]} records | {c09["good_distinct"]} ({c09["good_triage"]} triage, {c09["good_support"]} support) |
| `raw/chat_export_2026-10.jsonl` | {c10["physical_lines"]} lines, {c10["records"]} records | {c10["good_distinct"]} ({c10["good_triage"]} triage, {c10["good_support"]} support) |
| `raw/helpdesk_tickets_2026-10.csv` | {ccsv["data_rows"]} rows (header + {ccsv["physical_lines"] - 1} lines; multi-line bodies are quoted) | {ccsv["good_distinct"]} |
| `raw/helpdesk_tickets_2026-11.parquet` | {cpq["data_rows"]} rows, all string columns | {cpq["good_distinct"]} |
| `mappings/helpdesk_tickets.yaml` | maps `subject`/`body`/`triage_*` columns to system/user/assistant messages | |
| `sample_manifest.json` | every planted problem and PII item, with line/row numbers | |

In total {t["good_distinct_conversations"]} distinct good conversations ({t["good_triage"]} triage,
{t["good_support"]} support), {t["good_with_pii"]} of them with personal data.

**Planted problems** (all listed in `sample_manifest.json`):

- personal data in user and assistant turns and in ticket columns ({t["pii_items"]} items): names
  (also ALL CAPS and in signatures), e-mails, phone numbers (US, UK, DE, FR, IN, dotted/dashed),
  US SSNs, Luhn-valid cards (Visa 16/19, Mastercard 5- and 2-series, Amex), checksum-valid IBANs
  (DE, GB, FR, NL), IPv4/IPv6 addresses, street addresses, dates of birth, employee ids, account numbers;
- {t["exact_duplicate_lines"]} verbatim duplicate lines (within and across the JSONL files), 3 CSV tickets that
  are also in the October JSONL, 1 Parquet ticket that repeats a CSV ticket;
- {t["near_duplicate_lines"]} near duplicates (whitespace, case, punctuation, or one word changed);
- {t["malformed_jsonl_lines"]} malformed JSONL lines (truncated JSON twice, every other kind once): JSON array, no
  "messages", "messages" not a list or empty, message without role / content, unknown message key
  (timestamp), unknown role (agent), empty and whitespace-only content, no assistant turn, assistant
  first, two user turns in a row, invalid UTF-8 (cp1252 bytes);
- {t["blank_lines"]} blank lines (not records);
- {t["overlong_lines"]} conversations far over 4,096 tokens (pasted logs: router syslog, ping output, kernel crash, monitoring alerts; the longest line is {max(o["bytes"] for p in (JSONL_09, JSONL_10) for o in f[p]["overlong"]):,} bytes);
- CSV: one empty body, one row with too few fields, one row with cp1252 (invalid UTF-8) bytes;
  Parquet: one null body.

**Reading the files.** JSONL is UTF-8 (one line is not: read bytes, decode per line). The CSV is
comma-separated, `"`-quoted where needed (doubled quotes inside), `\\n` line ends, header row,
bodies with embedded newlines; open it with `newline=""` and `errors="surrogateescape"` (one row is
cp1252). The summaries in the labels are ASCII and contain no personal data.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data", help="where to write (default: ./data)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"another seed gives another sample from the same distribution (default {SEED}: the "
                             "committed sample); the drift benchmark draws its same-distribution windows this way")
    args = parser.parse_args()
    sample = Sample(args.seed)
    sample.build()
    stats = sample.check()
    sample.files[MAPPING] = mapping_yaml()
    manifest = sample.manifest(stats)
    manifest_bytes = (compact_json(manifest) + "\n").encode("utf-8")
    outputs = dict(sample.files)
    outputs["sample_manifest.json"] = manifest_bytes
    outputs["README.md"] = readme(manifest).encode("utf-8")
    for rel, data in outputs.items():
        path = args.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    t = manifest["totals"]
    print(f"wrote {len(outputs)} files under {args.data_dir} ({sum(len(d) for d in outputs.values()):,} bytes): "
          f"{t['good_distinct_conversations']} distinct good conversations, {t['pii_items']} PII items, "
          f"max 3-gram Jaccard {t['max_jaccard_3gram_non_system_text']}, resamples {sample.g.resamples}")


if __name__ == "__main__":
    main()
