"""Access control: roles from config/access.yaml on promote, rollback and erase, the four-eyes rule and its
override, denied ledger events, the dossier's approvals; on the real registry, through the real CLI."""

import json
import re
import shutil

import pytest

from fine_tune_assets.defs.evaluation.champion_challenger import auto_promote
from fine_tune_assets.defs.keys import automatic_launcher
from fine_tune_assets.lib.audit.access import AccessDenied, AccessError, load_access
from fine_tune_assets.lib.audit.dossier import build_dossier, render_markdown
from fine_tune_assets.lib.audit.erasure import erase
from fine_tune_assets.lib.audit.promotion import promote
from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.hashing import sha256_file
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import USER_ENV, read_events
from fine_tune_assets.lib.registry.stages import current_stages
from fine_tune_assets_tests.factories import SAMPLE_DATA, cli, publish_evaluated_adapters

SAMPLE_ACCESS = SAMPLE_DATA / "config" / "access.yaml"  # alice trainer, bob and carol approvers, dana data steward


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Two evaluated adapters a, b whose training alice launched, and the sample's roles file."""
    paths = DataPaths.from_env(tmp_path / "data")
    monkeypatch.setenv(USER_ENV, "alice")
    _, (a, b) = publish_evaluated_adapters(paths, tmp_path, 2)
    paths.config.mkdir(parents=True)
    shutil.copy(SAMPLE_ACCESS, paths.config / "access.yaml")
    return paths, a, b


def _as(monkeypatch, user: str, paths: DataPaths, *args: str):
    monkeypatch.setenv(USER_ENV, user)
    return cli(*args, data_dir=paths.root)


def _denied(done, text: str) -> None:
    """Exit 3, one line on stderr, nothing on stdout."""
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.startswith("error: access denied: ") and text in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""


def _events(paths: DataPaths, kind: str) -> list[dict]:
    with connect(paths.registry, read_only=True) as con:
        return [e for e in read_events(con) if e["kind"] == kind]


def _stages(paths: DataPaths) -> dict:
    with connect(paths.registry, read_only=True) as con:
        return current_stages(con)


def _write_access(paths: DataPaths, text: str) -> None:
    (paths.config / "access.yaml").write_text(text)


def test_training_records_who_launched_it(world):
    paths, a, _ = world
    lineage = json.loads((paths.adapters / a / "lineage.json").read_text())
    assert lineage["launched_by"] == "alice"
    [event] = [e for e in _events(paths, "adapter_trained") if e["subject"] == a]
    assert event["payload"]["launched_by"] == "alice"  # and lineage.json, whose sha256 the event holds
    # a run requested by a sensor records the sensor (Dagster's tag, else the retraining trigger), a person's run None
    assert automatic_launcher({"dagster/sensor_name": "drift_on_new_data", "fine_tune_assets/trigger": "drift"}) \
        == "sensor:drift_on_new_data"
    assert automatic_launcher({"fine_tune_assets/trigger": "erasure"}) == "sensor:erasure"
    assert automatic_launcher({"dagster/schedule_name": "nightly"}) == "schedule:nightly"
    assert automatic_launcher({"dagster/run_key": "x"}) is None


