"""Smoke form of ``bench/pii_recall.py`` and its enterprise chat generator (CI, ~15 s on 2 cores).

The generator's spans must be exact and reproducible, and the benchmark's evaluation runs on a few
generated conversations with the real scrubber (no mocks): the report has its shape and every
structured identifier (e-mail, phone, card, IBAN, SSN, IP, date of birth, address) is caught.
"""

import importlib.util
import itertools
import json
import sys

import pytest

from fine_tune_assets_tests.factories import REPO

BENCH = REPO / "bench"
STRUCTURED = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
              "DATE_OF_BIRTH", "STREET_ADDRESS"}


def _bench_module(name):
    """A script of bench/ (not a package) as a module; pii_recall imports enterprise_chats by name."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chats():
    return _bench_module("enterprise_chats")


def test_generator_spans_are_exact_and_deterministic(chats):
    convs = chats.generate(40, seed=10)
    assert convs == chats.generate(40, seed=10)
    assert convs[:5] == chats.generate(5, seed=10)  # conversation i does not depend on n
    assert convs != chats.generate(40, seed=11)
    forms, types, cases = set(), set(), set()
    for conv in convs:
        assert [m["role"] for m in conv["messages"]][:2] == ["system", "user"]
        for m in conv["messages"]:
            text = m["content"]
            for span in m["spans"] + m["keep"]:
                assert text[span["start"]:span["end"]] == span["value"], (conv["id"], span)
            ends = sorted((s["start"], s["end"]) for s in m["spans"])
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends)), (conv["id"], ends)  # no overlaps
            for span in m["spans"]:
                types.add(span["entity_type"])
                if span["entity_type"] == "PERSON":
                    forms.add(span["form"])
                    cases.add(span["case"])
                    assert span["in_gazetteer"] in {"all", "some", "none"}
            for keep in m["keep"]:  # words to keep never sit inside PII
                assert not any(s["start"] < keep["end"] and keep["start"] < s["end"] for s in m["spans"])
    assert types == STRUCTURED | {"PERSON"}
    assert cases == {"title", "lower", "upper"}
    assert {"intro_this_is", "intro_my_name_is", "intro_here_from", "signoff_thanks", "signoff_regards",
            "signoff_cheers", "readback_thank_you", "readback_logged_under", "readback_dear",
            "split_honorific_surname", "split_given"} <= forms


def test_generator_names_are_not_the_gazetteer(chats):
    overlap = chats.name_overlap()
    assert overlap["given"] >= 200 and overlap["surnames"] >= 200
    # hand-typed lists, not Faker's: a good share is outside the scrubber's gazetteer
    assert len(overlap["given_not_in_gazetteer"]) >= 50 and len(overlap["surnames_not_in_gazetteer"]) >= 50


def test_benchmark_smoke_on_enterprise_chats(tmp_path):
    bench = _bench_module("pii_recall")
    out = tmp_path / "pii_recall.json"
    assert bench.main(["--set", "enterprise", "--limit", "4", "--no-baseline", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))["enterprise"]
    ours = report["ours"]
    assert ours["n_conversations"] == 4 and ours["alignment_failures"] == 0
    assert report["stock_presidio"] is None
    for key in ("recall_by_type", "person_by_form", "person_by_case", "person_by_gazetteer", "precision_all",
                "words_kept", "planted_keep_words", "structured"):
        assert ours[key], key
    by_type = ours["recall_by_type"]
    assert set(by_type) == STRUCTURED | {"PERSON"}  # the first four conversations hold every type
    for etype in STRUCTURED:
        assert by_type[etype]["recall"] == 1.0, (etype, ours["missed"].get(etype))
    assert ours["structured"]["recall"] == 1.0
    assert 0.0 < ours["words_kept"]["share"] <= 1.0
    assert by_type["PERSON"]["gold"] > 0 and by_type["PERSON"]["found"] > 0


def test_alignment_recovers_replaced_spans():
    bench = _bench_module("pii_recall")
    original = "hi, this is amaya okoro, call me on +44 20 7946 0958 thanks"
    scrubbed = "hi, this is <PERSON_1>, call me on <PHONE_NUMBER_1> thanks"
    found = bench.aligned_findings(original, scrubbed)
    assert [(t, original[s:e]) for t, s, e, _ in found] == [("PERSON", "amaya okoro"),
                                                            ("PHONE_NUMBER", "+44 20 7946 0958")]
    assert bench.aligned_findings(original, original) == []
