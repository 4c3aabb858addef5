"""PII scrubbing with the real Presidio engine and the real spaCy model (no mocks).

The engine is built once per module; the worker-process test spawns two real workers.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from fine_tune_assets.lib.data.scrub import (
    PolicyError,
    PseudonymKeyError,
    Scrubber,
    describe_policy,
    load_policy,
    policy_from_dict,
    residual_pii,
    scrub_conversations,
)
from fine_tune_assets.lib.data.scrub.policy import DEFAULT_POLICY
from fine_tune_assets_tests.factories import REPO

KEY_ENV = "FINE_TUNE_PSEUDONYM_KEY"

# value -> entity type that must replace it
PLANTED = {
    "Anna Kowalska": "PERSON",
    "JOHN WHITAKER": "PERSON",
    "anna.kowalska@example.com": "EMAIL_ADDRESS",
    "(415) 555-0132": "PHONE_NUMBER",
    "+44 20 7946 0958": "PHONE_NUMBER",
    "+49 30 901820": "PHONE_NUMBER",
    "536-22-8147": "US_SSN",
    "2223 0031 2200 3222": "CREDIT_CARD",  # Mastercard 2-series
    "4131034282458809939": "CREDIT_CARD",  # 19-digit Visa
    "GB82WEST12345698765432": "IBAN_CODE",
    "203.0.113.42": "IP_ADDRESS",
    "14 Crown Street, London SW1A 1AA": "STREET_ADDRESS",
    "1600 Pennsylvania Avenue": "STREET_ADDRESS",
    "12 March 1985": "DATE_OF_BIRTH",
    "HBE-204817": "EMPLOYEE_ID",
    "HB-40921733": "ACCOUNT_NUMBER",
}


def _conversation():
    return [
        {"role": "system", "content": "You support Halcyon Broadband customers. Escalate to Anna Kowalska."},
        {"role": "user", "content": "Hi, I am Anna Kowalska, account HB-40921733, born on 12 March 1985. "
                                    "Mail anna.kowalska@example.com or call (415) 555-0132.",
         "name": "customer", "weight": 1},
        {"role": "assistant", "content": "Thanks Anna Kowalska! Agent HBE-204817 here. Our UK desk is "
                                         "+44 20 7946 0958 and Berlin +49 30 901820. Since Tuesday the "
                                         "outage is fixed."},
        {"role": "user", "content": "My SSN is 536-22-8147, card 2223 0031 2200 3222 and 4131034282458809939, "
                                    "IBAN GB82WEST12345698765432, my router IP 203.0.113.42. I live at "
                                    "14 Crown Street, London SW1A 1AA; my father lives at 1600 Pennsylvania "
                                    "Avenue. Please ask JOHN WHITAKER to call me."},
    ]


COMPANY_POLICY = REPO / "data" / "config" / "scrub_policy.yaml"


@pytest.fixture(scope="module")
def policy():
    """The sample company's policy: the packaged default plus its employee-id and account recognizers."""
    return load_policy(COMPANY_POLICY)


@pytest.fixture(scope="module")
def scrubber(policy):
    return Scrubber(policy)


@pytest.fixture(scope="module")
def scrubbed(scrubber):
    return scrubber.scrub_conversation(_conversation())


def _all_text(messages):
    return "\n".join(m["content"] for m in messages)


def test_every_entity_kind_is_replaced(scrubbed):
    text = _all_text(scrubbed.messages)
    for value, entity in PLANTED.items():
        assert value not in text, f"{entity} {value!r} survived: {text}"
        assert f"<{entity}_" in text, f"no {entity} placeholder in {text}"
    assert set(PLANTED.values()) <= set(scrubbed.entity_counts)
    # counts only, never values
    assert all(isinstance(v, int) for v in scrubbed.entity_counts.values())
    assert not any(v in json.dumps(scrubbed.entity_counts) for v in PLANTED)