def test_promote_to_production_needs_an_approver_and_every_refusal_is_recorded(world, monkeypatch):
    paths, a, b = world
    _denied(_as(monkeypatch, "alice", paths, "adapters", "promote", a, "--stage", "production", "--reason", "ship"),
            f"alice may not promote {a[:12]} to production: it needs the approver role and alice holds trainer")
    _denied(_as(monkeypatch, "mallory", paths, "adapters", "promote", a, "--stage", "production", "--reason", "x"),
            f"it needs the approver role and {paths.config / 'access.yaml'} gives mallory no role")
    assert _stages(paths) == {} and _events(paths, "promotion") == []
    first, second = _events(paths, "denied")
    assert first["subject"] == a
    access = {"file": str(paths.config / "access.yaml"), "sha256": sha256_file(paths.config / "access.yaml"),
              "protected_stages": ["production"]}
    assert first["payload"] == {
        "user": "alice", "action": f"promote {a[:12]} to production",
        "why": "it needs the approver role and alice holds trainer", "roles": ["trainer"], "access": access,
        "operation": "promote", "adapter_id": a, "stage": "production", "reason": "ship", "trained_by": "alice",
        "second_approver": None, "forced": False, "required": "approver"}
    assert (second["payload"]["user"], second["payload"]["roles"]) == ("mallory", [])

    done = _as(monkeypatch, "bob", paths, "adapters", "promote", a, "--stage", "production", "--reason", "ship")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # access control is configured: no warning
    assert _stages(paths) == {"production": a}
    approval = _events(paths, "promotion")[-1]["payload"]["approval"]
    assert approval == {"access": access, "protected": True, "roles": ["approver"], "trained_by": "alice",
                        "four_eyes": "held", "four_eyes_problem": None, "second_approver": None}
    # staging is not protected: the trainer, or anyone, may promote there
    done = _as(monkeypatch, "alice", paths, "adapters", "promote", b, "--stage", "staging", "--reason", "try")
    assert done.returncode == 0, done.stderr
    assert _events(paths, "promotion")[-1]["payload"]["approval"]["four_eyes"] == "not checked"

    # denied events have no registry row, and the chain verifies with them in it
    done = cli("verify", data_dir=paths.root)
    assert done.returncode == 0 and done.stdout.startswith("intact: 9 ledger events"), done.stdout + done.stderr


def test_rollback_of_a_protected_stage_needs_an_approver(world, monkeypatch):
    paths, a, b = world
    for adapter in (a, b):
        promote(paths.registry, adapter, "production", "go", user="bob", access=load_access(paths.access))
        promote(paths.registry, adapter, "staging", "go", user="alice", access=load_access(paths.access))
    _denied(_as(monkeypatch, "dana", paths, "adapters", "rollback", "--stage", "production", "--reason", "bad"),
            "dana may not roll back production: it needs the approver role and dana holds data_steward")
    [event] = _events(paths, "denied")
    assert event["subject"] == b and event["payload"]["operation"] == "rollback"  # about the adapter it would undo
    assert _stages(paths) == {"production": b, "staging": b}
    done = _as(monkeypatch, "carol", paths, "adapters", "rollback", "--stage", "production", "--reason", "bad")
    assert done.returncode == 0, done.stderr
    assert _events(paths, "rollback")[-1]["payload"]["approval"]["roles"] == ["approver"]
    done = _as(monkeypatch, "alice", paths, "adapters", "rollback", "--stage", "staging", "--reason", "bad")
    assert done.returncode == 0, done.stderr  # not protected
    assert _stages(paths) == {"production": a, "staging": a}


def test_erase_needs_a_data_steward(world, monkeypatch):
    paths, _, _ = world
    with connect(paths.registry, read_only=True) as con:
        record = con.execute("SELECT record_id FROM dataset_records LIMIT 1").fetchone()[0]
    _denied(_as(monkeypatch, "bob", paths, "erase", "--record", record, "--reason", "DSR-1"),
            "bob may not erase records: it needs the data_steward role and bob holds approver")
    [event] = _events(paths, "denied")
    assert event["subject"] == "erase"
    assert {k: event["payload"][k] for k in ("user", "operation", "record_refs", "sources", "reason", "required")} \
        == {"user": "bob", "operation": "erase", "record_refs": [record], "sources": [], "reason": "DSR-1",
            "required": "data_steward"}
    assert _events(paths, "erasure") == []
    done = _as(monkeypatch, "dana", paths, "erase", "--record", record, "--reason", "DSR-1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"] == "dana" and len(_events(paths, "erasure")) == 1
    assert verify_all(paths)["ok"]


def test_an_unnamed_user_holds_no_role_unless_a_wildcard_is_written(world):
    paths, a, b = world
    _write_access(paths, "users:\n  bob: [approver]\n")
    for user in ("mallory", "Bob", "bob "):  # names are exact
        with pytest.raises(AccessDenied, match=r"gives .* no role"):
            promote(paths.registry, a, "production", "x", user=user, access=load_access(paths.access))
    with pytest.raises(AccessDenied, match="needs the data_steward role"):
        erase(paths, "x", record_refs=["0" * 64], user="bob", access=load_access(paths.access))

    _write_access(paths, 'users:\n  "*": [approver]\n  bob: [approver]\n')
    policy = load_access(paths.access)
    row = promote(paths.registry, a, "production", "x", user="mallory", access=policy)
    assert row["approval"]["roles"] == ["approver"] and row["approval"]["four_eyes"] == "held"
    # the wildcard never makes a second approver: an override must name someone the file names
    with pytest.raises(AccessDenied, match="does not name nobody with the approver role"):
        promote(paths.registry, b, "production", "x", user="alice", access=policy, allow_failed_gate=True,
                second_approver="nobody")


