"""Adapter stages: promote and rollback, each one row of adapter_stages plus one ledger event."""

import json
import os
import subprocess
import sys

import pytest

from fine_tune_assets.lib.audit import promotion as promotion_lib
from fine_tune_assets.lib.audit.promotion import PromotionError, promote, rollback
from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.ledger import current_user, read_events
from fine_tune_assets.lib.registry.stages import current_stages, stage_history, stage_stacks
from fine_tune_assets_tests.factories import (
    publish_evaluated_adapters,
    publish_test_adapter,
    publish_test_dataset,
    record_test_evaluation,
)


@pytest.fixture
def three(tmp_path):
    """A data dir with one dataset version and three evaluated (gate passed) adapters a, b, c."""
    paths = DataPaths.from_env(tmp_path / "data")
    return paths, *publish_evaluated_adapters(paths, tmp_path, 3)


def cli(paths: DataPaths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINE_TUNE_DATA_DIR": str(paths.root), "FINE_TUNE_USER": "alice"}
    return subprocess.run([sys.executable, "-m", "fine_tune_assets.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def _events(paths: DataPaths, kinds=("promotion", "rollback")) -> list[dict]:
    with connect(paths.registry, read_only=True) as con:
        return [e for e in read_events(con) if e["kind"] in kinds]


def _current(paths: DataPaths) -> dict:
    with connect(paths.registry, read_only=True) as con:
        return current_stages(con)


def _refused(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_promote_promote_rollback_through_the_cli(three):
    paths, _, (a, b, c) = three
    done = cli(paths, "adapters", "promote", a[:8], "--stage", "production", "--reason", "passes gate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f'promoted {a[:12]} to production (was none; by alice: "passes gate")'
    assert _current(paths) == {"production": a}
    [event] = _events(paths)
    assert (event["kind"], event["subject"]) == ("promotion", a)
    assert event["payload"] == {
        "adapter_id": a, "stage": "production", "previous_adapter_id": None, "reason": "passes gate",
        "user": "alice", "forced": False,
        "gate": {"evaluated": True, "eval_id": event["payload"]["gate"]["eval_id"], "passed": True,
                 "primary_metric": "format_compliance", "reasons": [], "needs_retraining": False},
        "approval": {"access": "not configured", "protected": False, "roles": [], "trained_by": current_user(),
                     "four_eyes": "not checked", "four_eyes_problem": None, "second_approver": None}}

    done = cli(paths, "adapters", "promote", "latest", "--stage", "production", "--reason", "better recall",
               "--json")
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert (row["adapter_id"], row["previous_adapter_id"], row["action"], row["user_name"]) == (
        c, a, "promote", "alice")
    assert _events(paths)[-1]["payload"]["previous_adapter_id"] == a
    assert cli(paths, "adapters", "promote", b, "--stage", "production", "--reason", "b now").returncode == 0
    assert _current(paths) == {"production": b}

    done = cli(paths, "adapters", "rollback", "--stage", "production", "--reason", "b regressed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f'rolled back production from {b[:12]} to {c[:12]} (by alice: "b regressed")'
    assert _current(paths) == {"production": c}
    event = _events(paths)[-1]
    assert (event["kind"], event["subject"]) == ("rollback", c)
    assert event["payload"] == {"stage": "production", "adapter_id": c, "rolled_back_adapter_id": b,
                                "reason": "b regressed", "user": "alice",
                                "approval": {"access": "not configured", "protected": False, "roles": []}}

    assert cli(paths, "adapters", "rollback", "--stage", "production", "--reason", "c too").returncode == 0
    assert _current(paths) == {"production": a}
    _refused(cli(paths, "adapters", "rollback", "--stage", "production", "--reason", "again"),
             "no previous adapter")
    assert len(_events(paths)) == 5

    done = cli(paths, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("intact: 12 ledger events")  # 1 dataset, 3 adapters, 3 evals, 3 promote, 2 rb


def test_list_show_and_stages_show_the_current_stages(three):
    paths, _, (a, b, c) = three
    promote(paths.registry, a, "production", "first", user="alice")
    promote(paths.registry, b, "staging", "try it", user="bob")
    promote(paths.registry, a, "staging", "same as prod", user="bob")
    listing = {r["adapter_id"]: r for r in json.loads(cli(paths, "adapters", "list", "--json").stdout)}
    assert (listing[a]["stages"], listing[b]["stages"], listing[c]["stages"]) == (
        ["production", "staging"], [], [])
    text = cli(paths, "adapters", "list").stdout.splitlines()
    assert text[0].endswith("  stage")
    assert [line.split()[-1] for line in text[1:] if line.startswith(a[:12])] == ["production,staging"]
    shown = json.loads(cli(paths, "adapters", "show", b[:10], "--json").stdout)
    assert shown["stages"] == []
    assert [(t["action"], t["stage"], t["adapter_id"], t["previous_adapter_id"], t["user_name"])
            for t in shown["stage_history"]] == [("promote", "staging", b, None, "bob"),
                                                 ("promote", "staging", a, b, "bob")]
    human = cli(paths, "adapters", "show", a[:10]).stdout
    assert "  stages  production, staging" in human
    assert f'promoted {a[:12]} to staging (was {b[:12]}; by bob: "same as prod")' in human
    stages = json.loads(cli(paths, "adapters", "stages", "--json").stdout)
    assert stages["current"] == {"production": a, "staging": a}
    assert [t["seq"] for t in stages["history"]] == [1, 2, 3]
    human = cli(paths, "adapters", "stages").stdout
    assert human.splitlines()[1].split()[:2] == ["production", a[:12]]
    assert "history (oldest first)" in human


def test_failed_or_missing_gate_needs_force_and_is_recorded(three):
    paths, version, (a, _b, c) = three
    unevaluated = publish_test_adapter(paths, paths.root.parent, version, weights=b"never evaluated")
    record_test_evaluation(paths, a, version, passed=False)  # newer than its passing one: the latest counts
    before = len(_events(paths, kinds=("promotion",)))
    _refused(cli(paths, "adapters", "promote", a, "--stage", "production", "--reason", "x"),
             "failed the promotion gate (format_compliance 0.25 does not beat base 0.5); use --force")
    _refused(cli(paths, "adapters", "promote", unevaluated, "--stage", "production", "--reason", "x"),
             "has no evaluation")
    assert len(_events(paths, kinds=("promotion",))) == before
    done = cli(paths, "adapters", "promote", a, "--stage", "production", "--reason", "hotfix", "--force")
    assert done.returncode == 0, done.stderr
    assert "[forced past: its latest evaluation failed the promotion gate" in done.stdout
    payload = _events(paths)[-1]["payload"]
    assert payload["forced"] is True
    assert payload["gate"]["evaluated"] is True and payload["gate"]["passed"] is False
    assert payload["gate"]["reasons"] == ["format_compliance 0.25 does not beat base 0.5"]
    row = promote(paths.registry, unevaluated, "production", "no eval yet", user="carol", allow_failed_gate=True)
    assert row["forced"] is True and row["gate"]["evaluated"] is False and row["gate"]["passed"] is None
    # --force on an adapter that passes overrides nothing: not recorded as forced
    row = promote(paths.registry, c, "production", "fine", user="carol", allow_failed_gate=True)
    assert row["forced"] is False and _events(paths)[-1]["payload"]["forced"] is False
    assert verify_all(paths)["ok"]


def test_needs_retraining_flag_blocks_promote_and_rollback(three):
    paths, _, (a, b, _c) = three
    promote(paths.registry, a, "production", "first", user="alice")
    promote(paths.registry, b, "production", "second", user="alice")
    with connect(paths.registry) as con:
        con.execute("INSERT INTO adapter_flags (adapter_id, flag, created_at) VALUES (?, 'needs_retraining', now())",
                    [a])
    with pytest.raises(PromotionError, match="flagged needs_retraining"):
        rollback(paths.registry, "production", "b is bad", user="alice")
    with pytest.raises(PromotionError, match=r"flagged needs_retraining.*--force"):
        promote(paths.registry, a, "staging", "try", user="alice")
    row = promote(paths.registry, a, "staging", "try", user="alice", allow_failed_gate=True)
    assert row["forced"] is True and row["gate"]["needs_retraining"] is True and row["gate"]["passed"] is True
    assert _current(paths) == {"production": b, "staging": a}


def test_rollback_rule_repeated_and_after_promote(three):
    paths, _, (a, b, c) = three

    def go(*steps):
        for step in steps:
            if step == "rb":
                rollback(paths.registry, "production", "undo", user="alice")
            else:
                promote(paths.registry, step, "production", "go", user="alice")
        return _current(paths).get("production")

    # a rolled-back adapter is skipped by later rollbacks: promote a, b; rollback (a); promote c; rollback -> a
    assert go(a, b, "rb") == a
    assert go(c) == c
    assert go("rb") == a
    with pytest.raises(PromotionError, match="no previous adapter"):
        go("rb")
    # re-promoting an earlier holder: each rollback undoes exactly one promotion still in effect
    assert go(b, a) == a  # stack a, b, a
    assert go("rb") == b
    assert go("rb") == a
    with connect(paths.registry, read_only=True) as con:
        assert stage_stacks(con) == {"production": [a]}
        history = stage_history(con, stage="production")
        assert [(t["action"], t["adapter_id"], t["previous_adapter_id"]) for t in history] == [
            ("promote", a, None), ("promote", b, a), ("rollback", a, b), ("promote", c, a), ("rollback", a, c),
            ("promote", b, a), ("promote", a, b), ("rollback", b, a), ("rollback", a, b)]
        events = [e for e in read_events(con) if e["kind"] in ("promotion", "rollback")]
        assert [t["event_seq"] for t in history] == [e["seq"] for e in events]
        assert [e["subject"] for e in events] == [t["adapter_id"] for t in history]
    # stages are independent
    promote(paths.registry, c, "staging", "try", user="alice")
    with pytest.raises(PromotionError, match="no previous adapter"):
        rollback(paths.registry, "staging", "x", user="alice")
    assert _current(paths) == {"production": a, "staging": c}


def test_refusals_are_clean_errors(three, tmp_path, registry_backend):
    paths, _, (a, _b, _c) = three
    _refused(cli(paths, "adapters", "promote", "zzzz", "--stage", "production", "--reason", "x"),
             "0 adapters match 'zzzz'")
    _refused(cli(paths, "adapters", "promote", a, "--stage", "Production", "--reason", "x"), "invalid stage name")
    _refused(cli(paths, "adapters", "promote", a, "--stage", "production", "--reason", "  "), "a reason is required")
    _refused(cli(paths, "adapters", "rollback", "--stage", "production", "--reason", "x"), "has no adapter")
    assert cli(paths, "adapters", "promote", a, "--stage", "production", "--reason", "ok").returncode == 0
    _refused(cli(paths, "adapters", "promote", a[:12], "--stage", "production", "--reason", "again"),
             f"adapter {a[:12]} is already in production")
    missing = cli(paths, "adapters", "promote", a, "--stage", "production")
    assert missing.returncode == 2 and "--reason" in missing.stderr  # argparse: required
    if registry_backend is None:  # a data directory without a registry file (PostgreSQL's is the server's)
        _refused(cli(DataPaths.from_env(tmp_path / "empty"), "adapters", "rollback", "--stage", "production",
                     "--reason", "x"), "no registry")
    assert len(_events(paths)) == 1


def test_a_failure_inside_the_transaction_leaves_neither_row_nor_event(three, monkeypatch):
    paths, _, (a, b, _c) = three
    with connect(paths.registry, read_only=True) as con:
        events_before = len(read_events(con))

    def boom(*args, **kwargs):
        raise RuntimeError("crash after the event, before the row")

    real_insert = promotion_lib._insert
    monkeypatch.setattr(promotion_lib, "_insert", boom)
    with pytest.raises(RuntimeError, match="crash after the event"):
        promote(paths.registry, a, "production", "first", user="alice")
    with connect(paths.registry, read_only=True) as con:
        assert len(read_events(con)) == events_before
        assert con.execute("SELECT count(*) FROM adapter_stages").fetchone()[0] == 0  # rolled back with the event
    monkeypatch.setattr(promotion_lib, "_insert", real_insert)
    promote(paths.registry, a, "production", "first", user="alice")
    promote(paths.registry, b, "production", "second", user="alice")
    monkeypatch.setattr(promotion_lib, "_insert", boom)
    with pytest.raises(RuntimeError):
        rollback(paths.registry, "production", "undo", user="alice")
    with connect(paths.registry, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM adapter_stages").fetchone()[0] == 2
        assert len(read_events(con)) == events_before + 2
        assert current_stages(con) == {"production": b}
    assert verify_all(paths)["ok"]


def test_verify_catches_an_edited_stage_history(tmp_path):
    from fine_tune_assets.lib.audit.promotion import promote
    from fine_tune_assets.lib.audit.verify import verify_all
    from fine_tune_assets.lib.common.paths import DataPaths

    paths = DataPaths.from_env(tmp_path / "data")
    version = publish_test_dataset(paths, tmp_path)
    first = publish_test_adapter(paths, tmp_path, version, b"w-1")
    second = publish_test_adapter(paths, tmp_path, version, b"w-2")
    for adapter_id in (first, second):
        record_test_evaluation(paths, adapter_id, version)
        promote(paths.registry, adapter_id, "production", "test", user="alice")
    assert verify_all(paths)["ok"]
    with connect(paths.registry) as con:  # swap who holds production behind the ledger's back
        con.execute("UPDATE adapter_stages SET adapter_id = ? WHERE adapter_id = ?", [first, second])
    problems = verify_all(paths)["problems"]
    assert any("missing from or altered in adapter_stages" in p for p in problems), problems
