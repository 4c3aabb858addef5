"""Builders and constants shared by several test modules, so that test modules never import each other.

Plain functions and constants only; pytest fixtures live in ``conftest.py`` (which may use these).
"""

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fine_tune_assets.defs.data.dataset import dataset_version
from fine_tune_assets.defs.data.ingest import raw_conversations
from fine_tune_assets.defs.data.quality_gates import validated_conversations_checks
from fine_tune_assets.defs.data.scrub import scrubbed_conversations
from fine_tune_assets.defs.data.validate import validated_conversations
from fine_tune_assets.lib.common.hashing import record_id_for, sha256_text
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.data.publish import PublishRequest, publish_dataset
from fine_tune_assets.lib.data.records import RECORD_SCHEMA
from fine_tune_assets.lib.evaluation.store import record_evaluation
from fine_tune_assets.lib.training.publish import publish_adapter

# ------------------------------------------------------------------------------------------------ places

REPO = Path(__file__).resolve().parents[1]  # the checkout: the one place tests find the repository root
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # vendored public files, see its README.md
SAMPLE_DATA = REPO / "data"


def make_data_dir(root: Path, models_dir: Path, with_sample: bool = True) -> Path:
    """A data directory laid out like ./data, with the sample raw files and mappings (or empty)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("raw", "mappings", "config"):
        (root / sub).mkdir(exist_ok=True)
        if with_sample and (SAMPLE_DATA / sub).is_dir():
            shutil.copytree(SAMPLE_DATA / sub, root / sub, dirs_exist_ok=True)
    (root / "models").symlink_to(models_dir, target_is_directory=True)
    return root


def cli(*args, data_dir):
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300, check=False)  # the tests read the exit code


# ------------------------------------------------------------------------------------------------ data graph

DATA_ASSETS = [raw_conversations, scrubbed_conversations, validated_conversations, dataset_version]
DATA_CHECKS = validated_conversations_checks

# ------------------------------------------------------------------------------------------------ tabular input

TICKETS_MAPPING = """
name: tickets
files: ["tickets_*.csv", "tickets_*.parquet"]
messages:
  - {role: system, text: "You triage tickets."}
  - {role: user, template: "Subject: {subject}\\n\\n{body}"}
  - {role: assistant, json_fields: {category: cat, priority: prio}}
