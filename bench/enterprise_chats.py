"""Deterministic enterprise support chats with labelled PII, for ``bench/pii_recall.py --set enterprise``.

    .venv/bin/python bench/enterprise_chats.py [--n 300] [--seed 10] [--out bench/results/enterprise_chats.jsonl]

Each conversation is a list of system / user / assistant messages like ``data/raw/*.jsonl``. Every message
carries ``spans`` (the PII in it: ``entity_type``, ``start``, ``end``, ``value``, ``form``, and for PERSON the
``case`` it is typed in, the ``person`` it belongs to and whether its parts are in the scrubber's gazetteer)
and ``keep`` (ordinary words planted on purpose that must survive: lower-case words that are also names
or look like them, "grace period", "mark as resolved", product and company names). Offsets are exact:
``content[start:end] == value`` for every span.

Names are NOT drawn from the scrubber's gazetteer source (Faker's person providers): the lists below were
typed by hand from many naming traditions, so the benchmark measures generalisation and not lookup.
Some of them happen to be in the gazetteer anyway; ``in_gazetteer`` records it per mention ("all": every
name part is listed, "some", "none"), read from ``fine_tune_assets.lib.data.scrub.names.gazetteers``
(read-only; pass ``gazetteer=None`` to skip the lookup).

Forms (PERSON): introductions (``intro_this_is``, ``intro_my_name_is``, ``intro_here_from``), sign-offs at
the end of a user message (``signoff_thanks``, ``signoff_regards``, ``signoff_cheers``), agent read-backs
(``readback_thank_you``, ``readback_logged_under``, ``readback_dear``), split name parts later in the same
conversation (``split_honorific_surname``: "Ms Okoro", ``split_given``: "amaya"), the agent's own name
(``agent_intro``) and other people named in passing (``third_party``). Cases: ``title``, ``lower``,
``upper``. Structured identifiers: e-mail, phone, card, IBAN, SSN, IP, date of birth, street address, each
with its phrasing as ``form``; the first four conversations together hold every structured type.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------ names
# Typed by hand, grouped by tradition (romanised where the tradition uses another script). Words that are
# also very common English words ("Can", "Will", "Grace") are left out of the person lists on purpose:
# they appear below as words to keep.
GIVEN_NAMES = {
    "yoruba": "Adebayo Folasade Olumide Temitope Oluwaseun Yetunde Babajide Funmilayo Ayodele Omotola",
    "igbo": "Chinonso Ifeoma Obinna Ngozi Chukwuemeka Adaeze Ikenna Chiamaka Nnamdi Uchenna",
    "akan": "Kwabena Akosua Kwame Adwoa Abena Kofi Efua Kojo Yaaba Kwesi",
    "hausa": "Abubakar Hauwa Musa Zainab Aminu Halima Bashir Rukayya",
    "east_african": "Baraka Neema Juma Zawadi Wanjiru Kamau Achieng Otieno Makena Njeri",
    "ethiopian": "Tesfaye Selamawit Abebe Meseret Dawit Tigist Yohannes Hiwot",
    "southern_african": "Thandiwe Sipho Nomvula Tendai Farai Lerato Thabo Kagiso Zanele Mpho",
    "hindi": "Aarav Ishaan Priyanka Ananya Rohan Kavya Vikram Meera Siddharth Nandini",
    "tamil": "Karthik Lakshmi Senthil Kavitha Murugan Revathi Arjun Tamilselvi",
    "bengali": "Sourav Tanushree Arnab Rituparna Debashis Moumita",
    "punjabi": "Gurpreet Harjit Manpreet Jaswinder Simran Navdeep",
    "chinese": "Xiaoming Meiling Zhiwei Yuting Haoran Xinyi Jiahui Zhenyu Jianguo Shufen",
    "korean": "Minjun Seoyeon Jihoon Haeun Dohyun Jiwoo Yejin Sungmin",
    "japanese": "Haruto Yui Sota Aoi Hinata Kaito Sakura Takumi Mei Ryota",
    "vietnamese": "Minh Thao Tuan Huong Quang Duc Ngoc Phuong",
    "thai": "Somchai Siriporn Anurak Kanya Niran Pimchanok",
    "filipino": "Marites Jericho Rowena Danilo Lorna Rodel",
    "indonesian": "Wahyu Budi Dewi Agus Ratna Bambang",
    "arabic": "Youssef Fatima Khaled Layla Omar Nour Tariq Samira Rania Hamza",
    "persian": "Dariush Shirin Kourosh Parisa Arash Mahsa",
    "turkish": "Emre Elif Burak Zeynep Mehmet Ayşe Deniz Selin",
    "hebrew": "Yael Noam Avital Eitan Tamar Yonatan",
    "nordic": "Sigrid Leif Astrid Björn Ingeborg Torsten Solveig Eirik",
    "finnish": "Aino Juhani Tuulikki Eero Kaisa Veikko",
    "slavic": "Bogdan Zofia Miroslav Katarzyna Radoslav Ljudmila Wojciech Dragana",
    "baltic": "Aušra Gintaras Rasa Mindaugas Inga Valdis",
    "greek": "Eleftheria Stavros Konstantina Panagiotis Despina Yiannis",
    "celtic": "Siobhan Niamh Eoghan Caoimhe Tadhg Ciarán Aoife Rhiannon Gwilym Eilidh",
    "iberian": "Itziar Xabier Iñaki Leire Gonçalo Joaquim Inês Rodrigo",
    "italian_french": "Gianluca Ottavia Benedetta Ludovic Solène Gaëlle",
    "latin_american": "Ximena Itzel Xochitl Guadalupe Yolanda Rigoberto Maximiliano Valentina",
    "pacific": "Aroha Mere Tama Wiremu Ngaire Keanu Leilani Sione Mele Losa",
    "english": "Harriet Rupert Imogen Callum Declan Bethany Darnell Tyrone Latoya Shanice",
}
SURNAMES = {
    "yoruba": "Adeyemi Balogun Ogunleye Oyelaran Akinola Olawale Fashola Adewale",
    "igbo": "Okoro Nwosu Okonkwo Chukwu Okafor Nwachukwu Okeke Ibekwe",
    "akan": "Mensah Asante Owusu Boateng Agyeman Osei Darko Appiah",
    "east_african": "Mwangi Wanjiku Kiprop Njoroge Odhiambo Kimani Onyango Chebet",
    "ethiopian": "Bekele Tadesse Haile Gebremedhin Alemu Woldemariam",
    "southern_african": "Dlamini Ndlovu Moyo Khumalo Mahlangu Nkosi Mokoena Sithole",
    "south_asian": ("Raghunathan Chattopadhyay Iyer Venkataraman Bhattacharya Deshpande Kulkarni Subramaniam "
                    "Banerjee Mukherjee Reddy Naidu Sandhu Grewal Dhillon Chaudhary"),
    "chinese": "Zhang Liu Huang Zhao Zhou Xu Lin Tang Feng Deng",
    "korean": "Kim Park Choi Jung Kang Yoon Jang Shin",
    "japanese": "Takahashi Watanabe Yamaguchi Nakamura Kobayashi Matsumoto Inoue Fujiwara Hayashi Shimizu",
    "vietnamese": "Nguyen Tran Pham Hoang Dang Bui Ngo Truong",
    "thai": "Srisuk Chaiyaporn Wongsawat Thongchai Rattanakorn",
    "filipino": "Dimaculangan Bautista Macaraeg Villanueva Mangubat Pangilinan",
    "indonesian": "Wijaya Susanto Hartono Setiawan Kusuma Nugroho",
    "arabic": "Haddad Khoury Mansour Nasser Hamdan Farouk Abdelrahman Benali Bouzid",
    "persian": "Tehrani Karimi Rostami Hosseini Ahmadi Moradi",
    "turkish": "Yilmaz Kaya Demir Şahin Çelik Aydın Öztürk Arslan",
    "hebrew": "Katz Mizrahi Peretz Biton Shapira Avraham",
    "nordic": "Lindqvist Haugen Bergström Johansen Solberg Eklund Nyström Halvorsen",
    "finnish": "Virtanen Korhonen Mäkinen Nieminen Hämäläinen Laaksonen",
    "slavic": "Kowalczyk Wiśniewska Nowak Dvořák Horvat Petrović Zielinski Sokolova Kuznetsov Bondarenko",
    "baltic": "Kazlauskas Bērziņš Jankauskienė Ozoliņš",
    "greek": "Papadopoulos Georgiou Konstantinidis Alexiou Nikolaidis",
    "celtic": "O'Sullivan MacAulay McGillicuddy Fitzgerald Llewellyn Cadwaladr Prothero Ó Briain",
    "iberian": "Etxeberria Goikoetxea Azevedo Magalhães Figueiredo Iturbide",
    "italian_french": "Bianchi Esposito Lombardi Dufresne Marchetti Beaumont",
    "latin_american": "Quispe Mamani Huamán Villalobos Ocampo Zúñiga",
    "pacific": "Ngata Tupou Faleolo Kealoha Tuilagi Waititi",
    "english": "Ashworth Pennington Thistlethwaite Blackwood Hargreaves Pemberton",
}
_TWO_WORD_SURNAMES = ("Ó Briain",)  # kept as one surname (the split above would tear it apart)


def _words(groups: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for culture, names in groups.items():
        text = names
        for two in _TWO_WORD_SURNAMES:
            text = text.replace(two, two.replace(" ", "\u00a0"))
        out.extend((n.replace("\u00a0", " "), culture) for n in text.split(" "))
    return out


GIVEN = _words(GIVEN_NAMES)
SURNAME = _words(SURNAMES)
HONORIFICS = ("Ms", "Mr", "Mx", "Dr")

# ------------------------------------------------------------------------------------------------ things to keep
COMPANIES = [  # the support desk's company, products and plans (title case on purpose: must be kept)
    ("Kestrel Telecom", ["Aurora Hub", "Harper Sync", "Jasper router", "Sterling plan"]),
    ("Ledgerline", ["Ledgerline Pro", "Maple Payroll", "Beacon reports", "Atlas export"]),
    ("Brightwell Energy", ["Solace tariff", "Juniper smart meter", "Orion app", "Willow plan"]),
]
CUSTOMER_ORGS = ["Saltmarsh Logistics", "Blue Heron Dental", "Quarry Lane Bakery", "Northgate Freight",
                 "Copperleaf Studio", "Ridgeway Veterinary", "Tidewater Legal", "Foundry Row Cafe"]
# lower-case words that are also given names or look like them, in their ordinary sense: (phrase, word)
TRAPS = [
    ("there is a 14-day grace period before any late fee", "grace period"),
    ("I will check that for you now", "will"),
    ("your last bill was higher than usual", "bill"),
    ("you can mark as resolved from the ticket page once it works", "mark as resolved"),
    ("it may take up to 24 hours to update", "may"),
    ("the status light is amber at the moment", "amber"),
    ("the rose gold model is out of stock", "rose gold"),
    ("to be frank, the old firmware was buggy", "frank"),
    ("please press and hold the reset button", "press"),
    ("we can waive the fee this once", "waive"),
    ("the summer discount ends soon", "summer"),
    ("you can pay the bill by direct debit", "bill"),
    ("I will send a summary to your email", "will"),
    ("the june invoice already has the credit", "june"),
    ("your patience is appreciated, the fix is rolling out", "patience"),
    ("the victor in that comparison is the fibre plan", "victor"),
]
PROBLEMS = [
    "I was charged twice this month",
    "the app keeps logging me out",
    "I can't export last quarter's reports",
    "my smart meter stopped sending readings",
    "the wifi drops every evening around 8",
    "I need to update the payment details on the account",
    "the invoice shows the wrong VAT number",
    "two of our users can't sign in since yesterday",
    "I want to cancel the add-on I never ordered",
    "the direct debit failed and now there's a late fee",
]
AGENT_ANSWERS = [
    "I can see the duplicate charge on the account and have raised a refund.",
    "Signing out and back in after clearing the app cache usually fixes this.",
    "Exports over 10,000 rows are queued; you'll get an email when the file is ready.",
    "The meter lost its connection to the hub; I've sent a remote reset.",
    "I've moved your connection to a less busy channel and scheduled a line check.",
    "I've updated the record and the next payment will use the new details.",
]

# ------------------------------------------------------------------------------------------------ identifiers
STREETS = ["Larkspur", "Quarry", "Millbrook", "Kingfisher", "Orchard", "Tannery", "Saltmarsh", "Ropewalk",
           "Chestnut", "Foundry", "Heather", "Copper Beech", "Lantern", "Bramble", "Old Mill", "Harbour"]
US_PLACES = [("Springfield", "IL", "627"), ("Madison", "WI", "537"), ("Boulder", "CO", "803"),
             ("Tacoma", "WA", "984"), ("Savannah", "GA", "314"), ("Fresno", "CA", "937")]
UK_PLACES = [("Leeds", "LS6"), ("Bristol", "BS3"), ("Norwich", "NR2"), ("Swansea", "SA1"), ("Dundee", "DD1")]
DE_PLACES = [("Leipzig", "04109"), ("Freiburg", "79098"), ("Kassel", "34117"), ("Bremen", "28195")]
DE_STREETS = ["Lindenstraße", "Mühlweg", "Gartenstraße", "Am Kirchberg", "Schillerstraße", "Rosenweg"]
PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "AU", "NG", "KE", "ES", "NL", "CA", "ZA"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.co.uk", "fastmail.com", "web.de"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
STRUCTURED = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
              "DATE_OF_BIRTH", "STREET_ADDRESS"]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def make_card(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["visa", "mastercard", "mastercard2", "amex", "discover"])
    if kind == "visa":
        number = _luhn_complete("4", 16, rng)
    elif kind == "mastercard":
        number = _luhn_complete(str(rng.randint(51, 55)), 16, rng)
    elif kind == "mastercard2":
        number = _luhn_complete(str(rng.randint(2221, 2720)), 16, rng)
    elif kind == "amex":
        number = _luhn_complete(rng.choice(["34", "37"]), 15, rng)
    else:
        number = _luhn_complete("6011", 16, rng)
    style = rng.choice(["space", "dash", "plain"])
    if len(number) == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i:i + 4] for i in range(0, len(number), 4)]
    sep = {"space": " ", "dash": "-", "plain": ""}[style]
    return sep.join(groups), f"{kind}_{style}"


IBAN_BBAN = {  # country: (length of digits in the basic bank account number, letters in front)
    "DE": (18, 0), "GB": (14, 4), "NL": (10, 4), "ES": (20, 0), "FR": (23, 0), "BE": (12, 0),
}


def make_iban(rng: random.Random) -> tuple[str, str]:
    country = rng.choice(sorted(IBAN_BBAN))
    n_digits, n_letters = IBAN_BBAN[country]
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n_letters))
    bban += "".join(str(rng.randrange(10)) for _ in range(n_digits))
    if country == "BE":  # Belgian BBANs carry their own mod-97 key in the last two digits
        body = bban[:10]
        key = int(body) % 97 or 97
        bban = body + f"{key:02d}"
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    iban = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)), f"{country}_grouped"
    return iban, f"{country}_compact"


def make_ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def make_ip(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.2:
        groups = ["2001", "db8"] + [f"{rng.randrange(1, 0xFFFF):x}" for _ in range(6)]
        return ":".join(groups), "ipv6"
    return ".".join(str(x) for x in (rng.choice([23, 51, 81, 86, 92, 145, 178, 203]), rng.randint(0, 255),
                                         rng.randint(0, 255), rng.randint(1, 254))), "ipv4"


def make_phone(rng: random.Random) -> tuple[str, str]:
    import phonenumbers

    region = rng.choice(PHONE_REGIONS)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    for _ in range(200):
        keep = max(2, len(national) - 6)
        candidate = national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))
        number = phonenumbers.parse("+" + str(example.country_code) + candidate)
        if phonenumbers.is_valid_number(number):
            break
    else:  # pragma: no cover - every listed region yields valid numbers within a few tries
        number = example
    style = rng.choice(["international", "national", "e164"])
    fmt = {"international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
           "national": phonenumbers.PhoneNumberFormat.NATIONAL,
           "e164": phonenumbers.PhoneNumberFormat.E164}[style]
    return phonenumbers.format_number(number, fmt), f"{region}_{style}"


def make_dob(rng: random.Random) -> tuple[str, str]:
    y, m, d = rng.randint(1940, 2004), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.choice(["dmy_slash", "mdy_slash", "iso", "d_month_y", "month_d_y", "dmy_dot"])
    value = {
        "dmy_slash": f"{d:02d}/{m:02d}/{y}",
        "mdy_slash": f"{m:02d}/{d:02d}/{y}",
        "iso": f"{y}-{m:02d}-{d:02d}",
        "d_month_y": f"{d} {MONTHS[m - 1]} {y}",
        "month_d_y": f"{MONTHS[m - 1]} {d}, {y}",
        "dmy_dot": f"{d:02d}.{m:02d}.{y}",
    }[style]
    return value, style


def make_address(rng: random.Random) -> tuple[str, str]:
    style = rng.choice(["us", "uk", "de"])
    if style == "us":
        city, state, zip3 = rng.choice(US_PLACES)
        suffix = rng.choice(["Street", "Avenue", "Road", "Lane", "Drive"])
        return (f"{rng.randint(2, 4999)} {rng.choice(STREETS)} {suffix}, {city}, {state} "
                f"{zip3}{rng.randint(10, 99)}"), style
    if style == "uk":
        city, district = rng.choice(UK_PLACES)
        suffix = rng.choice(["Road", "Street", "Close", "Terrace", "Way"])
        flat = f"Flat {rng.randint(1, 12)}, " if rng.random() < 0.3 else ""
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        postcode = f"{district} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
        return f"{flat}{rng.randint(1, 220)} {rng.choice(STREETS)} {suffix}, {city} {postcode}", style
    city, plz = rng.choice(DE_PLACES)
    return f"{rng.choice(DE_STREETS)} {rng.randint(1, 120)}, {plz} {city}", style


def make_email(rng: random.Random, given: str, surname: str) -> tuple[str, str]:
    import unicodedata

    def ascii_part(s: str) -> str:
        s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
        return "".join(c for c in s.lower() if c.isalnum())

    style = rng.choice(["first.last", "flast", "first_year", "handle"])
    g, s = ascii_part(given), ascii_part(surname)
    local = {"first.last": f"{g}.{s}", "flast": f"{g[0]}{s}", "first_year": f"{g}{rng.randint(70, 99)}",
             "handle": f"{rng.choice(['blue', 'quiet', 'night', 'river'])}{rng.choice(['fox', 'owl', 'oak'])}"
                       f"{rng.randint(1, 999)}"}[style]
    return f"{local}@{rng.choice(MAIL_DOMAINS)}", style


# ------------------------------------------------------------------------------------------------ building
class Message:
    """A message built piece by piece; PII pieces are recorded with their exact offsets."""

    def __init__(self, role: str, lower: bool = False):
        self.role, self.lower = role, lower
        self.parts: list[str] = []
        self.spans: list[dict] = []
        self.keep: list[dict] = []
        self.length = 0

    def text(self, s: str) -> Message:
        if self.lower:
            s = s.lower()
        self.parts.append(s)
        self.length += len(s)
        return self

    def pii(self, entity_type: str, value: str, form: str, **extra) -> Message:
        if self.lower:
            value = value.lower()
        self.spans.append({"entity_type": entity_type, "start": self.length, "end": self.length + len(value),
                           "value": value, "form": form, **extra})
        self.parts.append(value)
        self.length += len(value)
        return self

    def kept(self, phrase: str, word: str, form: str) -> Message:
        """A phrase holding ``word``: the word is recorded as must-keep."""
        if self.lower:
            phrase, word = phrase.lower(), word.lower()
        at = phrase.index(word)
        self.keep.append({"start": self.length + at, "end": self.length + at + len(word), "value": word,
                          "form": form})
        return self.text(phrase)

    def done(self) -> dict:
        return {"role": self.role, "content": "".join(self.parts), "spans": self.spans, "keep": self.keep}


def _case(value: str, case: str) -> str:
    return {"title": value, "lower": value.lower(), "upper": value.upper()}[case]


class Person:
    def __init__(self, pid: str, given: tuple[str, str], surname: tuple[str, str], gazetteer):
        self.pid = pid
        self.given, self.given_culture = given
        self.surname, self.surname_culture = surname
        self.gazetteer = gazetteer

    @property
    def full(self) -> str:
        return f"{self.given} {self.surname}"

    def listed(self, value: str) -> str:
        if self.gazetteer is None:
            return "unknown"
        first, last = self.gazetteer
        parts = [p.casefold().strip(".'’") for p in value.replace("-", " ").split()]
        hits = [p in first or p in last for p in parts]
        return "all" if all(hits) else ("some" if any(hits) else "none")

    def mention(self, msg: Message, which: str, case: str, form: str) -> Message:
        value = {"full": self.full, "given": self.given, "surname": self.surname}[which]
        value = _case(value, "lower" if msg.lower else case)
        return msg.pii("PERSON", value, form, case="lower" if msg.lower else case, part=which, person=self.pid,
                       in_gazetteer=self.listed(value))


def _pick_case(rng: random.Random) -> str:
    return rng.choices(["title", "lower", "upper"], weights=[45, 40, 15])[0]


def _structured(rng: random.Random, msg: Message, etype: str, person: Person) -> None:
    """One structured identifier in a short user sentence."""
    if etype == "EMAIL_ADDRESS":
        value, style = make_email(rng, person.given, person.surname)
        lead, tail = rng.choice([("my email is ", ""), ("you can reach me at ", ""), ("send it to ", " please"),
                                 ("email: ", "")])
    elif etype == "PHONE_NUMBER":
        value, style = make_phone(rng)
        lead, tail = rng.choice([("call me on ", ""), ("my number is ", ""), ("mobile: ", ""),
                                 ("best number to reach me ", " after 5pm")])
    elif etype == "CREDIT_CARD":
        value, style = make_card(rng)
        lead, tail = rng.choice([("the card is ", ""), ("card number ", ", expires 09/29"),
                                 ("it was charged to ", " twice"), ("use ", " for the payment")])
    elif etype == "IBAN_CODE":
        value, style = make_iban(rng)
        lead, tail = rng.choice([("please refund to my IBAN ", ""), ("bank account: ", ""),
                                 ("the iban is ", ""), ("pay it back to ", " thanks")])
    elif etype == "US_SSN":
        value, style = make_ssn(rng), "dashed"
        lead, tail = rng.choice([("my SSN is ", ""), ("social security number ", ""), ("ssn: ", ""),
                                 ("for the tax form my social is ", "")])
    elif etype == "IP_ADDRESS":
        value, style = make_ip(rng)
        lead, tail = rng.choice([("my public IP is ", ""), ("the logs show logins from ", ""),
                                 ("router says WAN address ", ""), ("whitelist ", " please")])
    elif etype == "DATE_OF_BIRTH":
        value, style = make_dob(rng)
        lead, tail = rng.choice([("date of birth ", ""), ("born ", ""), ("DOB: ", ""), ("my birthday is ", ""),
                                 ("d.o.b. ", "")])
    else:
        value, style = make_address(rng)
        lead, tail = rng.choice([("I live at ", ""), ("service address: ", ""), ("ship it to ", " please"),
                                 ("the meter is at ", "")])
    form = f"{lead.strip().rstrip(':').replace(' ', '_').lower() or 'bare'}:{style}"
    msg.text(lead).pii(etype, value, form).text(tail)


def conversation(index: int, rng: random.Random, gazetteer) -> dict:
    company, products = COMPANIES[index % len(COMPANIES)]
    customer = Person(f"c{index}", rng.choice(GIVEN), rng.choice(SURNAME), gazetteer)
    third = Person(f"t{index}", rng.choice(GIVEN), rng.choice(SURNAME), gazetteer)
    agent = Person(f"a{index}", rng.choice(GIVEN), rng.choice(SURNAME), gazetteer)
    case = _pick_case(rng)  # how this customer types their name
    lower_msgs = case == "lower" and rng.random() < 0.5  # the whole user message in lower case
    echo = case if rng.random() < 0.5 else "title"  # the agent repeats the name as typed, or title-cases it
    product = rng.choice(products)
    messages = []

    system = Message("system")
    system.text(f"You are a helpful support agent for {company}. Customers ask about ").kept(
        product, product, "product").text(" and their account. Be concise and friendly, and never ask for "
                                          "passwords. Remind customers that ").kept(
        "there is a 14-day grace period", "grace period", "trap_lower").text(" on late payments.")
    messages.append(system)

    # --- user: introduction
    user = Message("user", lower=lower_msgs)
    intro = rng.choice(["intro_this_is", "intro_my_name_is", "intro_here_from"])
    org = rng.choice(CUSTOMER_ORGS)
    if intro == "intro_this_is":
        user.text(rng.choice(["hi, this is ", "Hi this is ", "hello, this is "]))
        customer.mention(user, "full", case, intro).text(f". {rng.choice(PROBLEMS)} on the ")
    elif intro == "intro_my_name_is":
        user.text(rng.choice(["Hello, my name is ", "hi my name is ", "Good morning, my name is "]))
        customer.mention(user, "full", case, intro).text(f" and {rng.choice(PROBLEMS)} on the ")
    else:
        customer.mention(user, rng.choice(["full", "given"]), case, intro).text(" here from ").kept(
            org, org, "company").text(f", {rng.choice(PROBLEMS)} on the ")
    user.kept(product, product, "product").text(".")
    messages.append(user)

    # --- assistant: agent introduces themself and reads the name back
    agent_msg = Message("assistant")
    agent_msg.text(rng.choice(["Hi, I'm ", "Hello, my name is ", "Thanks for waiting, this is "]))
    agent.mention(agent_msg, "given", "title", "agent_intro").text(f" from the {company} team. ")
    readback = rng.choice(["readback_thank_you", "readback_logged_under", "readback_dear"])
    if readback == "readback_thank_you":
        agent_msg.text("Thank you, ")
        customer.mention(agent_msg, rng.choice(["full", "given"]), echo, readback).text(". ")
    elif readback == "readback_logged_under":
        agent_msg.text("I've logged this under the customer's name, ")
        customer.mention(agent_msg, "full", echo, readback).text(". ")
    else:
        agent_msg.text("Dear ")
        if rng.random() < 0.5:
            agent_msg.text(f"{rng.choice(HONORIFICS)} ")
            customer.mention(agent_msg, "surname", echo, readback)
        else:
            customer.mention(agent_msg, "given", echo, readback)
        agent_msg.text(",\n\n")
    agent_msg.text(rng.choice(AGENT_ANSWERS) + " Could you confirm a few details so I can verify the account?")
    messages.append(agent_msg)

    # --- user: structured identifiers (conversations 0-3 together hold all eight types)
    first = STRUCTURED[index % 4]
    second = STRUCTURED[index % 4 + 4]
    extra = rng.sample([t for t in STRUCTURED if t not in (first, second)], k=rng.randint(0, 2))
    kinds = [first, second, *extra]
    rng.shuffle(kinds)
    user = Message("user", lower=lower_msgs)
    user.text(rng.choice(["sure. ", "ok ", "Sure, here you go: ", ""]))
    for i, etype in enumerate(kinds):
        if i:
            user.text(rng.choice([", ", ". ", "\n", " and "]))
        _structured(rng, user, etype, customer)
    if rng.random() < 0.4:  # a colleague named in passing
        lead, tail = rng.choice([(". my colleague ", " set it up last year"),
                                 (". Also please add ", " as an authorised user"),
                                 (". The account was opened by ", "")])
        user.text(lead)
        third.mention(user, "full", _pick_case(rng), "third_party")
        user.text(tail)
    messages.append(user)

    # --- assistant: answer with ordinary words that look like names
    agent_msg = Message("assistant")
    split = rng.random() < 0.5
    if split:  # the agent switches to the honorific and surname
        agent_msg.text(f"Thanks, {rng.choice(HONORIFICS)} ")
        customer.mention(agent_msg, "surname", "title", "split_honorific_surname").text(", that matches. ")
    else:
        agent_msg.text("Thanks, that matches our records. ")
    for phrase, word in rng.sample(TRAPS, k=2):
        agent_msg.kept(phrase[0].upper() + phrase[1:], word, "trap_lower").text(". ")
    messages.append(agent_msg)

    # --- user: follow-up, sometimes with the given name alone
    user = Message("user", lower=lower_msgs)
    if split or rng.random() < 0.3:
        user.text(rng.choice(["it's ", "this is ", "sorry, "]))
        customer.mention(user, "given", "lower" if rng.random() < 0.6 else case, "split_given")
        user.text(rng.choice([" again, it still shows the same error", " again. is the refund on its way?",
                              " - does the reset change my settings?"]))
    else:
        user.text(rng.choice(["does the reset change my settings?", "is the refund on its way?",
                              "ok, and how long will that take?"]))
    messages.append(user)

    # --- assistant: closing, with a trap word
    agent_msg = Message("assistant")
    phrase, word = rng.choice(TRAPS)
    agent_msg.text("Good question. ").kept(phrase[0].upper() + phrase[1:], word, "trap_lower").text(
        ". Is there anything else I can help with?")
    messages.append(agent_msg)

    # --- user: sign-off at the end of the message
    user = Message("user", lower=lower_msgs)
    signoff = rng.choice(["signoff_thanks", "signoff_regards", "signoff_cheers"])
    user.text(rng.choice(["no that's all, ", "That's everything. ", "all good now. "]))
    user.text({"signoff_thanks": rng.choice(["thanks, ", "Thanks, ", "thanks a lot, "]),
               "signoff_regards": rng.choice(["regards, ", "Kind regards,\n", "best regards, "]),
               "signoff_cheers": rng.choice(["cheers, ", "Cheers,\n", "cheers "])}[signoff])
    customer.mention(user, rng.choice(["full", "given"]), case, signoff)
    messages.append(user)

    return {"id": f"ent-{index:04d}", "case_style": case, "lowercase_messages": lower_msgs,
            "messages": [m.done() for m in messages]}


def load_gazetteer():
    """The scrubber's (given names, surnames), casefolded: read only, to label overlap."""
    sys.path.insert(0, str(ROOT))
    from fine_tune_assets.lib.data.scrub.names import gazetteers

    return gazetteers()


