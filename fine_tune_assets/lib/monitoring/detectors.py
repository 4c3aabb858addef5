"""The three detector families. Each has a significance test and, separately, an effect-size floor,
because with enough records any difference is significant and an alarm should mean a change worth
acting on.

* descriptors: KS (numbers) and chi-squared (categories) per descriptor, overall and per task, Holm
  over the family; a descriptor counts only if its Jensen-Shannon distance reaches the floor;
* novelty: the share of window records more out-of-vocabulary than the reference's own quantile
  (scored leave-one-out), binomial test against the share the quantile implies, and a floor;
* terms: words and word pairs over-represented in the window (a new product name, a new phrase),
  one-sided hypergeometric test per term used by at least a few records of the pooled sample, Holm
  over the terms; a term counts only if the share of window records using it rose by the floor;
* classifier: can a model tell window from reference? TF-IDF word 1-2-grams fitted on the pooled
  sample (never on one side alone), logistic regression, out-of-fold ROC AUC, p-value from label
  permutations.

Every result is a ``FamilyResult``: statistic, p-value, threshold, verdict and numbers only, never
record text.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import regex

from .descriptors import NUMBERS, Profile, Vocabulary, category
from .policy import DriftPolicy

_BINS = 10
_MIN_CATEGORY = 10  # chi-squared's expected counts: pool what is rarer
_TERM_OK = regex.compile(r"^[^\W\d_]{2,}(?: [^\W\d_]{2,})?$")  # letters only: no numbers, ids, e-mails


@dataclass
class FamilyResult:
    family: str
    statistic: float | None
    p_value: float | None
    threshold: str
    flagged: bool
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ descriptors
def _js_numbers(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, 0..1) of two samples over the pooled sample's deciles."""
    from scipy.spatial.distance import jensenshannon

    edges = np.unique(np.quantile(np.concatenate([a, b]), np.linspace(0, 1, _BINS + 1)))
    if len(edges) < 2:
        return 0.0
    pa = np.histogram(np.clip(a, edges[0], edges[-1]), bins=edges)[0] + 1e-12
    pb = np.histogram(np.clip(b, edges[0], edges[-1]), bins=edges)[0] + 1e-12
    return float(jensenshannon(pa, pb, base=2))


def _js_counts(ca: Counter, cb: Counter, keys: list[str]) -> float:
    from scipy.spatial.distance import jensenshannon

    pa = np.array([ca[k] for k in keys], dtype=float) + 1e-12
    pb = np.array([cb[k] for k in keys], dtype=float) + 1e-12
    return float(jensenshannon(pa, pb, base=2))


def _quantiles(x: np.ndarray) -> dict:
    q = np.quantile(x, [0.1, 0.5, 0.9]) if len(x) else [math.nan] * 3
    return {"p10": round(float(q[0]), 4), "median": round(float(q[1]), 4), "p90": round(float(q[2]), 4),
            "mean": round(float(x.mean()), 4) if len(x) else None}


def _shares(c: Counter, keys: list[str]) -> dict:
    total = sum(c.values()) or 1
    return {k: round(c[k] / total, 4) for k in keys}


def _compare(name: str, ref: Sequence[Profile], win: Sequence[Profile]) -> dict | None:
    """One descriptor's test: statistic, raw p-value, JS distance, both distributions."""
    from scipy.stats import chi2_contingency, ks_2samp

    if name in NUMBERS:
        a = np.array([p.numbers[name] for p in ref], dtype=float)
        b = np.array([p.numbers[name] for p in win], dtype=float)
        if len(a) < 2 or len(b) < 2:
            return None
        test = ks_2samp(a, b, method="asymp")  # ties (counts) rule out the exact method
        return {"descriptor": name, "test": "KS", "statistic": float(test.statistic), "p_value": float(test.pvalue),
                "js": _js_numbers(a, b), "reference": _quantiles(a), "window": _quantiles(b)}
    ca = Counter(v for p in ref if (v := category(p, name)) is not None)
    cb = Counter(v for p in win if (v := category(p, name)) is not None)
    ca, cb = _pool_rare(ca, cb)
    keys = sorted(set(ca) | set(cb), key=lambda k: -(ca[k] + cb[k]))
    if len(keys) < 2 or sum(ca.values()) < 2 or sum(cb.values()) < 2:
        return None
    chi2, p_value, _, _ = chi2_contingency(np.array([[ca[k] for k in keys], [cb[k] for k in keys]]))
    return {"descriptor": name, "test": "chi-squared", "statistic": float(chi2), "p_value": float(p_value),
            "js": _js_counts(ca, cb, keys), "reference": _shares(ca, keys[:12]), "window": _shares(cb, keys[:12])}