def test_four_eyes_rule_and_its_recorded_override(world, monkeypatch):
    paths, a, b = world
    _write_access(paths, "users:\n  alice: [trainer, approver]\n  bob: [approver]\n  dana: [data_steward]\n")

    def promote_a(*extra):
        return _as(monkeypatch, "alice", paths, "adapters", "promote", a, "--stage", "production", "--reason",
                   "hotfix", *extra)

    _denied(promote_a(), "four-eyes rule: alice launched its training; another approver must promote it, or "
                         "override with --force --second-approver NAME (recorded)")
    _denied(promote_a("--force"), "four-eyes rule: alice launched its training")
    _denied(promote_a("--force", "--second-approver", "alice"),
            "second approver refused: the second approver must be someone other than the promoter")
    _denied(promote_a("--force", "--second-approver", "dana"),
            "second approver refused: " + f"{paths.config / 'access.yaml'} does not name dana with the approver role")
    assert _stages(paths) == {} and len(_events(paths, "denied")) == 4

    done = promote_a("--force", "--second-approver", "bob")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[forced past: four-eyes rule (alice launched its training); second "
                                        "approver bob]")
    payload = _events(paths, "promotion")[-1]["payload"]
    assert payload["forced"] is True and payload["user"] == "alice"
    assert {k: payload["approval"][k] for k in ("trained_by", "four_eyes", "four_eyes_problem", "second_approver")} \
        == {"trained_by": "alice", "four_eyes": "overridden", "four_eyes_problem": "alice launched its training",
            "second_approver": "bob"}

    # an adapter trained before launched_by was recorded has no known trainer: the same override is needed
    with connect(paths.registry) as con:
        lineage = json.loads(con.execute("SELECT lineage FROM adapters WHERE adapter_id = ?", [b]).fetchone()[0])
        lineage.pop("launched_by")
        con.execute("UPDATE adapters SET lineage = ? WHERE adapter_id = ?", [json.dumps(lineage), b])
    _denied(_as(monkeypatch, "bob", paths, "adapters", "promote", b, "--stage", "production", "--reason", "old"),
            "four-eyes rule: who launched its training is not recorded")
    done = _as(monkeypatch, "bob", paths, "adapters", "promote", b, "--stage", "production", "--reason", "old",
               "--force", "--second-approver", "alice")
    assert done.returncode == 0, done.stderr
    assert _events(paths, "promotion")[-1]["payload"]["approval"]["four_eyes"] == "overridden"
    # a second approver is for a protected stage: elsewhere it is a usage error, recorded nowhere
    done = _as(monkeypatch, "bob", paths, "adapters", "promote", a, "--stage", "staging", "--reason", "x",
               "--second-approver", "alice")
    assert done.returncode == 2 and "--second-approver is for a protected stage" in done.stderr
    assert verify_all(paths)["ok"]