def generate(n: int = 300, seed: int = 10, gazetteer="load") -> list[dict]:
    """``n`` conversations, the same for the same ``n`` and ``seed`` (conversation i does not depend on n)."""
    gaz = load_gazetteer() if gazetteer == "load" else gazetteer
    return [conversation(i, random.Random(f"{seed}:{i}"), gaz) for i in range(n)]


def name_overlap(gazetteer=None) -> dict:
    """How many of the hand-typed names are in the scrubber's gazetteer anyway."""
    first, last = gazetteer or load_gazetteer()
    listed = lambda name: all(p.casefold() in first or p.casefold() in last for p in name.split())  # noqa: E731
    given = sorted({g for g, _ in GIVEN})
    surnames = sorted({s for s, _ in SURNAME})
    return {"given": len(given), "given_in_gazetteer": sum(map(listed, given)),
            "surnames": len(surnames), "surnames_in_gazetteer": sum(map(listed, surnames)),
            "given_not_in_gazetteer": [g for g in given if not listed(g)],
            "surnames_not_in_gazetteer": [s for s in surnames if not listed(s)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "enterprise_chats.jsonl"))
    args = ap.parse_args(argv)
    convs = generate(args.n, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for conv in convs:
            fh.write(json.dumps(conv, ensure_ascii=False) + "\n")
    overlap = name_overlap()
    n_spans = sum(len(m["spans"]) for c in convs for m in c["messages"])
    print(f"wrote {out}: {len(convs)} conversations, {sum(len(c['messages']) for c in convs)} messages, "
          f"{n_spans} PII spans; names in the gazetteer anyway: {overlap['given_in_gazetteer']}/"
          f"{overlap['given']} given, {overlap['surnames_in_gazetteer']}/{overlap['surnames']} surnames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
