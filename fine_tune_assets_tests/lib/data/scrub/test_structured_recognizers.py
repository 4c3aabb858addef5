"""Structured recognizers on chat phrasing: IBANs before more words, UK flats, lower-case addresses,
address tails that stop where the address ends, dates of birth next to addresses (real recognizers,
real engine, no mocks)."""

from __future__ import annotations

import pytest

from fine_tune_assets.lib.data.scrub import Scrubber, load_policy
from fine_tune_assets.lib.data.scrub.recognizers import (
    CaseInsensitiveIbanRecognizer,
    DateOfBirthRecognizer,
    StreetAddressRecognizer,
)
from fine_tune_assets_tests.factories import REPO


@pytest.fixture(scope="module")
def scrubber():
    return Scrubber(load_policy(REPO / "data" / "config" / "scrub_policy.yaml"))


def _values(recognizer, text, min_score=0.5):
    return [text[r.start:r.end] for r in recognizer.analyze(text, None) if r.score >= min_score]


def _found(scrubber, text, entity):
    return [text[s:e] for etype, s, e, _ in scrubber.analyze(text) if etype == entity]


@pytest.mark.parametrize("text, iban", [
    ("pay it back to GB82WEST12345698765432 thanks", "GB82WEST12345698765432"),
    ("pay it back to GB82 WEST 1234 5698 7654 32 thanks", "GB82 WEST 1234 5698 7654 32"),
    ("pay it back to de89 3704 0044 0532 0130 00 thanks!", "de89 3704 0044 0532 0130 00"),
    ("refund NL91ABNA0417164300 ok, cheers", "NL91ABNA0417164300"),
    ("IBAN: DE89-3704-0044-0532-0130-00.", "DE89-3704-0044-0532-0130-00"),
    ("ref AB12 GB82 WEST 1234 5698 7654 32 thanks", "GB82 WEST 1234 5698 7654 32"),
])
def test_iban_followed_by_words(text, iban):
    assert _values(CaseInsensitiveIbanRecognizer(), text) == [iban]


@pytest.mark.parametrize("text", [
    "pay it back to GB83WEST12345698765432 thanks",  # wrong check digits
    "GB82WEST12345698765432X is not one",  # runs into a letter
    "the ab12 cdef ghij klmn code expired",
])
def test_iban_negatives(text):
    assert _values(CaseInsensitiveIbanRecognizer(), text) == []


@pytest.mark.parametrize("text, address", [
    ("I live at Flat 6, 36 Larkspur Street, Leeds LS6 9AD\nthanks", "Flat 6, 36 Larkspur Street, Leeds LS6 9AD"),
    ("ship it to Apt 4B, 120 Main Street, Springfield, IL 62704 please.",
     "Apt 4B, 120 Main Street, Springfield, IL 62704"),
    ("the meter is at flat 5, 219 old mill terrace, swansea sa1 3ts, my birthday is 03/24/2002",
     "flat 5, 219 old mill terrace, swansea sa1 3ts"),
    ("service address: 48 old mill street, bristol bs3 2wp\ncall me on +15062655847",
     "48 old mill street, bristol bs3 2wp"),
    ("i live at rosenweg 5, 79098 freiburg, the iban is gb82west12345698765432",
     "rosenweg 5, 79098 freiburg"),
    ("3583 saltmarsh avenue, springfield, il 62735, my ssn is 717-61-8595",
     "3583 saltmarsh avenue, springfield, il 62735"),
])
def test_unit_prefix_and_lower_case_addresses(text, address):
    assert _values(StreetAddressRecognizer(), text) == [address]