def test_ordinary_dates_and_words_are_kept(scrubbed):
    assert "Since Tuesday the outage is fixed." in scrubbed.messages[2]["content"]
    assert "Halcyon Broadband" in scrubbed.messages[0]["content"]


def test_placeholders_are_numbered_consistently_across_turns(scrubbed):
    system, user, assistant, last = (m["content"] for m in scrubbed.messages)
    assert "Escalate to <PERSON_1>." in system  # system role is scrubbed too
    assert "I am <PERSON_1>," in user
    assert "Thanks <PERSON_1>!" in assistant
    assert "ask <PERSON_2> to call me" in last
    assert user.count("<EMAIL_ADDRESS_1>") == 1


def test_structure_and_other_keys_are_kept(scrubbed):
    original = _conversation()
    assert len(scrubbed.messages) == len(original)
    for before, after in zip(original, scrubbed.messages):
        assert set(before) == set(after)
        assert before["role"] == after["role"]
        for key in set(before) - {"content"}:
            assert before[key] == after[key]


def test_content_parts_and_non_text_messages(scrubber):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Mail anna.kowalska@example.com"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
    ]
    result = scrubber.scrub_conversation(messages)
    assert result.messages[0]["content"][0]["text"] == "Mail <EMAIL_ADDRESS_1>"
    assert result.messages[0]["content"][1] == messages[0]["content"][1]
    assert result.messages[1] == messages[1]
    assert messages[0]["content"][0]["text"] == "Mail anna.kowalska@example.com"  # input untouched


def test_scrubbing_is_idempotent(scrubber, scrubbed):
    again = scrubber.scrub_conversation(scrubbed.messages)
    assert again.messages == scrubbed.messages
    assert again.entity_counts == {}


def test_residual_pii_finds_planted_structured_pii(policy, scrubbed):
    raw = _all_text(_conversation())
    found = residual_pii(raw, policy)
    types = {t for t, _ in found}
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
            "EMPLOYEE_ID", "ACCOUNT_NUMBER"} <= types
    assert "PERSON" in types  # "I am Anna Kowalska", "Thanks Anna Kowalska!": names in cue slots
    for item in found:  # (type, score) only, never the raw value
        assert len(item) == 2 and isinstance(item[1], float)
        assert not any(v in str(item) for v in PLANTED)
    assert residual_pii(_all_text(scrubbed.messages), policy) == []


def test_pseudonyms_are_stable_per_key_and_need_a_key(monkeypatch, policy):
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["operators"] = {"default": "pseudonymize", "IP_ADDRESS": "redact"}
    pseudo_policy = policy_from_dict(data, base_dir=DEFAULT_POLICY.parent)
    conv_a = [{"role": "user", "content": "I am Anna Kowalska, mail anna.kowalska@example.com, IP 203.0.113.42"}]
    conv_b = [{"role": "assistant", "content": "Hello Anna Kowalska, we wrote to anna.kowalska@example.com."}]

    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PseudonymKeyError, match=KEY_ENV):
        Scrubber(pseudo_policy)

    monkeypatch.setenv(KEY_ENV, "first-secret-key")
    first = Scrubber(pseudo_policy)
    a, b = (first.scrub_conversation(c).messages[0]["content"] for c in (conv_a, conv_b))
    import re

    person_a = re.search(r"<PERSON_[0-9a-f]{8}>", a).group()
    email_a = re.search(r"<EMAIL_ADDRESS_[0-9a-f]{8}>", a).group()
    assert person_a in b and email_a in b  # same value, same pseudonym, across conversations
    assert "203.0.113.42" not in a and "<IP_ADDRESS" not in a  # per-entity plain operator (redact)
    assert "first-secret-key" not in json.dumps(describe_policy(pseudo_policy))

    monkeypatch.setenv(KEY_ENV, "another-key")
    second = Scrubber(pseudo_policy).scrub_conversation(conv_a).messages[0]["content"]
    assert person_a not in second and re.search(r"<PERSON_[0-9a-f]{8}>", second)


