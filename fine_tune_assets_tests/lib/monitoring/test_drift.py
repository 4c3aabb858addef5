"""The drift evaluation on real chats (the sample data's two chat exports, ~550 conversations).

Same-distribution windows must come out ``no_drift`` with a quiet negative control; a window where a
quarter of the records is a new product line in another language under a new system prompt must
be confirmed at once; the decision rules (confirmation over disjoint windows, cooldown, withheld)
are checked on the verdicts they read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fine_tune_assets.lib.common.hashing import record_id_for
from fine_tune_assets.lib.monitoring.descriptors import Vocabulary, profile
from fine_tune_assets.lib.monitoring.detectors import FamilyResult, holm, permutation_p_value
from fine_tune_assets.lib.monitoring.drift import (
    CONFIRMED,
    COOLDOWN,
    INSUFFICIENT,
    NO_DRIFT,
    SIGNAL,
    WITHHELD,
    PastEvaluation,
    decide,
    evaluate_drift,
)
from fine_tune_assets.lib.monitoring.policy import DriftPolicy, DriftPolicyError, load_drift_policy
from fine_tune_assets_tests.factories import REPO, new_product_line, sample_conversations

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _record(messages: list[dict]) -> dict:
    return {"record_id": record_id_for(messages), "messages": messages}


@pytest.fixture(scope="module")
def chats() -> list[dict]:
    return [_record(m) for m in sample_conversations()]


def _new_product_line(i: int) -> dict:
    return _record(new_product_line(i))


def test_policy_file_is_valid_and_hashed():
    policy = load_drift_policy(REPO / "data" / "config" / "drift_policy.yaml")
    assert policy.window.min_records == 200 and policy.families == ["descriptors", "novelty", "terms", "classifier"]
    assert len(policy.policy_hash) == 64 and policy.policy_hash == load_drift_policy(policy.source).policy_hash
    assert DriftPolicy(alpha=0.05).policy_hash != policy.policy_hash


def test_policy_errors_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "drift_policy.yaml"
    bad.write_text("window:\n  min_records: 500\n  max_records: 100\n")
    with pytest.raises(DriftPolicyError, match=r"drift_policy.yaml: window: .*max_records must be at least"):
        load_drift_policy(bad)
    bad.write_text("alpah: 0.05\n")
    with pytest.raises(DriftPolicyError, match=r"drift_policy.yaml: alpah: Extra inputs are not permitted"):
        load_drift_policy(bad)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_permutation_draws_in_threads_give_the_sequential_answer():
    draws = [0.4, 0.9, 0.2, 0.95, 0.1, 0.97, 0.3, 0.99] * 5  # the null AUCs, by draw index
    for workers in (1, 2, 3):
        assert permutation_p_value(0.9, draws.__getitem__, 40, stop_after=3, workers=workers) == (3 / 6, 6)
        assert permutation_p_value(0.999, draws.__getitem__, 40, workers=workers) == (1 / 41, 40)


def test_reference_records_are_scored_leave_one_out():
    a = profile("a", [{"role": "user", "content": "router blinking red"}])
    b = profile("b", [{"role": "user", "content": "router blinking green"}])
    vocabulary = Vocabulary([a, b])
    # "red" is only in a: out of vocabulary for a itself, as a new record using it would be
    assert vocabulary.oov_share(a.words, own=True) == pytest.approx(1 / 3)
    assert vocabulary.oov_share(frozenset({"red"})) == 0.0


def test_same_distribution_is_no_drift_and_the_report_holds_no_text(chats):
    reference, candidate = chats[:300], chats[300:]
    report = evaluate_drift(reference, candidate, DriftPolicy(), now=NOW)
    assert report.decision == NO_DRIFT, report.reasons
    assert report.n_window == len(candidate) and not any(r["flagged"] for r in report.control.values())
    assert set(report.detectors) == {"descriptors", "novelty", "terms", "classifier"}
    assert report.detectors["classifier"]["statistic"] < 0.6
    assert report.detectors["terms"]["details"]["terms_tested"] > 100
    dumped = json.dumps(report.to_dict())
    for record in candidate[:50]:
        for m in record["messages"]:
            if m["role"] == "user" and len(m["content"]) > 30:
                assert m["content"] not in dumped


def test_a_new_product_line_in_another_language_is_confirmed_at_once(chats):
    reference, same = chats[:300], chats[300:]
    shifted = same[:180] + [_new_product_line(i) for i in range(60)]  # 25% of the window
    report = evaluate_drift(reference, shifted, DriftPolicy(), now=NOW)
    assert report.decision == CONFIRMED, report.reasons
    detectors = report.detectors
    assert all(detectors[f]["flagged"] for f in ("descriptors", "novelty", "classifier"))
    moved = {t["descriptor"] for t in detectors["descriptors"]["details"]["moved"]}
    assert "language" in moved
    terms = [t["term"] for t in detectors["classifier"]["details"]["top_terms"]]
    assert "solarlink" in terms and all(not any(ch.isdigit() for ch in t) for t in terms)
    novel = set(detectors["novelty"]["details"]["most_novel_record_ids"])
    assert novel <= {r["record_id"] for r in shifted[180:]}


def test_a_new_name_in_a_tenth_of_the_window_is_caught_by_the_terms(chats):
    """Ten percent of the window name a product the reference never saw, in otherwise familiar
    conversations: too little to move a descriptor, and the terms test still sees it."""
    reference, same = chats[:300], chats[300:500]

    def renamed(record: dict) -> dict:
        return _record([{**m, "content": m["content"] + " The QuantaDock 7 hub keeps rebooting."}
                        if m["role"] == "user" else m for m in record["messages"]])

    window = same[:180] + [renamed(r) for r in same[180:]]
    terms = evaluate_drift(reference, window, DriftPolicy(), now=NOW).detectors["terms"]
    assert terms["flagged"] and 0.1 <= terms["statistic"] < 0.15  # "hub" is in a few other records
    top = {t["term"]: t for t in terms["details"]["top_terms"]}
    assert "quantadock" in top and top["quantadock"]["window_records"] == 20
    assert top["quantadock"]["reference_share"] == 0.0
    assert not any(ch.isdigit() for t in top for ch in t)
    clean = evaluate_drift(reference, same, DriftPolicy(), now=NOW).detectors["terms"]
    assert not clean["flagged"] and clean["details"]["top_terms"] == []


def test_a_small_window_is_insufficient_data(chats):
    report = evaluate_drift(chats[:300], chats[:300] + chats[300:350], DriftPolicy(), now=NOW)
    assert report.decision == INSUFFICIENT and report.n_window == 50 and report.detectors == {}


def test_records_an_earlier_window_judged_are_left_out(chats):
    """Tumbling windows: a record is judged once, so consecutive windows are disjoint; a withheld or
    insufficient window judged nothing and its records count again."""
    reference, new = chats[:300], chats[300:]
    judged = PastEvaluation(NO_DRIFT, frozenset(r["record_id"] for r in new[:100]), NOW - timedelta(hours=1))
    withheld = PastEvaluation(WITHHELD, frozenset(r["record_id"] for r in new[100:150]), NOW - timedelta(hours=1))
    report = evaluate_drift(reference, reference + new, DriftPolicy(), history=[judged, withheld], now=NOW)
    assert report.n_candidate_new == len(new) and report.n_already_judged == 100
    assert report.n_window == len(new) - 100 and not set(report.window_ids) & judged.window_ids
    small = evaluate_drift(reference, reference + new[:200], DriftPolicy(), history=[judged], now=NOW)
    assert small.decision == INSUFFICIENT and "100 new records not yet judged (100 more" in small.reasons[0]


def _verdicts(**flags: tuple[bool, float]) -> dict[str, FamilyResult]:
    return {name: FamilyResult(name, statistic, 0.001 if flagged else 0.5, "test threshold", flagged)
            for name, (flagged, statistic) in flags.items()}


QUIET = _verdicts(descriptors=(False, 0.02), novelty=(False, 0.01), classifier=(False, 0.51))
WEAK = _verdicts(descriptors=(True, 0.15), novelty=(False, 0.01), classifier=(True, 0.6))


def test_a_weak_signal_needs_a_second_disjoint_window():
    policy = DriftPolicy()
    assert decide(WEAK, QUIET, frozenset({"w1"}), [], policy, NOW)[0] == SIGNAL
    before = PastEvaluation(SIGNAL, frozenset({"w0"}), NOW - timedelta(hours=2))
    assert decide(WEAK, QUIET, frozenset({"w1"}), [before], policy, NOW)[0] == CONFIRMED
    overlapping = PastEvaluation(SIGNAL, frozenset({"w1"}), NOW - timedelta(hours=2))
    assert decide(WEAK, QUIET, frozenset({"w1", "w2"}), [overlapping], policy, NOW)[0] == SIGNAL
    waiting = [PastEvaluation(INSUFFICIENT, frozenset({"w4"}), NOW - timedelta(hours=1)), before]
    assert decide(WEAK, QUIET, frozenset({"w1"}), waiting, policy, NOW)[0] == CONFIRMED  # decided nothing
    quiet_between = [PastEvaluation(NO_DRIFT, frozenset({"w5"}), NOW - timedelta(hours=1)), before]
    assert decide(WEAK, QUIET, frozenset({"w1"}), quiet_between, policy, NOW)[0] == SIGNAL


def test_a_hard_signal_confirms_alone_unless_in_cooldown():
    policy = DriftPolicy()
    hard = _verdicts(descriptors=(False, 0.05), novelty=(False, 0.01), classifier=(True, 0.9))
    decision, reasons = decide(hard, QUIET, frozenset({"w1"}), [], policy, NOW)
    assert decision == CONFIRMED and any("classifier AUC 0.900" in r for r in reasons)
    retrained = PastEvaluation(CONFIRMED, frozenset({"w0"}), NOW - timedelta(hours=3), retrain_requested=True)
    assert decide(hard, QUIET, frozenset({"w1"}), [retrained], policy, NOW)[0] == COOLDOWN
    long_ago = PastEvaluation(CONFIRMED, frozenset({"w0"}), NOW - timedelta(days=3), retrain_requested=True)
    assert decide(hard, QUIET, frozenset({"w1"}), [long_ago], policy, NOW)[0] == CONFIRMED
    assert decide(QUIET, QUIET, frozenset({"w1"}), [], policy, NOW)[0] == NO_DRIFT


def test_a_flagging_negative_control_withholds_the_verdict():
    decision, reasons = decide(WEAK, WEAK, frozenset({"w1"}), [], DriftPolicy(), NOW)
    assert decision == WITHHELD and "negative control flagged" in reasons[0]


def test_the_same_inputs_give_the_same_report(chats):
    first = evaluate_drift(chats[:300], chats[300:], DriftPolicy(), now=NOW).to_dict()
    again = evaluate_drift(chats[:300], chats[300:], DriftPolicy(), now=NOW).to_dict()
    assert first == again  # seeded subsamples, halves, folds, permutations and solver: an auditor can rerun it
