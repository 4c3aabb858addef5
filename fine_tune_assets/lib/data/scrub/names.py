"""Name knowledge for PERSON detection: gazetteers, surname morphology, cue words.

Why: the offline spaCy model (en_core_web_sm) finds only ~2/3 of person names, and misses most
non-English ones. The tagger still marks them as proper nouns (NNP), so a proper noun that is also
a known given name or surname (or has a surname ending such as -ová, -ski, -sson) is very likely a
person. The gazetteers come from Faker's person providers (MIT, ~80 locales, ~31k given names and
~30k surnames) - a well-kept package, not the benchmark's own name source.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from pathlib import Path

import regex

from .nlp import SPACY_MODEL

# Words that are tagged as proper nouns but are never person names in chat data.
NOT_NAMES = frozenset(
    [
        "i", "ok", "okay", "hi", "hello", "hey", "dear", "thanks", "thank", "regards", "best", "cheers", "yes",
        "no", "please", "sorry", "sir", "madam", "user", "bot", "assistant", "system", "customer", "agent", "admin",
        "support", "team", "manager", "staff", "client", "monday", "tuesday", "wednesday", "thursday", "friday",
        "saturday", "sunday", "today", "tomorrow", "yesterday", "january", "february", "march", "april", "may",
        "june", "july", "august", "september", "october", "november", "december", "street", "st", "road", "rd",
        "avenue", "ave", "lane", "drive", "way", "court", "place", "boulevard", "square", "inc", "ltd", "llc",
        "plc", "corp", "co", "company", "group", "bank", "university", "college", "school", "hospital", "hotel",
        "airport", "city", "county", "state", "republic", "kingdom", "north", "south", "east", "west", "new", "san",
        "santa", "st", "saint", "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "lady", "lord", "rev",
        "english", "french", "german", "spanish", "italian", "american", "british", "european",
    ]
)

HONORIFICS = frozenset(
    [
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady", "lord", "rev",
        "reverend", "fr", "father", "sister", "brother", "mme", "mlle", "madame", "monsieur", "herr", "frau", "sr",
        "sra", "srta", "dott", "dott.ssa", "ing", "capt", "captain", "col", "colonel", "gen", "general", "lt",
        "sgt", "officer", "judge", "hon",
    ]
)

# Last words of company and product names ("Blue Heron Dental", "Harper Sync", "Ledgerline Pro"): a
# capitalised run ending in one is a business, not a person, unless a cue says otherwise.
ORG_HEADS = frozenset(
    [
        "inc", "ltd", "llc", "plc", "gmbh", "corp", "co", "group", "holdings", "partners", "associates", "labs",
        "solutions", "systems", "services", "consulting", "consultants", "agency", "studio", "studios", "media",
        "digital", "tech", "technologies", "software", "networks", "telecom", "mobile", "energy", "power", "utilities",
        "logistics", "freight", "shipping", "transport", "motors", "auto", "dental", "clinic", "health", "healthcare",
        "pharmacy", "medical", "veterinary", "vets", "legal", "law", "bakery", "cafe", "café", "kitchen", "foods",
        "restaurant", "bistro", "bar", "pub", "hotel", "travel", "tours", "bank", "finance", "financial", "capital",
        "insurance", "investments", "realty", "properties", "estates", "homes", "construction", "builders",
        "engineering", "manufacturing", "industries", "supplies", "store", "stores", "shop", "market", "mart",
        "outlet", "academy", "school", "institute", "university", "college", "foundation", "trust", "charity",
        "council", "hub", "sync", "pro", "plus", "max", "lite", "cloud", "connect", "link", "pay", "payroll",
        "suite", "app", "online", "portal", "platform", "express", "direct", "one", "go", "home", "smart", "os",
    ]
)
# Nouns a product or plan name modifies ("the Atlas export", "Orion app", "Willow plan")
PRODUCT_NOUNS = frozenset(
    [
        "app", "apps", "export", "exports", "import", "plan", "plans", "tariff", "router", "modem", "meter", "hub",
        "subscription", "package", "bundle", "device", "model", "software", "tool", "platform", "portal",
        "dashboard", "report", "reports", "integration", "plugin", "extension", "license", "licence", "edition",
        "module", "server", "api", "sdk", "update", "upgrade", "firmware", "feature", "add-on", "account", "card",
        "contract", "service", "product", "range", "line", "series", "console", "camera", "speaker", "thermostat",
        "charger", "phone", "tablet", "laptop", "watch", "sensor", "system", "kit", "box", "pack", "membership",
        "scheme", "policy", "loan", "mortgage", "wallet", "checkout", "widget", "extension", "license", "website",
    ]
)

# Particles allowed inside a multi-word name ("Ludwig van Beethoven", "Maria da Silva").
PARTICLES = frozenset([
    "van", "von", "der", "den", "de", "da", "das", "do", "dos", "di", "del", "della", "du", "le", "la", "ten",
    "ter", "bin", "ibn", "al", "el", "st",
])

# Cue words right before a name that make the next capitalised word a name: "my name is X", "Dear X".
STRONG_CUE_BEFORE = regex.compile(
    r"(?i:\b(?:name\s+is|name's|named|called|call\s+me|dear|attn|attention|c/o|ask\s+for|"
    r"(?:first|last|full|sur|given|maiden)\s*name\s*(?:is)?|name|contact\s+person|"
    r"(?:my|our|his|her|their|your)\s+(?:kid|son|daughter|child|wife|husband|spouse|partner|mother|mom|mum|"
    r"father|dad|brother|sister|friend|colleague|coworker|co-worker|boss|manager|uncle|aunt|cousin|"
    r"grandfather|grandmother|grandson|granddaughter|nephew|niece|fianc[ée]e?|boyfriend|girlfriend|"
    r"neighbou?r|tenant|landlord|assistant|doctor|lawyer)|"
    r"(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|lady|lord|rev|mme|mlle|herr|frau|sr|sra)\.?)[\s,:?]*)$"
)

# Surname endings seen across European, Slavic, Nordic, Greek and Turkish names.
SURNAME_SUFFIX = regex.compile(
    r"(?:ov|ova|ová|ev|eva|ski|ska|sky|ský|ská|cki|cka|dzki|dzka|vić|vič|vic|ić|ič|ovich|evich|ovna|evna|"
    r"enko|chuk|czyk|czak|iak|ek|ák|ik|sson|ssen|sen|son|dóttir|dottir|nen|inen|lä|poulos|opoulos|akis|"
    r"idis|iadis|oglu|oğlu|escu|eanu|mann|stein|berg|ström|strom|qvist|kvist|gren|lund|ez|es|ini|elli|etti|"
    r"ucci|ino|oni|ato|ura|shi|moto|yama|kawa|mura|ita|aki)$"
)
MC_PREFIX = regex.compile(r"^(?:Mc|Mac|O['’])\p{Lu}")


def _normal(word: str) -> str:
    return word.casefold().strip(".'’")


@functools.lru_cache(maxsize=1)
def gazetteers() -> tuple[frozenset[str], frozenset[str]]:
    """(given names, surnames), casefolded, from every Faker person provider (~0.1 s, cached)."""
    import faker.providers.person as person_pkg

    first: set[str] = set()
    last: set[str] = set()
    for info in pkgutil.iter_modules(person_pkg.__path__):
        module = importlib.import_module(f"{person_pkg.__name__}.{info.name}")
        provider = getattr(module, "Provider", None)
        if provider is None:
            continue
        for attr in dir(provider):
            if not (attr.startswith(("first_name", "last_name")) or "romanized" in attr):
                continue
            if attr.endswith(("pairs", "pair")):
                continue
            values = getattr(provider, attr, None)
            if not isinstance(values, (list, tuple, dict)) or not values:
                continue
            sample = next(iter(values))
            if not isinstance(sample, str):
                continue
            target = first if "first" in attr else last
            for value in values:
                for part in re.split(r"[\s-]+", value):
                    part = _normal(part)
                    if len(part) >= 2 and part not in NOT_NAMES and part not in PARTICLES:
                        target.add(part)
    return frozenset(first), frozenset(last)


@functools.lru_cache(maxsize=1)
def places() -> frozenset[str]:
    """City, region and country names from Faker's address providers and the time-zone database
    (casefolded). Faker's English providers invent their cities; the zone names ("Europe/Berlin",
    "Australia/Sydney", "America/Chicago") give the large real ones a chat mentions most."""
    import zoneinfo

    import faker.providers.address as address_pkg

    out: set[str] = set()
    wanted = ("cities", "city_names", "real_city_names", "metropolitan_cities", "countries", "states",
              "provinces", "regions")
    for info in pkgutil.iter_modules(address_pkg.__path__):
        module = importlib.import_module(f"{address_pkg.__name__}.{info.name}")
        provider = getattr(module, "Provider", None)
        for attr in wanted:
            values = getattr(provider, attr, None)
            if isinstance(values, (list, tuple)) and values and isinstance(values[0], str):
                out.update(_normal(v) for v in values)
    out.update(_normal(zone.rsplit("/", 1)[-1].replace("_", " ")) for zone in zoneinfo.available_timezones()
               if "/" in zone and not zone.startswith("Etc/"))
    return frozenset(out)


def is_place(word: str) -> bool:
    return _normal(word) in places()


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-case English words (WordNet index shipped inside the spaCy model's lemmatizer).

    Used only as a negative signal: an unknown capitalised word that is an English word ("Note",
    "Summary") is not taken for a name on capitalisation alone.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    return _wordnet(("noun", "verb", "adj", "adv")) | _irregular_forms() | frozenset(STOP_WORDS)


@functools.lru_cache(maxsize=1)
def _irregular_forms() -> frozenset[str]:
    """Irregular inflections ("got", "went", "children") from the lemmatizer's exception table."""
    table = _lemma_table("lemma_exc")
    return frozenset(form for forms in table.values() for form in forms if form.isalpha())