def test_policy_hash_follows_recognizers_file(tmp_path):
    shutil.copy(COMPANY_POLICY, tmp_path / "policy.yaml")
    source = load_policy(COMPANY_POLICY).recognizers_file
    rec = tmp_path / "recognizers.yaml"
    shutil.copy(source, rec)
    data = yaml.safe_load((tmp_path / "policy.yaml").read_text())
    data["recognizers_file"] = "recognizers.yaml"  # relative to the policy file
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data))
    first = load_policy(tmp_path / "policy.yaml")
    assert first.recognizers_file == str(rec.resolve())
    assert first.hash == load_policy(tmp_path / "policy.yaml").hash
    rec.write_text(rec.read_text().replace("score: 0.9", "score: 0.95", 1))
    assert load_policy(tmp_path / "policy.yaml").hash != first.hash
    data["score_threshold"] = 0.6
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data))
    assert load_policy(tmp_path / "policy.yaml").hash != first.hash


def test_policy_describe_and_validation(policy):
    info = describe_policy(policy)
    json.dumps(info)
    assert info["policy_hash"] == policy.hash
    assert "EMPLOYEE_ID" in info["entities"] and "DATE_TIME" not in info["entities"]
    names = {r["name"] for r in info["recognizers"]}
    assert {"EmployeeIdRecognizer", "AccountNumberRecognizer", "StreetAddressRecognizer"} <= names
    assert info["versions"]["presidio_analyzer"] == "2.2.366"
    with pytest.raises(PolicyError):
        policy_from_dict({"entities": ["PERSON"], "typo": 1})
    with pytest.raises(PolicyError):
        policy_from_dict({"entities": ["PERSON"], "operators": {"default": "shred"}})
    with pytest.raises(PolicyError):
        policy_from_dict({"entities": ["PERSON"], "recognizers_file": "missing.yaml"})


def test_workers_give_the_same_result_as_one_process(policy):
    base = _conversation()
    items = []
    for i in range(8):
        conv = [dict(m) for m in base]
        conv[1]["content"] = conv[1]["content"].replace("Kowalska", ["Nowak", "Smith", "Larsen", "Rossi"][i % 4])
        items.append((f"conv-{i}", conv))
    progress = []
    single = list(scrub_conversations(iter(items), policy, workers=1, batch_size=3))
    multi = list(scrub_conversations(iter(items), policy, workers=2, batch_size=2, min_parallel=4,
                                     progress=progress.append))
    assert [k for k, _ in multi] == [k for k, _ in items]
    assert [(k, r.messages, r.entity_counts) for k, r in single] == \
           [(k, r.messages, r.entity_counts) for k, r in multi]
    assert progress and progress[-1] == len(items)


def test_recognizers_yaml_is_presidio_format():
    path = Path(load_policy(COMPANY_POLICY).recognizers_file)
    data = yaml.safe_load(path.read_text())
    entities = {r["supported_entity"] for r in data["recognizers"]}
    assert entities == {"EMPLOYEE_ID", "ACCOUNT_NUMBER"}
    assert os.path.basename(path) == "recognizers.yaml"


def test_dotted_international_phone_is_not_taken_for_a_date(scrubber, policy):
    text = "Flat 13, 106 Station Road, London SE1 7PB\n+44.20.7946.0385"
    out = scrubber.scrub_conversation([{"role": "user", "content": text}]).messages[0]["content"]
    assert "7946" not in out and "<PHONE_NUMBER_1>" in out
    assert [t for t, _ in residual_pii(text, policy)] == ["PHONE_NUMBER"]
    kept = "The outage on 2026-10-03 lasted 3.5 hours."
    assert scrubber.scrub_conversation([{"role": "user", "content": kept}]).messages[0]["content"] == kept