def _pool_rare(ca: Counter, cb: Counter, min_count: int = _MIN_CATEGORY) -> tuple[Counter, Counter]:
    """Categories seen fewer than ``min_count`` times on both sides together, pooled as "(rare)":
    chi-squared on sparse cells flags clean windows (one record in a rare language is not drift)."""
    rare = {k for k in set(ca) | set(cb) if ca[k] + cb[k] < min_count}

    def pooled(c: Counter) -> Counter:
        out = Counter({k: v for k, v in c.items() if k not in rare})
        if rare:
            out["(rare)"] = sum(c[k] for k in rare)
        return out

    return pooled(ca), pooled(cb)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def descriptor_family(ref: Sequence[Profile], win: Sequence[Profile], policy: DriftPolicy) -> FamilyResult:
    floor = policy.descriptors.js_floor
    names = list(NUMBERS) + sorted({k for p in (*ref, *win) for k in p.categories})
    groups: list[tuple[str, Sequence[Profile], Sequence[Profile]]] = [("all", ref, win)]
    if policy.descriptors.per_task:
        tasks = Counter(p.task for p in ref) & Counter(p.task for p in win)
        for task in sorted(t for t, n in tasks.items() if n >= policy.descriptors.min_task_records):
            if len({p.task for p in ref}) > 1 or len({p.task for p in win}) > 1:  # a single task is "all"
                groups.append((task, [p for p in ref if p.task == task], [p for p in win if p.task == task]))
    tests = []
    for scope, r, w in groups:
        for name in names:
            if (result := _compare(name, r, w)) is not None:
                tests.append({"scope": scope, **result})
    for test, adjusted in zip(tests, holm([t["p_value"] for t in tests])):
        test["p_holm"] = adjusted
        test["flagged"] = adjusted < policy.alpha and test["js"] >= floor
    moved = sorted((t for t in tests if t["flagged"]), key=lambda t: -t["js"])
    best = min(tests, key=lambda t: t["p_holm"], default=None)
    return FamilyResult(
        family="descriptors",
        statistic=round(max((t["js"] for t in moved), default=max((t["js"] for t in tests), default=0.0)), 4),
        p_value=best["p_holm"] if best else None,
        threshold=f"Holm-adjusted p < {policy.alpha} and Jensen-Shannon distance >= {floor}",
        flagged=bool(moved),
        details={"tests": len(tests), "moved": [_rounded(t) for t in moved],
                 "closest": [_rounded(t) for t in sorted(tests, key=lambda t: t["p_holm"])[:5] if not t["flagged"]]},
    )


def _rounded(test: dict) -> dict:
    out = dict(test)
    for key in ("statistic", "p_value", "p_holm", "js"):
        out[key] = float(f"{out[key]:.4g}")
    return out