@functools.lru_cache(maxsize=2)
def _lemma_table(name: str):
    """One of the spaCy model's lemmatizer lookup tables ({} for a model without them). The model
    is loaded once, lemmatizer only: every load costs ~0.2 s of a worker's start-up."""
    lookups = _lemma_lookups()
    return lookups.get_table(name) if lookups is not None and lookups.has_table(name) else {}


@functools.lru_cache(maxsize=1)
def _lemma_lookups():
    """The model's lemmatizer tables, read from the installed package's files (~10 ms; loading the
    pipeline for them cost every scrub worker 0.4 s), else from the loaded pipeline."""
    import spacy
    from spacy.lookups import Lookups

    try:
        package = Path(spacy.util.get_package_path(SPACY_MODEL))
    except (ImportError, ModuleNotFoundError, TypeError):  # a model given as a path, not a package
        package = None
    if package is not None:
        folder = next(package.glob("*/lemmatizer/lookups"), None)
        if folder is not None:
            return Lookups().from_disk(folder)
    nlp = spacy.load(SPACY_MODEL, exclude=["tok2vec", "tagger", "parser", "ner", "attribute_ruler", "senter"])
    return getattr(nlp.get_pipe("lemmatizer"), "lookups", None) if "lemmatizer" in nlp.pipe_names else None