"""
"""A mapping of ticket exports (columns subject, body, cat, prio) to chat, for the ingest tests."""

# ------------------------------------------------------------------------------------------------ registry rows
# A dataset version, an adapter and an evaluation published through the real code, from made-up content:
# the registry, the ledger and the files on disk are real, nothing is trained.


def write_validated(path: Path, n: int = 8, conversations: list[list[dict]] | None = None) -> list[dict]:
    """A validated stage's records: ``n`` made-up question/answer pairs, or ``conversations``."""
    if conversations is None:
        conversations = [[{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
                         for i in range(n)]
    rows = []
    for i, messages in enumerate(conversations):
        rows.append({"record_id": record_id_for(messages), "messages_json": json.dumps(messages),
                     "source_file": "tickets.jsonl", "source_sha256": "ab" * 32, "source_line": i + 1,
                     "source_format": "jsonl", "mapping": None, "n_tokens": 10 + i})
    schema = RECORD_SCHEMA.append(pa.field("n_tokens", pa.int64()))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


def publish_test_dataset(paths: DataPaths, tmp_path: Path, conversations: list[list[dict]] | None = None,
                         eval_fraction: float = 0.5) -> str:
    validated = tmp_path / f"validated-{len(list(tmp_path.glob('validated*.parquet')))}.parquet"
    n = len(write_validated(validated, conversations=conversations))
    request = PublishRequest(
        validated_path=validated, quarantine_paths=[],
        file_reports=[{"path": "tickets.jsonl", "sha256": "ab" * 32, "format": "jsonl", "mapping": None,
                       "inputs": n, "blank_lines": 0}],
        scrub_policy={}, scrub_policy_hash="0" * 64, scrub_entity_counts={}, checks=[], settings={},
        eval_fraction=eval_fraction, code_version="test")
    return publish_dataset(paths, request).version_id


def publish_test_adapter(paths: DataPaths, tmp_path: Path, version: str, weights: bytes = b"weights-1") -> str:
    run = tmp_path / f"run-{sha256_text(repr(weights))[:8]}"
    run.mkdir()
    (run / "adapter_model.safetensors").write_bytes(weights)
    (run / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    (run / "training_metrics.json").write_text(json.dumps({"steps": 2, "device": "cpu"}))
    adapter_id, _, _ = publish_adapter(
        run, paths.adapters, paths.registry, version,
        base_model={"name": "tiny", "source": "test", "identity_hash": "c" * 64},
        training_config={"seed": 0}, training_config_hash="d" * 64, metrics={"steps": 2, "device": "cpu"},
        started_at=datetime.now(UTC), repo=tmp_path)
    return adapter_id


def record_test_evaluation(paths: DataPaths, adapter_id: str, version: str, passed: bool = True) -> str:
    """A passing evaluation (0.25 -> 0.75), or a failing one (0.5 -> 0.25) under another spec, so another id."""
    base, tuned = (0.25, 0.75) if passed else (0.5, 0.25)
    report = {"adapter_id": adapter_id, "dataset_version": version,
              "eval_set": {"sha256": "e" * 64}, "config": {"spec_hash": ("f" if passed else "0") * 64},
              "metrics": {"base": {"format_compliance": base}, "fine_tuned": {"format_compliance": tuned}},
              "regression": {"passed": True},
              "gate": {"primary_metric": "format_compliance", "base": base, "fine_tuned": tuned, "passed": passed,
                       "reasons": [] if passed else [f"format_compliance {tuned} does not beat base {base}"]}}
    return record_evaluation(paths.registry, report, paths.adapters / adapter_id / "eval" / "eval_report.json")


def publish_evaluated_adapters(paths: DataPaths, tmp_path: Path, n: int) -> tuple[str, list[str]]:
    """One dataset version and ``n`` adapters trained on it (oldest first), each with a passing evaluation."""
    version = publish_test_dataset(paths, tmp_path)
    ids = []
    for i in range(n):
        adapter_id = publish_test_adapter(paths, tmp_path, version, weights=f"weights-{i}".encode())
        record_test_evaluation(paths, adapter_id, version)
        ids.append(adapter_id)
    return version, ids


# ------------------------------------------------------------------------------------------------ triage examples
# A small support-ticket triage task (JSON answers) the tiny model learns in seconds.

SYSTEM = "Classify the support ticket. Answer with JSON only: {\"category\": ..., \"priority\": ...}."
TICKETS = {
    "billing": ["I was charged twice on my bill this month", "my invoice shows a fee I never agreed to",
                "why did my monthly payment go up", "refund the extra charge on my card please",
                "the direct debit was taken two times", "bill is higher than my plan price",
                "I want a copy of last month's invoice", "payment failed but money left my account"],
    "outage": ["internet has been down since this morning", "no signal on the router, all lights red",
               "fiber connection keeps dropping every hour", "TV and broadband both dead in my street",
               "the whole area has no internet", "router shows no connection after the storm",
               "connection lost again tonight", "broadband outage for two days now"],
    "account": ["I cannot log in to the app", "please change the email on my account",
                "reset my account password", "how do I add my partner to the account",
                "update my postal address please", "close my account at the end of the month",
                "my username is locked after wrong attempts", "change the account holder name"],
}
PRIORITY = ("low", "high")


def triage_pipeline(tmp_path: Path, tiny_model_dir: Path) -> tuple[Path, dict]:
    """A data directory whose raw/ holds the triage examples, and the resources that train the tiny model
    on it through Pipes: (data_dir, resources)."""
    import dagster as dg

    from fine_tune_assets.defs.resources import PipelineResource

    data_dir = tmp_path / "data"
    (data_dir / "raw").mkdir(parents=True)
    (data_dir / "raw" / "tickets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in triage_examples()))
    resources = {
        "pipeline": PipelineResource(data_dir=str(data_dir), base_model=str(tiny_model_dir), scrub_workers=1,
                                     eval_fraction=0.25, quarantine_rate_ceiling=1.0),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    }
    return data_dir, resources


def triage_examples() -> list[dict]:
    rows = []
    for category, texts in TICKETS.items():
        for i, text in enumerate(texts + [f"Hello, {t}" for t in texts]):
            priority = PRIORITY[i % 2]
            user = f"{text}{'!!' if priority == 'high' else '.'}"
            answer = json.dumps({"category": category, "priority": priority})
            rows.append({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                                      {"role": "assistant", "content": answer}]})
    return rows  # 48 rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ drift windows


def sample_conversations() -> list[list[dict]]:
    """The sample's chat conversations (both JSONL exports), distinct, in a fixed shuffled order."""
    import random

    seen: dict[str, list[dict]] = {}
    for path in sorted((SAMPLE_DATA / "raw").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():  # a planted bad byte
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the sample plants broken lines for the ingest stage
            if isinstance(row, dict) and isinstance(row.get("messages"), list):
                seen.setdefault(record_id_for(row["messages"]), row["messages"])  # planted duplicates too
    out = list(seen.values())
    random.Random(7).shuffle(out)
    return out


_GERMAN_ASKS = [
    "Mein neuer {p} verliert jeden Abend die Verbindung.", "Ich möchte den Tarif für den {p} kündigen.",
    "Seit dem Update zeigt der {p} nur noch ein rotes Licht.", "Wie richte ich die Kindersicherung auf dem {p} ein?",
    "Die Rechnung für den {p} ist doppelt so hoch wie im Vormonat.", "Der Techniker für den {p} ist nicht gekommen.",
    "Kann ich den {p} selbst an das Hausnetz anschließen?", "Der {p} meldet seit gestern einen Fehler im Display.",
    "Wo finde ich die Seriennummer auf dem {p}?", "Die App zeigt für den {p} keine Daten mehr an.",
]
_GERMAN_ANSWERS = [
    "Bitte starten Sie das Gerät neu und prüfen Sie die Anzeige im Menü Status.",
    "Ich habe einen Rückruf unseres Technikteams für morgen eingeplant.",
    "Die Gutschrift erscheint auf Ihrer nächsten Rechnung.", "Eine Anleitung schicke ich Ihnen per Nachricht.",
    "Bitte aktualisieren Sie die App auf die neueste Version.",
    "Der Austausch ist kostenlos, solange Garantie besteht.",
    "Prüfen Sie bitte, ob die Sicherung im Zählerschrank eingeschaltet ist.",
    "Ich leite Ihr Anliegen an die Abrechnung weiter.",
]
_PRODUCTS = ["SolarLink Speicher", "SolarLink Wechselrichter", "SolarLink Wallbox", "SolarLink App"]


def new_product_line(i: int) -> list[dict]:
    """A conversation of a product line the sample does not have, in German, under its own system prompt."""
    import random

    rng = random.Random(i)
    product = rng.choice(_PRODUCTS)
    return [
        {"role": "system", "content": "Sie sind der Kundendienst von SolarLink. Antworten Sie freundlich und kurz."},
        {"role": "user", "content": " ".join(a.format(p=product) for a in rng.sample(_GERMAN_ASKS, 3))},
        {"role": "assistant", "content": " ".join(rng.sample(_GERMAN_ANSWERS, 3))},
    ]
