"""False alarms and detection rates of the drift evaluation, on data put through the real pipeline.

    .venv/bin/python bench/drift_power.py [--seeds 20] [--windows-per-seed 3] [--shift-windows 20] [--smoke]

Reference: the committed sample (``scripts/make_sample_data.py``'s default seed) through the real
ingest, scrub and validate stages, as the train split of a dataset version would hold it.

* False alarms: the generator with other seeds (the same distribution, other conversations), each
  sample through the same stages, cut into disjoint windows of 200 records. Reported: the share of
  windows that signal (``signal`` or stronger) and that are ``confirmed``, with Clopper-Pearson 95%
  bounds, and how often the negative control withholds the verdict.
* Detection: windows of 200 from those samples with 25% of the records replaced by shifted ones:
  a new product line (product names the reference never saw), another language (German under the
  same support prompt), conversations twice as long (two conversations of one task joined), a
  doubled PII rate (every user turn gains one more placeholder), a shifted label mix in the triage
  answers (priority "urgent" for all; a window of 400, as the issue allows), a new system prompt
  (same content). A shift that applies to some records only (product names, triage answers) takes
  more records until the shifted share is reached. Also a new product line at 10% contamination.
  Reported: the share of windows flagged (signal or stronger) and confirmed at once.

Every evaluation is independent (no history), so "confirmed" here means a hard signal; in the
pipeline a signal is confirmed by the next disjoint window too. Writes ``docs/results/drift_power.json``
and prints a table. ``--smoke`` (CI): 1 seed, 3 same-distribution windows, 1 window per shift.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fine_tune_assets.lib.common.hashing import record_id_for  # noqa: E402 - after sys.path above
from fine_tune_assets.lib.common.paths import DataPaths  # noqa: E402
from fine_tune_assets.lib.monitoring.drift import CONFIRMED, DRIFT_DECISIONS, WITHHELD, evaluate_drift  # noqa: E402
from fine_tune_assets.lib.monitoring.policy import load_drift_policy  # noqa: E402

WINDOW = 200
GENERATOR = ROOT / "scripts" / "make_sample_data.py"
OUT = ROOT / "docs" / "results" / "drift_power.json"


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def pipeline_records(seed: int | None, work: Path, tokenizer, policy) -> list[dict]:
    """The generator's sample for ``seed`` (None: the committed one) through ingest, scrub and
    validate; the validated records as the pipeline would publish them."""
    from fine_tune_assets.lib.common.parquet import iter_rows
    from fine_tune_assets.lib.data.stages import ingest_stage, scrub_stage, validate_stage
    from fine_tune_assets.lib.data.validate import ValidationSettings
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, model_name

    root = work / f"seed-{seed}"
    args = [sys.executable, str(GENERATOR), "--data-dir", str(root)] + ([] if seed is None else ["--seed", str(seed)])
    subprocess.run(args, check=True, capture_output=True)
    paths = DataPaths(root)
    ingested = ingest_stage(paths)
    scrubbed = scrub_stage(paths, ingested, policy)
    validated = validate_stage(paths, scrubbed, tokenizer, model_name(DEFAULT_BASE_MODEL), ValidationSettings())
    return [{"record_id": r["record_id"], "messages": json.loads(r["messages_json"])}
            for r in iter_rows(validated.records_path)]


# ------------------------------------------------------------------ shifts (applied to scrubbed records)
def _rec(messages: list[dict]) -> dict:
    return {"record_id": record_id_for(messages), "messages": messages}


def _system(r: dict) -> str:
    return next((m["content"] for m in r["messages"] if m["role"] == "system"), "")


NEW_PRODUCTS = {"HaloBox": "NovaMesh Hub", "FiberMax 1000": "StarLink Ultra", "FiberMax 500": "StarLink Lite",
                "FiberMax": "StarLink", "Halcyon TV": "Nova Stream", "Halcyon app": "Nova app"}
GERMAN_USER = ["Mein Router verliert jeden Abend die Verbindung.", "Die Rechnung ist doppelt so hoch wie sonst.",
               "Seit gestern blinkt das Licht am Gerät rot.", "Wie ändere ich das WLAN-Passwort?",
               "Der Techniker ist heute nicht gekommen.", "Das Internet ist seit dem Update sehr langsam.",
               "Kann ich meinen Vertrag vorzeitig kündigen?", "Der Fernseher zeigt kein Bild mehr."]
GERMAN_ASSISTANT = ["Bitte starten Sie den Router neu und warten Sie zwei Minuten.",
                    "Ich habe eine Gutschrift für Sie veranlasst.", "Ein Techniker meldet sich morgen bei Ihnen.",
                    "Die Anleitung finden Sie in der App unter Einstellungen.",
                    "Prüfen Sie bitte, ob alle Kabel fest sitzen.", "Ich leite Ihr Anliegen an die Abrechnung weiter."]


def new_product_line(r: dict, rng: random.Random) -> dict | None:
    messages = []
    for m in r["messages"]:
        text = m["content"]
        if m["role"] != "system":
            for old, new in NEW_PRODUCTS.items():
                text = text.replace(old, new)
        messages.append({**m, "content": text})
    return None if messages == r["messages"] else _rec(messages)  # a record naming no product is no shift


def another_language(r: dict, rng: random.Random) -> dict:
    out = [m for m in r["messages"] if m["role"] == "system"]
    for _ in range(rng.randint(1, 3)):
        out += [{"role": "user", "content": " ".join(rng.sample(GERMAN_USER, 2))},
                {"role": "assistant", "content": " ".join(rng.sample(GERMAN_ASSISTANT, 2))}]
    return _rec(out)


def twice_as_long(r: dict, rng: random.Random, pool: list[dict]) -> dict:
    same = [o for o in pool if _system(o) == _system(r) and o is not r] or [r]
    other = rng.choice(same)
    return _rec(r["messages"] + [m for m in other["messages"] if m["role"] != "system"])


def doubled_pii(r: dict, rng: random.Random) -> dict:
    extra = ["My number is <PHONE_NUMBER_9>.", "You can mail me at <EMAIL_ADDRESS_9>.", "I'm <PERSON_9>.",
             "The account is <ACCOUNT_NUMBER_9>."]
    return _rec([{**m, "content": m["content"] + " " + rng.choice(extra)} if m["role"] == "user" else m
                 for m in r["messages"]])


def label_shift(r: dict, rng: random.Random) -> dict | None:
    last = r["messages"][-1]
    try:
        answer = json.loads(last["content"])
    except ValueError:
        return None  # not a triage answer
    if not isinstance(answer, dict) or "priority" not in answer:
        return None
    answer["priority"] = "urgent"
    return _rec([*r["messages"][:-1], {**last, "content": json.dumps(answer)}])


def new_system_prompt(r: dict, rng: random.Random) -> dict:
    prompt = ("You are Halcyon's assistant for business customers. Keep answers short, formal and precise, "
              "and cite the service level agreement where it applies.")
    return _rec([{**m, "content": prompt} if m["role"] == "system" else m for m in r["messages"]])


SHIFTS = {"new_product_line": new_product_line, "another_language": another_language,
          "twice_as_long": twice_as_long, "doubled_pii": doubled_pii, "label_shift": label_shift,
          "new_system_prompt": new_system_prompt}


def shifted_window(pool: list[dict], shift: str, size: int, share: float, rng: random.Random) -> list[dict]:
    """``size`` records of ``pool`` with ``share`` of them replaced by their shifted form."""
    base = rng.sample(pool, size)
    n_shift = round(size * share)
    fn = SHIFTS[shift]
    out, shifted = [], 0
    for r in base:
        if shifted < n_shift:
            new = fn(r, rng, pool) if shift == "twice_as_long" else fn(r, rng)
            if new is not None:
                out.append(new)
                shifted += 1
                continue
        out.append(r)
    if shifted < n_shift:  # some shifts apply to some records only (triage answers, product names): take more
        extra = []
        for r in rng.sample(pool, len(pool)):
            if len(extra) == n_shift - shifted:
                break
            if r not in base and (new := fn(r, rng, pool) if shift == "twice_as_long" else fn(r, rng)) is not None:
                extra.append(new)
        unshifted = [i for i, r in enumerate(out) if r in base]
        for i, new in zip(unshifted, extra):
            out[i] = new
    return out


def _outcome(report) -> dict:
    return {"decision": report.decision, "flagged": [f for f, d in report.detectors.items() if d["flagged"]],
            "control_flagged": [f for f, d in report.control.items() if d["flagged"]],
            "statistics": {f: d["statistic"] for f, d in report.detectors.items()}}


def summarize(outcomes: list[dict]) -> dict:
    n = len(outcomes)
    signal = sum(o["decision"] in DRIFT_DECISIONS for o in outcomes)
    confirmed = sum(o["decision"] == CONFIRMED for o in outcomes)
    withheld = sum(o["decision"] == WITHHELD for o in outcomes)
    flagged_any = sum(bool(o["flagged"]) for o in outcomes)
    return {"windows": n, "signal_or_stronger": signal, "signal_rate": signal / n if n else None,
            "signal_ci95": clopper_pearson(signal, n) if n else None, "confirmed": confirmed,
            "confirmed_rate": confirmed / n if n else None,
            "confirmed_ci95": clopper_pearson(confirmed, n) if n else None,
            "withheld": withheld, "any_family_flagged": flagged_any,
            "families": dict(Counter(f for o in outcomes for f in o["flagged"]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="generator seeds for same-distribution windows")
    ap.add_argument("--windows-per-seed", type=int, default=3)
    ap.add_argument("--shift-windows", type=int, default=20, help="windows per shift")
    ap.add_argument("--policy", default=str(ROOT / "data" / "config" / "drift_policy.yaml"))
    ap.add_argument("--smoke", action="store_true", help="CI form: 1 seed, 3 same-distribution windows, 1 window "
                                                         "per shift (10 windows)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.smoke:
        args.seeds, args.windows_per_seed, args.shift_windows = 1, 3, 1

    from fine_tune_assets.lib.data.scrub import load_policy
    from fine_tune_assets.lib.evaluation.spec import load_eval_spec
    from fine_tune_assets.lib.models.base_model import DEFAULT_BASE_MODEL, load_tokenizer

    policy = load_drift_policy(args.policy)
    scrub_policy = load_policy(ROOT / "data" / "config" / "scrub_policy.yaml")
    response_format = load_eval_spec(ROOT / "data" / "config" / "evaluation.yaml").response_format
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drift-power-") as tmp:
        work = Path(tmp)
        tokenizer = load_tokenizer(DEFAULT_BASE_MODEL, str(ROOT / "data" / "models"))
        reference = pipeline_records(None, work, tokenizer, scrub_policy)
        known = {r["record_id"] for r in reference}
        pools = []
        for s in range(1, args.seeds + 1):
            pool = [r for r in pipeline_records(s, work, tokenizer, scrub_policy) if r["record_id"] not in known]
            pools.append(pool)
            print(f"seed {s}: {len(pool)} new records through ingest, scrub and validate "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    t_data = time.perf_counter() - t0

    costs, false_alarm = [], []
    for s, pool in enumerate(pools, start=1):
        rng = random.Random(s)
        order = rng.sample(pool, len(pool))
        for w in range(args.windows_per_seed):
            window = order[w * WINDOW:(w + 1) * WINDOW]
            if len(window) < WINDOW:
                break
            t = time.perf_counter()
            report = evaluate_drift(reference, window, policy, response_format=response_format)
            costs.append(time.perf_counter() - t)
            false_alarm.append(_outcome(report))
            print(f"same distribution, seed {s} window {w}: {report.decision} {false_alarm[-1]['statistics']}",
                  flush=True)

    detection: dict[str, list[dict]] = {}
    plan = [(shift, 0.25, 400 if shift == "label_shift" else WINDOW) for shift in SHIFTS]
    plan.append(("new_product_line@10%", 0.10, WINDOW))
    for name, share, size in plan:
        shift = name.split("@")[0]
        detection[name] = []
        for i in range(args.shift_windows):
            pool = pools[i % len(pools)]
            rng = random.Random(1000 + i)
            if len(pool) < size:
                pool = [r for p in pools for r in p]
            window = shifted_window(pool, shift, size, share, rng)
            report = evaluate_drift(reference, window, policy, response_format=response_format)
            detection[name].append(_outcome(report))
            print(f"{name} window {i}: {report.decision} {detection[name][-1]['statistics']}", flush=True)

    result = {
        "platform": platform.platform(), "policy": policy.policy_hash, "reference_records": len(reference),
        "window": WINDOW,
        "seconds": {"data": round(t_data, 1),
                    "per_evaluation_mean": round(sum(costs) / len(costs), 2) if costs else None},
        "false_alarms": summarize(false_alarm), "detection": {k: summarize(v) for k, v in detection.items()},
        "windows": {"false_alarms": false_alarm, "detection": detection},
    }
    fa = result["false_alarms"]
    print(f"\nreference {len(reference)} records; windows of {WINDOW}; policy {policy.policy_hash[:12]}")
    print(f"same distribution: {fa['windows']} windows, signal {fa['signal_or_stronger']} "
          f"(CI95 {fa['signal_ci95'][0]:.3f}-{fa['signal_ci95'][1]:.3f}), confirmed {fa['confirmed']} "
          f"(CI95 up to {fa['confirmed_ci95'][1]:.3f}), withheld {fa['withheld']}, families {fa['families']}")
    for name, d in result["detection"].items():
        print(f"{name:<24} flagged {d['signal_or_stronger']}/{d['windows']}  confirmed at once {d['confirmed']}  "
              f"families {d['families']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
