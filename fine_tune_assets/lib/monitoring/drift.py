"""One drift evaluation: has the data changed since the reference, enough to retrain on?

    evaluate_drift(reference, candidate, policy, history=...) -> DriftReport

``reference`` is the train split the adapter in production was trained on; ``candidate`` the
records of a newer dataset version (or a file put through the pipeline's stages). The window is the
candidate's records that are not in the reference (record ids are content hashes: a set difference).

The decision, in order:

* ``insufficient_data``: fewer new records than ``window.min_records``; accumulate, don't guess;
* ``withheld``: the negative control (the same detectors on two random halves of the reference)
  flagged, so the detectors are miscalibrated for this data and their verdict is not trusted;
* ``no_drift``: no family flagged;
* ``confirmed``: a hard signal (a flagged classifier or novelty rate past its hard threshold, or
  ``hard_families`` families at once), or signals in ``consecutive_windows`` consecutive disjoint
  windows; ``cooldown`` instead when a retraining was requested less than ``cooldown_hours`` ago;
* ``signal``: anything else that flagged; the next disjoint window decides.

The report holds statistics, p-values, thresholds, verdicts, descriptor distributions, terms seen in
at least five window records, and record ids: never record text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from ..common.hashing import sha256_json
from .descriptors import NUMBERS, Profile, add_answer_descriptors, add_oov, formatted_tasks, profile
from .detectors import FamilyResult, classifier_family, descriptor_family, novelty_family, terms_family
from .policy import DRIFT_LOGIC_VERSION, DriftPolicy

INSUFFICIENT, NO_DRIFT, SIGNAL, CONFIRMED, COOLDOWN, WITHHELD = (
    "insufficient_data", "no_drift", "signal", "confirmed", "cooldown", "withheld")
DRIFT_DECISIONS = (SIGNAL, CONFIRMED, COOLDOWN)
# a window whose records were judged (a withheld or insufficient window was not: its records count again)
JUDGED_DECISIONS = (NO_DRIFT, SIGNAL, CONFIRMED, COOLDOWN)


@dataclass(frozen=True)
class PastEvaluation:
    """What the decision needs to know about an earlier evaluation against the same reference."""

    decision: str
    window_ids: frozenset[str]
    created_at: datetime
    retrain_requested: bool = False


@dataclass
class DriftReport:
    decision: str
    reasons: list[str]
    n_reference: int
    n_window: int
    n_candidate_new: int
    window_ids_sha256: str
    window_ids: list[str]
    detectors: dict[str, dict]
    control: dict[str, dict]
    policy_hash: str
    n_already_judged: int = 0  # new records left out because an earlier window judged them
    logic_version: str = DRIFT_LOGIC_VERSION
    created_at: str = ""
    # numeric descriptors per record, (reference, window), for the plot; numbers only, not reported
    distributions: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict, repr=False)

    @property
    def drift(self) -> bool:
        return self.decision in DRIFT_DECISIONS

    def to_dict(self, with_ids: bool = False) -> dict:
        out = {"drift": self.drift, **asdict(self)}
        out.pop("distributions")
        if not with_ids:
            out.pop("window_ids")
        return out


def _hash_order(record_id: str, seed: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{seed}:{record_id}".encode()).hexdigest()


def subsample(records: Sequence[dict], n: int, seed: int, salt: str = "window") -> list[dict]:
    """At most ``n`` records, chosen by a seeded hash of their ids: the same records every time."""
    if len(records) <= n:
        return list(records)
    return sorted(records, key=lambda r: _hash_order(r["record_id"], seed, salt))[:n]


def window_ids_sha256(ids: Iterable[str]) -> str:
    return sha256_json(sorted(ids))


def _profiles(records: Sequence[dict]) -> list[Profile]:
    return [profile(r["record_id"], r["messages"]) for r in records]


def run_families(ref: list[Profile], win: list[Profile], policy: DriftPolicy,
                 response_format=None) -> dict[str, FamilyResult]:
    """Every enabled family on one (reference, window) pair; profiles get their OOV shares here."""
    vocabulary = add_oov(ref, win)
    tasks = formatted_tasks(ref, response_format)
    if tasks:
        add_answer_descriptors([*ref, *win], response_format, tasks)
    out: dict[str, FamilyResult] = {}
    if policy.descriptors.enabled:
        out["descriptors"] = descriptor_family(ref, win, policy)
    if policy.novelty.enabled:
        out["novelty"] = novelty_family(ref, win, vocabulary, policy)
    if policy.terms.enabled:
        out["terms"] = terms_family(ref, win, policy)
    if policy.classifier.enabled:
        out["classifier"] = classifier_family(ref, win, policy)
    return out


def _hard(results: dict[str, FamilyResult], policy: DriftPolicy) -> list[str]:
    c = policy.confirmation
    flagged = [name for name, r in results.items() if r.flagged]
    hard = []
    if "classifier" in flagged and results["classifier"].statistic >= c.hard_auc:
        hard.append(f"classifier AUC {results['classifier'].statistic:.3f} >= {c.hard_auc}")
    if "novelty" in flagged and results["novelty"].statistic >= c.hard_novelty_rate:
        hard.append(f"novel share {results['novelty'].statistic:.3f} >= {c.hard_novelty_rate}")
    if len(flagged) >= c.hard_families:
        hard.append(f"{len(flagged)} families flagged ({', '.join(flagged)})")
    return hard


def decide(results: dict[str, FamilyResult], control: dict[str, FamilyResult], window: frozenset[str],
           history: Sequence[PastEvaluation], policy: DriftPolicy, now: datetime) -> tuple[str, list[str]]:
    """The decision and the reasons for it, from the families' verdicts and earlier evaluations."""
    if any(r.flagged for r in control.values()):
        names = ", ".join(n for n, r in control.items() if r.flagged)
        return WITHHELD, [f"negative control flagged ({names}): two halves of the reference look different "
                          "to the detectors, so their verdict on the window is not trusted"]
    flagged = [name for name, r in results.items() if r.flagged]
    if not flagged:
        return NO_DRIFT, ["no detector family flagged"]
    reasons = [f"{name} flagged: {results[name].threshold} "
               f"(statistic {results[name].statistic}, p {results[name].p_value:.3g})" for name in flagged]
    hard = _hard(results, policy)
    needed = policy.confirmation.consecutive_windows - 1
    earlier = sorted(history, key=lambda e: e.created_at, reverse=True)
    run = []  # the most recent consecutive signals, each window disjoint from the ones after it
    seen = set(window)
    for past in earlier:
        if past.decision not in JUDGED_DECISIONS:
            continue  # an insufficient or withheld window decided nothing: it does not break the run
        if past.decision not in DRIFT_DECISIONS or past.window_ids & seen:
            break
        run.append(past)
        seen |= past.window_ids
    if hard:
        reasons.append("hard signal: " + "; ".join(hard))
    elif len(run) >= needed:
        reasons.append(f"signals in {needed + 1} consecutive disjoint windows")
    else:
        return SIGNAL, [*reasons, f"not confirmed: {len(run) + 1} of {needed + 1} consecutive disjoint windows "
                                  "signalled; the next window decides"]
    cooldown = timedelta(hours=policy.cooldown_hours)
    last = max((e.created_at for e in history if e.retrain_requested), default=None)
    if last is not None and now - last < cooldown:
        return COOLDOWN, [*reasons, f"a retraining was requested at {last.isoformat()}, within the "
                                    f"{policy.cooldown_hours:g} h cooldown"]
    return CONFIRMED, reasons