@functools.lru_cache(maxsize=4)
def _wordnet(parts: tuple) -> frozenset[str]:
    table = _lemma_table("lemma_index")
    words: set[str] = set()
    for pos in parts:
        words.update(w for w in table.get(pos, []) if w.isalpha())
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Very common English words (stop words + Faker's ~1,000-word English lorem list).

    A name list entry that is one of these ("Will", "May", "Can", "True") is never taken as a
    name on the list's word alone.
    """
    from faker.providers.lorem.en_US import Provider as Lorem
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(w.lower() for w in Lorem.word_list) | frozenset(STOP_WORDS)


# name prefixes that take a capital after them: McDonald, MacArthur, DeShawn, LaToya, DiCaprio, O'Neil
_CAPITAL_PREFIXES = frozenset(["mc", "mac", "de", "di", "da", "du", "la", "le", "van", "von", "fitz", "st", "o"])
_INNER_CAPITAL = regex.compile(r"(?<=\p{Ll})\p{Lu}")


def product_shaped(text: str) -> bool:
    """A capital inside a word, not after a name prefix: "HaloBox", "FiberMax 1000", "OnePlus",
    "iPhone" are products; "McDonald", "DeShawn" are names."""
    for word in regex.findall(r"\p{L}+", text):
        m = _INNER_CAPITAL.search(word)
        if m is not None and word[: m.start()].casefold() not in _CAPITAL_PREFIXES:
            return True
    return False


def name_class(word: str) -> str:
    """'name' (a listed name, not an English word), 'name_noun' (listed, and a WordNet noun:
    John, Scott, Story), 'ambiguous' (listed, and an English verb/adjective/adverb: Frank, Press),
    'common' (an English word, not listed), 'stop' (very common word) or 'unknown'."""
    w = _normal(word)
    if w in _stop_words():
        return "stop"
    listed = w in gazetteers()[0] or w in gazetteers()[1]
    if w in common_words():
        return "ambiguous" if listed else "common"
    if listed:
        if w in _non_noun_words():
            return "ambiguous"
        return "name_noun" if w in english_words() else "name"
    if w in english_words() or _inflected_word(w):
        return "common"
    return "common" if word.islower() and _typo_of_word(w) else "unknown"


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@functools.lru_cache(maxsize=65536)
def _typo_of_word(w: str) -> bool:
    """One keystroke away from an English word of five letters or more ("suppport", "avaialble",
    "hndles"): chat typos are not names. Short words are left alone ("Kofi" is not "koi"), and
    only words typed in lower case are checked: WordNet lists genus names ("irena"), so a
    capitalised "Irenka" stays a possible name."""
    if len(w) < 6 or not w.isalpha() or not w.isascii():
        return False
    words = english_words()
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    candidates = {a + b[1:] for a, b in splits if b}  # a letter too many
    candidates |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}  # two letters swapped
    candidates |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}  # a wrong letter
    candidates |= {a + c + b for a, b in splits for c in _LETTERS}  # a letter missing
    return any(len(c) >= 5 and (c in words or _inflected_word(c)) for c in candidates - {w})


def _inflected_word(w: str) -> bool:
    """WordNet's index holds lemmas: "customers", "batteries", "spelled", "stopped" and "logging" are
    English words too."""
    if len(w) < 4 or w.endswith("ss"):
        return False
    words = english_words()
    stems: list[str] = []
    if w.endswith("s"):
        stems += [w[:-1], w[:-2] if w.endswith("es") else "", w[:-3] + "y" if w.endswith("ies") else ""]
    for suffix in ("ed", "ing"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            stems += [stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else "",
                      stem[:-1] + "y" if suffix == "ed" and stem.endswith("i") else ""]
    return any(s and s in words for s in stems)


@functools.lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@functools.lru_cache(maxsize=1)
def _non_noun_words() -> frozenset[str]:
    """English verbs, adjectives and adverbs (WordNet): a listed name among them ("Frank",
    "Will", "Grant", "Rose") is a common word as often as a name. Nouns alone are not counted:
    WordNet lists famous people, so "john", "scott" and "rebecca" are WordNet nouns."""
    return _wordnet(("verb", "adj", "adv"))


def has_surname_shape(word: str) -> bool:
    return bool(MC_PREFIX.match(word)) or (len(word) >= 5 and bool(SURNAME_SUFFIX.search(word.casefold())))