# ------------------------------------------------------------------ novelty
def novelty_family(ref: Sequence[Profile], win: Sequence[Profile], vocabulary: Vocabulary,
                   policy: DriftPolicy, n_ids: int = 10) -> FamilyResult:
    """Share of window records above the reference's quantile of out-of-vocabulary scores.

    Both sides are scored against the same vocabulary, the reference leave-one-out. With ``n``
    reference scores and the threshold at the ``k``-th largest, an exchangeable new record exceeds
    it with probability at most k/(n+1), but that probability is itself random (it depends on
    where the k-th largest fell), so the count of novel records in a window of ``m`` follows a
    beta-binomial(m, k, n+1-k), not a binomial: with a reference of a few hundred records a plain
    binomial test against 1% flags clean windows."""
    from scipy.stats import betabinom

    q = policy.novelty.quantile
    scores = np.sort(np.array([p.numbers["oov_share"] for p in ref]))
    n, m = len(scores), len(win)
    j = min(max(math.ceil(q * n), 1), n)  # 1-based rank of the threshold among the sorted scores
    threshold, k = float(scores[j - 1]), n - j + 1
    novel = [p for p in win if p.numbers["oov_share"] > threshold]
    rate = len(novel) / m
    p_value = float(betabinom.sf(len(novel) - 1, m, k, n + 1 - k))
    flagged = p_value < policy.alpha and rate >= policy.novelty.min_rate
    most = sorted(novel, key=lambda p: -p.numbers["oov_share"])[:n_ids]
    return FamilyResult(
        family="novelty", statistic=round(rate, 4), p_value=p_value,
        threshold=f"beta-binomial p < {policy.alpha} (expected share {k / (n + 1):.3f}) "
                  f"and novel share >= {policy.novelty.min_rate}",
        flagged=flagged,
        details={"score": "out-of-vocabulary share of the record's distinct words (reference: leave-one-out)",
                 "reference_quantile": q, "score_threshold": round(threshold, 4), "novel": len(novel),
                 "expected_share": round(k / (n + 1), 4), "most_novel_record_ids": [p.record_id for p in most]},
    )


# ------------------------------------------------------------------ terms
def terms_family(ref: Sequence[Profile], win: Sequence[Profile], policy: DriftPolicy,
                 n_terms: int = 15) -> FamilyResult:
    """Terms (letters-only word 1-2-grams) used by more window records than chance allows.

    Given how many records of the pooled sample use a term, which of them are window records is,
    under no drift, a draw without replacement: the hypergeometric distribution gives the exact
    one-sided p-value. Every term used by at least ``min_records`` pooled records is tested (the
    selection looks at the pooled count only, so it does not bias the test) and Holm corrects over
    them. The classifier sees the same terms but spends its power on many weak ones; this test is
    what catches a few new words confined to a tenth of the window."""
    from scipy.stats import hypergeom
    from sklearn.feature_extraction.text import CountVectorizer

    cfg = policy.terms
    n, m = len(ref), len(win)
    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True, min_df=cfg.min_records,
                                 token_pattern=r"(?u)\b[^\W\d_]{2,}\b", dtype=np.int32)
    try:
        x = vectorizer.fit_transform([p.text for p in ref] + [p.text for p in win])
    except ValueError:  # no term used by min_records records
        x = None
    if x is None or x.shape[1] == 0:
        return FamilyResult(family="terms", statistic=0.0, p_value=None, threshold="no term to test",
                            flagged=False, details={"terms_tested": 0})
    in_ref = np.asarray(x[:n].sum(axis=0)).ravel()
    in_win = np.asarray(x[n:].sum(axis=0)).ravel()
    p_values = hypergeom.sf(in_win - 1, n + m, in_ref + in_win, m)
    p_holm = np.array(holm(p_values.tolist()))
    rise = in_win / m - in_ref / n
    terms = vectorizer.get_feature_names_out()
    hit = (p_holm < policy.alpha) & (rise >= cfg.min_share_increase) & (in_win >= cfg.min_records)
    hit &= np.array([bool(_TERM_OK.match(t)) for t in terms])
    flagged_idx = np.flatnonzero(hit)
    using = np.asarray(x[n:][:, flagged_idx].sum(axis=1)).ravel() > 0  # window records using a flagged term
    affected = float(using.mean()) if len(flagged_idx) else 0.0
    order = flagged_idx[np.argsort(-rise[flagged_idx])]
    top = [{"term": str(terms[i]), "window_share": round(float(in_win[i] / m), 4),
            "reference_share": round(float(in_ref[i] / n), 4), "window_records": int(in_win[i]),
            "p_holm": float(f"{p_holm[i]:.3g}")} for i in order[:n_terms]]
    return FamilyResult(
        family="terms", statistic=round(affected, 4), p_value=float(p_holm.min()),
        threshold=f"Holm-adjusted hypergeometric p < {policy.alpha} and a rise of >= {cfg.min_share_increase} "
                  f"in the share of window records using the term",
        flagged=bool(len(flagged_idx)),
        details={"statistic": "share of window records using at least one over-represented term",
                 "terms_tested": int(x.shape[1]), "terms_flagged": len(flagged_idx), "top_terms": top},
    )