@pytest.mark.parametrize("text, address", [
    # the tail stops where the address ends: before "pay it back", "it was charged", "please", "the logs"
    ("the meter is at gartenstraße 99, 04109 leipzig, it was charged to 2597-3918-5645-4069 twice",
     "gartenstraße 99, 04109 leipzig"),
    ("the meter is at 108 Old Mill Way, Swansea SA1 8GB, pay it back to BE36 7986 2164 9781 thanks",
     "108 Old Mill Way, Swansea SA1 8GB"),
    ("ship it to 1793 Larkspur Avenue, Fresno, CA 93734 please, the logs show logins from 2001:db8::1",
     "1793 Larkspur Avenue, Fresno, CA 93734"),
    ("I live at Rosenweg 79, 34117 Kassel. pay it back to me", "Rosenweg 79, 34117 Kassel"),
    ("service address: 3466 ropewalk drive, boulder, co 80390 and pay it back",
     "3466 ropewalk drive, boulder, co 80390"),
    # ... and still takes the place names, postcodes and countries that belong to it
    ("I live at 14 Crown Street, London SW1A 1AA; my father too", "14 Crown Street, London SW1A 1AA"),
    ("I live at 5 Main Street, Portland, OR 97201, USA. Thanks", "5 Main Street, Portland, OR 97201, USA"),
    ("send it to 12 Elm Road, Stratford upon Avon CV37 6AA please", "12 Elm Road, Stratford upon Avon CV37 6AA"),
    ("send a new one to P.O. Box 186, Alt-Dietmanns, Austria? I am away", "P.O. Box 186, Alt-Dietmanns, Austria"),
    ("update it to P.O. Box 287, Tallinn, Estonia for this card", "P.O. Box 287, Tallinn, Estonia"),
])
def test_address_tail_ends_with_the_address(text, address):
    assert _values(StreetAddressRecognizer(), text) == [address]


@pytest.mark.parametrize("text", [
    "the june invoice is attached",
    "on 4 February we shipped the order to the office",
    "it was delivered on 12 March 2024 to the office",
    "we charge a flat rate of 5 pounds for delivery",
    "March 20 is when we moved the office",
    "the FiberMax 1000 router at my address keeps dropping",
    "I live in a flat and the HaloBox 6 reboots every night",
])
def test_ordinary_words_and_dates_are_not_addresses(text):
    assert _values(StreetAddressRecognizer(), text) == []
    assert _values(DateOfBirthRecognizer(), text) == []


@pytest.mark.parametrize("text, dob", [
    ("social security number 541-56-1529 and d.o.b. 17 November 1986, bank account: BE46 9804 6995 0836",
     "17 November 1986"),
    ("date of birth March 20, 1965 and the meter is at 3262 Harbour Drive, Boulder, CO 80332", "March 20, 1965"),
    ("the meter is at 83 Copper Beech Way, Leeds LS6 5LT, born 4 February 1943, the iban is x", "4 February 1943"),
    ("router says WAN address 51.247.82.165 and DOB: March 9, 1942 and for the tax form", "March 9, 1942"),
    ("reach me at blueoak942@fastmail.com, born 7 June 1955, for the tax form my social is", "7 June 1955"),
])
def test_month_name_dates_of_birth_are_not_swallowed_by_an_address(scrubber, text, dob):
    assert _found(scrubber, text, "DATE_OF_BIRTH") == [dob]
    assert not any(dob in v for v in _found(scrubber, text, "STREET_ADDRESS"))


def test_identifiers_after_an_address_keep_their_own_type(scrubber):
    phone = "service address: Schillerstraße 16, 04109 Leipzig. call me on 071 115 6074"
    assert _found(scrubber, phone, "PHONE_NUMBER") == ["071 115 6074"]
    assert _found(scrubber, phone, "STREET_ADDRESS") == ["Schillerstraße 16, 04109 Leipzig"]
    ip = ("ship it to 1793 Larkspur Avenue, Fresno, CA 93734 please, the logs show logins from "
          "2001:db8:2caa:d345:66cb:9fa2:12dc:cb2. DOB: 15/08/1961")
    assert _found(scrubber, ip, "IP_ADDRESS") == ["2001:db8:2caa:d345:66cb:9fa2:12dc:cb2"]
    iban = "I live at Flat 4, 82 Heather Close, Dundee DD1 3FN, pay it back to GB82 WEST 1234 5698 7654 32 thanks"
    assert _found(scrubber, iban, "STREET_ADDRESS") == ["Flat 4, 82 Heather Close, Dundee DD1 3FN"]
    assert _found(scrubber, iban, "IBAN_CODE") == ["GB82 WEST 1234 5698 7654 32"]


def test_ordinary_words_are_kept_by_the_scrubber(scrubber):
    for text in ("the june invoice is attached", "on 4 February we shipped the order to the office",
                 "we charge a flat rate of 5 pounds for delivery"):
        assert scrubber.analyze(text) == []