def evaluate_window(reference: Sequence[dict], window: Sequence[dict], policy: DriftPolicy, *,
                    n_reference: int | None = None, n_new: int | None = None, n_judged: int = 0,
                    history: Sequence[PastEvaluation] = (), response_format=None,
                    now: datetime | None = None) -> DriftReport:
    """Decide on samples already drawn (``sources`` draws them with DuckDB): at most
    ``window.max_records`` of each side; ``n_reference`` and ``n_new`` are the sizes they came from."""
    now = now or datetime.now(UTC)
    ids = frozenset(r["record_id"] for r in window)
    base = {"n_reference": n_reference if n_reference is not None else len(reference), "n_window": len(window),
            "n_candidate_new": n_new if n_new is not None else len(window), "n_already_judged": n_judged,
            "window_ids_sha256": window_ids_sha256(ids), "window_ids": sorted(ids),
            "policy_hash": policy.policy_hash, "created_at": now.isoformat()}
    if len(window) < policy.window.min_records:
        judged = f" ({n_judged} more were judged by earlier windows)" if n_judged else ""
        return DriftReport(decision=INSUFFICIENT, detectors={}, control={}, **base, reasons=[
            f"{len(window)} new records not yet judged{judged}, fewer than the {policy.window.min_records} the "
            "policy needs: accumulate more before deciding"])
    halves = sorted(reference, key=lambda r: _hash_order(r["record_id"], policy.seed, "control"))
    mid = len(halves) // 2
    control = run_families(_profiles(halves[:mid]), _profiles(halves[mid:]), policy, response_format)
    ref_profiles, win_profiles = _profiles(reference), _profiles(window)
    results = run_families(ref_profiles, win_profiles, policy, response_format)
    decision, reasons = decide(results, control, ids, history, policy, now)
    distributions = {name: ([p.numbers[name] for p in ref_profiles], [p.numbers[name] for p in win_profiles])
                     for name in NUMBERS}
    return DriftReport(decision=decision, reasons=reasons,
                       detectors={k: v.to_dict() for k, v in results.items()},
                       control={k: v.to_dict() for k, v in control.items()}, distributions=distributions, **base)


def judged_ids(history: Sequence[PastEvaluation]) -> frozenset[str]:
    """Records an earlier window judged: a later window leaves them out (tumbling windows)."""
    return frozenset().union(*(e.window_ids for e in history if e.decision in JUDGED_DECISIONS))


def evaluate_drift(reference: Sequence[dict], candidate: Sequence[dict], policy: DriftPolicy,
                   history: Sequence[PastEvaluation] = (), response_format=None,
                   now: datetime | None = None) -> DriftReport:
    """In memory: compare the candidate's new records, less those an earlier window judged, with the
    reference (``record_id``, ``messages``)."""
    known, judged = {r["record_id"] for r in reference}, judged_ids(history)
    new = [r for r in candidate if r["record_id"] not in known]
    open_ = [r for r in new if r["record_id"] not in judged]
    cap, seed = policy.window.max_records, policy.seed
    return evaluate_window(subsample(reference, cap, seed, salt="reference"), subsample(open_, cap, seed),
                           policy, n_reference=len(reference), n_new=len(new), n_judged=len(new) - len(open_),
                           history=history, response_format=response_format, now=now)