def test_the_dossier_lists_approvals_separation_of_duties_and_denied_attempts(world, monkeypatch):
    paths, a, b = world
    _write_access(paths, "users:\n  alice: [trainer, approver]\n  bob: [approver]\n")
    policy = load_access(paths.access)
    with pytest.raises(AccessDenied):
        promote(paths.registry, a, "production", "mine", user="alice", access=policy)
    promote(paths.registry, a, "production", "override", user="alice", access=policy, allow_failed_gate=True,
            second_approver="bob")
    promote(paths.registry, b, "production", "reviewed", user="bob", access=policy)

    dossier = build_dossier(paths, a)
    section = next(s for s in dossier["sections"] if s["id"] == "approvals")
    rows = {r["label"]: r for r in section["blocks"][0]["rows"]}
    assert rows["access control (when this dossier was generated)"]["value"].startswith(
        f"configured: {paths.config / 'access.yaml'} (sha256 {policy.sha256[:12]}), protected stages: production")
    assert rows["training launched by"]["value"] == "alice"
    assert rows["four-eyes rule"]["value"] == "OVERRIDDEN on 1 promotion(s), second approver: bob (production)"
    [approval] = section["blocks"][1]["rows"]
    assert approval[2:8] == ["promoted to production", "alice", "approver, trainer", "yes",
                             "OVERRIDDEN (alice launched its training): second approver bob", "yes"]
    [denied] = section["blocks"][2]["rows"]
    assert denied[2:] == ["alice", f"promote {a[:12]} to production",
                          "four-eyes rule: alice launched its training; another approver must promote it, or "
                          "override with --force --second-approver NAME (recorded)", "mine"]
    assert "\n## 8. Approvals\n" in render_markdown(dossier)

    other = build_dossier(paths, b)
    section = next(s for s in other["sections"] if s["id"] == "approvals")
    rows = {r["label"]: r for r in section["blocks"][0]["rows"]}
    assert rows["four-eyes rule"]["value"] == "held on every promotion to a protected stage (1)"
    assert section["blocks"][1]["rows"][0][6] == "held: trained by alice, promoted by bob"
    assert section["blocks"][2]["rows"][0][3] == "none: no refused attempt about this adapter"

    (paths.config / "access.yaml").unlink()
    rows = {r["label"]: r for r in next(s for s in build_dossier(paths, b)["sections"]
                                        if s["id"] == "approvals")["blocks"][0]["rows"]}
    assert rows["access control (when this dossier was generated)"]["value"].startswith("not configured: ")


@pytest.mark.parametrize(("text", "problem"), [
    ("users:\n  bob: [approver, admin]\n",
     "users.bob.1: Input should be 'trainer', 'approver', 'auditor' or 'data_steward'"),
    ("users:\n  bob: approver\n", "users.bob: Input should be a valid list"),
    ("users: {bob: [approver]}\nprotected_stages: [Production]\n", "'Production' is not a stage name"),
    ("user:\n  bob: [approver]\n", "user: Extra inputs are not permitted"),
    ("- bob\n", "a roles file is a mapping"),
    ("users: [bob\n", "cannot read the roles file"),
])
def test_a_malformed_roles_file_is_a_clear_error_naming_the_file(world, monkeypatch, text, problem):
    paths, a, _ = world
    _write_access(paths, text)
    with pytest.raises(AccessError, match="^" + re.escape(str(paths.config / "access.yaml"))) as raised:
        load_access(paths.access)
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)
    if "admin" in text:  # through the CLI: exit 2, one line, nothing written (not even a denied event)
        done = _as(monkeypatch, "bob", paths, "adapters", "promote", a, "--stage", "production", "--reason", "x")
        assert done.returncode == 2 and done.stderr.startswith(f"error: {paths.config / 'access.yaml'}: ")
        assert problem in done.stderr and len(done.stderr.splitlines()) == 1
        assert _events(paths, "promotion") == _events(paths, "denied") == []


def test_without_a_roles_file_access_control_is_off_and_says_so(world, monkeypatch):
    paths, a, _ = world
    (paths.config / "access.yaml").unlink()
    done = _as(monkeypatch, "alice", paths, "adapters", "promote", a, "--stage", "production", "--reason", "x")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: access control not configured") and len(done.stderr.splitlines()) == 1
    assert _events(paths, "promotion")[-1]["payload"]["approval"]["access"] == "not configured"


def test_the_sensors_promotion_to_staging_works_under_access_control(world):
    paths, a, b = world
    promote(paths.registry, a, "production", "first", user="bob", access=load_access(paths.access))
    assert auto_promote(paths, b, a, "drift", "sensor:drift_on_new_data") == "promoted to staging"
    assert _events(paths, "promotion")[-1]["payload"]["user"] == "sensor:drift_on_new_data"
    # a deployment that protects staging too: the sensor holds no role, so it is refused, recorded, not raised
    _write_access(paths, "protected_stages: [production, staging]\nusers:\n  bob: [approver]\n")
    verdict = auto_promote(paths, a, b, "drift", "sensor:drift_on_new_data")
    assert verdict.startswith(f"not promoted: access denied: sensor:drift_on_new_data may not promote {a[:12]} "
                              "to staging")
    assert _events(paths, "denied")[-1]["payload"]["user"] == "sensor:drift_on_new_data"
    assert _stages(paths) == {"production": a, "staging": b}
