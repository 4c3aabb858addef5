"""Names found by the words around them (cues.py) and one decision per conversation (consistency.py).

Real Presidio engine and spaCy model for the conversation tests; the cue tests need neither.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fine_tune_assets.lib.data.quality_gates import residual_pii_gate
from fine_tune_assets.lib.data.scrub import Scrubber, load_policy, residual_pii
from fine_tune_assets.lib.data.scrub.cues import cue_names, described_names
from fine_tune_assets.lib.data.scrub.names import name_class
from fine_tune_assets_tests.factories import REPO


def _names(text: str) -> list[str]:
    return [text[s:e] for s, e, _, _ in cue_names(text)]


@pytest.mark.parametrize(("text", "name"), [
    ("hi, this is amaya okoro. the app keeps logging me out", "amaya okoro"),
    ("Good morning, my name is wanjiru prothero and my meter stopped", "wanjiru prothero"),
    ("kourosh horvat here from Northgate Freight, the wifi drops", "kourosh horvat"),
    ("Hi, I'm Haeun from the Ledgerline team.", "Haeun"),
    ("Hi this is RUKAYYA GEORGIOU. I need to update the card", "RUKAYYA GEORGIOU"),
    ("no that's all, thanks a lot, mere korhonen", "mere korhonen"),
    ("That's everything. Kind regards,\ncaoimhe", "caoimhe"),
    ("all good now. cheers wojciech chebet", "wojciech chebet"),
    ("Thank you, xiaoming. Signing out and back in fixes this.", "xiaoming"),
    ("I've logged this under the customer's name, caoimhe akinola. Next,", "caoimhe akinola"),
    ("Dear Mx prothero,\n\nI've updated the record.", "prothero"),
    ("Thanks, Ms Ngo, that matches.", "Ngo"),
    ("my colleague torsten deshpande set it up last year", "torsten deshpande"),
    ("the account was opened by eero raghunathan", "eero raghunathan"),
    ("also please add rupert kim as an authorised user", "rupert kim"),
    ("Hello, my name is Jericho and I was charged twice", "Jericho"),
    ("Hi, I'm Jericho from the Kestrel Telecom team.", "Jericho"),
])
def test_cue_phrases_find_names_in_any_case(text, name):
    assert name in _names(text)


@pytest.mark.parametrize("text", [
    "this is urgent, the router is down",
    "thanks, that works now",
    "i'm locked out of my account",
    "thanks, will do",
    "hi there, my app crashes",
    "I don't want to miss payments",
    "I have a dr appointment at 3",
    "Dear Valued Customer,",
    "it's fixed now, thank you",
    "MS Teams keeps crashing",
    "ok DOB: 12/03/1990",
    "there is a 14-day grace period before any late fee",
    "to be frank, the old firmware was buggy",
    "cheers mate",
    "my name is spelled wrong on the invoice",
    "Dear Halcyon,\nmy bill doubled.",
    "Hi, I'm Happy with the fix.",
    "thanks, suppport said it was normallly fixed",
    "regards, therre is no signal",
])
def test_ordinary_phrases_are_not_names(text):
    assert _names(text) == []


def test_typos_typed_in_lower_case_are_words_not_names():
    assert [name_class(w) for w in ("suppport", "avaialble", "normallly", "got")] == ["common"] * 4
    assert name_class("Irenka") == "unknown"  # one letter from WordNet's genus "irena", capitalised


def test_described_names_need_a_person_context():
    text = "Unlike the Sokolov novel, it is short. Irenka is very reliable. The package is from Amazon."
    assert [text[s:e] for s, e, _, _ in described_names(text)] == ["Sokolov", "Irenka"]


@pytest.fixture(scope="module")
def policy():
    return load_policy(REPO / "data" / "config" / "scrub_policy.yaml")


@pytest.fixture(scope="module")
def scrubber(policy):
    return Scrubber(policy)


def scrubbed(scrubber, *turns: str) -> list[str]:
    """One conversation's turns (the user's first, then alternating), as scrubbed."""
    messages = [{"role": ("user", "assistant")[i % 2], "content": turn} for i, turn in enumerate(turns)]
    return [m["content"] for m in scrubber.scrub_conversation(messages).messages]


def test_one_decision_per_conversation_with_the_same_placeholder(scrubber):
    out = scrubbed(
        scrubber,
        "Hello, my name is Amaya Okoro and the Harper Sync app keeps logging me out.",
        "Thanks, Ms Okoro. I've reset the session.",
        "it's amaya again, still broken. AMAYA OKORO, account owner.",
        "Sorry about that, amaya okoro. It is a mere formality to re-login.",
    )
    joined = " ".join(out).casefold()
    assert "amaya" not in joined and "okoro" not in joined
    assert out[0].startswith("Hello, my name is <PERSON_1> and the Harper Sync app")  # a product, kept
    assert out[1] == "Thanks, Ms <PERSON_1>. I've reset the session."
    assert out[2] == "it's <PERSON_1> again, still broken. <PERSON_1>, account owner."
    assert out[3] == "Sorry about that, <PERSON_1>. It is a mere formality to re-login."


def test_a_name_that_is_an_english_word_is_scrubbed_only_where_it_names(scrubber):
    out = scrubbed(
        scrubber,
        "hi my name is mere korhonen and the invoice is wrong",
        "It is a mere formality: I've corrected the invoice.",
        "sorry, mere again. is the refund on its way?",
    )
    assert out == ["hi my name is <PERSON_1> and the invoice is wrong",
        "It is a mere formality: I've corrected the invoice.",
        "sorry, <PERSON_1> again. is the refund on its way?"]


def test_a_name_part_decided_in_capitals_is_found_in_a_later_cue(scrubber):
    out = scrubbed(
        scrubber,
        "Hello, my name is MEI BUI and the direct debit failed.",
        "Thank you. The late fee is removed.",
        "no that's all, cheers, MEI",
    )
    assert out[0] == "Hello, my name is <PERSON_1> and the direct debit failed."
    assert out[2] == "no that's all, cheers, <PERSON_1>"


def test_a_decided_name_is_found_in_its_other_spellings_of_case(scrubber):
    # "ß" in capitals is "SS": a case-insensitive regex does not equate them, casefolding does
    out = scrubbed(
        scrubber,
        "Hello, my name is Jana Kießling and my card was declined.",
        "Thank you. Is the name on the card spelled with a double s, as in KIESSLING?",
        "yes, kiessling. the card is from 2019",
    )
    assert out == ["Hello, my name is <PERSON_1> and my card was declined.",
        "Thank you. Is the name on the card spelled with a double s, as in <PERSON_1>?",
        "yes, <PERSON_1>. the card is from 2019"]


def test_products_and_acronyms_are_not_taken_for_a_decided_name(scrubber):
    out = scrubbed(
        scrubber,
        "The Halobox died overnight. now it says nat type strict.",
        "Sorry to hear it. A new HaloBox fixes the NAT type; I've sent one.",
    )
    assert out[1] == "Sorry to hear it. A new HaloBox fixes the NAT type; I've sent one."


def test_cities_and_countries_are_content_not_people(scrubber):
    # "Berlin", "Paris", "London", "Poland" are listed names too (Irving Berlin, Jack London)
    out = scrubbed(
        scrubber,
        "Hi, I'm Anna Kowalski from Berlin. I moved here from Poland last year.",
        "Welcome, Ms Kowalski. Your parcel went from London to Paris by mistake.",
    )
    assert out == ["Hi, I'm <PERSON_1> from Berlin. I moved here from Poland last year.",
                   "Welcome, Ms <PERSON_1>. Your parcel went from London to Paris by mistake."]


def test_any_entity_found_once_is_scrubbed_everywhere_in_the_conversation(scrubber):
    out = scrubbed(
        scrubber,
        "My date of birth is 17 November 1986.",
        "Thanks. To confirm: 17 November 1986?",
    )
    assert out == ["My date of birth is <DATE_OF_BIRTH_1>.", "Thanks. To confirm: <DATE_OF_BIRTH_1>?"]
    # the same date in another conversation, without the cue, is an ordinary date
    other = scrubber.scrub_conversation([{"role": "user", "content": "Shipped on 17 November 1986."}])
    assert other.messages[0]["content"] == "Shipped on 17 November 1986."


def test_residual_check_catches_a_lower_case_name_leak(policy, scrubber, tmp_path):
    leak = "no that's all, thanks a lot, amaya okoro"
    assert [t for t, _ in residual_pii(leak, policy)] == ["PERSON"]
    clean = scrubber.scrub_conversation([{"role": "user", "content": leak}]).messages[0]["content"]
    assert clean == "no that's all, thanks a lot, <PERSON_1>" and residual_pii(clean, policy) == []

    def gate(content):  # the dataset gate over a validated-records file
        path = tmp_path / "validated.parquet"
        pq.write_table(pa.table({"messages_json": [json.dumps([{"role": "user", "content": content}])]}), path)
        return residual_pii_gate(path, policy)

    failed = gate(leak)
    assert not failed.passed and failed.details["findings_by_type"] == {"PERSON": 1}
    assert "amaya" not in json.dumps(failed.to_dict())  # counts and types, never the value
    assert gate(clean).passed