# ------------------------------------------------------------------ domain classifier
def _oof_auc(x, y: np.ndarray, folds: int, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = LogisticRegression(solver="liblinear", C=1.0, random_state=0).fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    return float(roc_auc_score(y, scores))


def permutation_p_value(observed: float, null_draw: Callable[[int], float], n: int,
                        stop_after: int = 10, workers: int | None = None) -> tuple[float, int]:
    """Monte Carlo p-value, stopping early once ``stop_after`` draws reach ``observed`` (Besag and
    Clifford's sequential test: a clear non-signal costs a few fits, not ``n``).

    ``null_draw(i)`` must depend on ``i`` only: draws run ``workers`` at a time in threads (the
    solver releases the GIL) and are counted in order, so the answer is the sequential one."""
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or min(4, os.cpu_count() or 1)
    exceed = 0
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, n, workers):
            for i, value in enumerate(pool.map(null_draw, range(start, min(start + workers, n))), start=start):
                exceed += value >= observed
                if exceed >= stop_after:
                    return exceed / (i + 1), i + 1
    return (exceed + 1) / (n + 1), n


def _capped(profiles: Sequence[Profile], n: int, seed: int) -> Sequence[Profile]:
    """At most ``n`` profiles, by a seeded hash of their record ids. AUC on 1,000 + 1,000 records has
    a standard error near 0.01; each permutation refits five models, so this bounds the cost."""
    if len(profiles) <= n:
        return profiles
    return sorted(profiles, key=lambda p: hashlib.sha256(f"classifier:{seed}:{p.record_id}".encode()).hexdigest())[:n]


def classifier_family(ref: Sequence[Profile], win: Sequence[Profile], policy: DriftPolicy,
                      n_terms: int = 15, min_term_records: int = 5) -> FamilyResult:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    cfg = policy.classifier
    ref, win = (_capped(side, cfg.max_records_per_side, policy.seed) for side in (ref, win))
    texts = [p.text for p in ref] + [p.text for p in win]
    y = np.array([0] * len(ref) + [1] * len(win))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=cfg.max_features, sublinear_tf=True,
                                 token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    x = vectorizer.fit_transform(texts)  # pooled: the features do not know which side a record is on
    auc = _oof_auc(x, y, cfg.folds, policy.seed)
    def null_auc(i: int) -> float:  # permutation i: its own seeded generator, so draws can run in any order
        return _oof_auc(x, np.random.default_rng([policy.seed, i]).permutation(y), cfg.folds, policy.seed + 1 + i)

    p_value, draws = permutation_p_value(auc, null_auc, cfg.permutations)
    flagged = p_value < policy.alpha and auc >= cfg.min_auc
    model = LogisticRegression(solver="liblinear", C=1.0, random_state=0).fit(x, y)
    terms = vectorizer.get_feature_names_out()
    in_window = np.asarray((x[len(ref):] > 0).sum(axis=0)).ravel()
    order = np.argsort(-model.coef_[0])
    top = [{"term": str(terms[i]), "weight": round(float(model.coef_[0][i]), 3), "window_records": int(in_window[i])}
           for i in order if in_window[i] >= min_term_records and _TERM_OK.match(terms[i])][:n_terms]
    return FamilyResult(
        family="classifier", statistic=round(auc, 4), p_value=p_value,
        threshold=f"permutation p < {policy.alpha} and out-of-fold ROC AUC >= {cfg.min_auc}",
        flagged=flagged,
        details={"model": f"TF-IDF word 1-2-grams (pooled fit, {x.shape[1]} terms) + logistic regression, "
                          f"{cfg.folds}-fold out-of-fold AUC",
                 "permutations": draws, "records": {"reference": len(ref), "window": len(win)},
                 "top_terms": top},
    )
