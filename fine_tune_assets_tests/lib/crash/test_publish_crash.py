"""SIGKILL at every step of publishing a dataset version and of registering an adapter, on both backends.

The steps are enumerated by a publication that runs to the end under the recorder (``crasher``), so a
step added to the code is killed at without a change here. Then, for each kill point (before and after
every write, fsync, rename, unlink, rmtree and the registry's BEGIN and COMMIT), a fresh copy of the
same starting state, a worker killed there, and the checks:

- no registered dataset version or adapter without its files (each row's folder complete);
- no visible partial folder: every ``datasets/<id>`` and ``adapters/<id>`` is complete; one that is not
  registered may only be left between the rename into place and the registry's COMMIT (the next
  publication of the same content takes it over; ``verify`` warns about it), and hidden ``.tmp-*``
  leftovers are ignored by every reader (``verify`` warns about them too);
- ``verify`` passes (registry and ledger);
- a re-run completes with the same version or adapter id, and everything above then holds with
  nothing left unregistered.

The checks and the re-run run once per distinct state a kill leaves visible (``visible_state``): most
points differ only in hidden temporary files. Re-publishing an adapter that is already registered has
one window a kill can leave, where ``verify`` names the run's own files as changed until the re-run.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import pytest

from fine_tune_assets.lib.audit.verify import verify_all
from fine_tune_assets.lib.common.hashing import sha256_file, sha256_json
from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV, DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.schema import TABLES
from fine_tune_assets.lib.training.publish import RUN_ONLY_FILES, adapter_content_hash
from fine_tune_assets_tests.factories import record_test_evaluation
from fine_tune_assets_tests.lib.crash.crasher import publish_adapter_once, publish_dataset_once
from fine_tune_assets_tests.registry_backends import clone_database, drop_database, postgres_server

HIDDEN = "."  # .tmp-* folders, .runs/, .checkpoints/: not published, readers never list them


# ------------------------------------------------------------------------------------------------ checks


def dataset_problems(folder: Path) -> list[str]:
    """A dataset folder is complete: its manifest, every file the manifest lists, and its id is its content."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"{folder.name[:12]}: no readable manifest.json ({type(exc).__name__})"]
    problems = [f"{folder.name[:12]}: {name} missing or changed" for name, sha in
                {**manifest["files"], **manifest["content_hashes"]}.items()
                if not (folder / name).is_file() or sha256_file(folder / name) != sha]
    if sha256_json(manifest["content_hashes"]) != folder.name:
        problems.append(f"{folder.name[:12]}: content hashes do not give the folder's name")
    return problems


def adapter_problems(folder: Path) -> list[str]:
    """An adapter folder is complete: its weights and config hash to its name, and its lineage names it."""
    if not folder.is_dir():
        return [f"{folder.name[:12]}: folder missing"]
    problems = [] if adapter_content_hash(folder) == folder.name else [f"{folder.name[:12]}: files do not hash to it"]
    try:
        if json.loads((folder / "lineage.json").read_text())["adapter_id"] != folder.name:
            problems.append(f"{folder.name[:12]}: lineage.json names another adapter")
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"{folder.name[:12]}: no readable lineage.json ({type(exc).__name__})")
    return problems


def consistency(paths: DataPaths) -> tuple[list[str], list[str]]:
    """(problems, visible folders that are not registered) of the files against the registry."""
    with connect(paths.registry, read_only=True) as con:
        versions = {v: json.loads(f) for v, f in con.execute("SELECT version_id, files FROM dataset_versions")
                    .fetchall()}
        adapters = {a for (a,) in con.execute("SELECT adapter_id FROM adapters").fetchall()}
    problems, orphans = [], []
    for version, files in versions.items():
        folder = paths.datasets / version
        problems += [f"registered dataset {p}" for p in dataset_problems(folder)]
        if folder.is_dir() and (folder / "manifest.json").is_file():
            if json.loads((folder / "manifest.json").read_text())["files"] != files:
                problems.append(f"registered dataset {version[:12]}: manifest files differ from the registry's")
    problems += [f"registered adapter {p}" for a in adapters for p in adapter_problems(paths.adapters / a)]
    for kind, registered, check in (("datasets", versions, dataset_problems), ("adapters", adapters, adapter_problems)):
        folder = getattr(paths, kind)
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if entry.name.startswith(HIDDEN) or entry.name in registered:
                continue
            orphans.append(f"{kind}/{entry.name[:12]}")
            problems += [f"visible unregistered {kind} folder {p}" for p in check(entry)]
    return problems, orphans


# ------------------------------------------------------------------------------------------------ the loop


class Starting:
    """The starting state of every kill: a data folder (and a PostgreSQL database) copied afresh each time,
    always to the same path, since the registry holds absolute paths."""

    def __init__(self, tmp_path: Path, registry_url: str | None, monkeypatch):
        self.work, self.template = tmp_path / "work", tmp_path / "template"
        self.template_url, self.monkeypatch = registry_url, monkeypatch
        self.paths = DataPaths(self.work / "data")
        self.clone: tuple[str, str] | None = None

    def freeze(self) -> None:
        """What ``self.paths`` holds now is the starting state."""
        shutil.copytree(self.work, self.template, symlinks=True)

    def reset(self, database: bool = True) -> None:
        """``database=False`` keeps the PostgreSQL copy: nothing committed to it since it was made (a worker
        killed inside a transaction leaves it rolled back)."""
        shutil.rmtree(self.work)
        shutil.copytree(self.template, self.work, symlinks=True)
        if self.template_url and (database or not self.clone):
            self.drop()
            self.clone = clone_database(postgres_server(), self.template_url)
            self.monkeypatch.setenv(REGISTRY_URL_ENV, self.clone[0])

    def drop(self) -> None:
        if self.clone:
            drop_database(postgres_server(), self.clone[1])
            self.clone = None

    def command(self, publish: str, kill: int | None = None, version: str | None = None) -> dict:
        scratch = self.paths.adapters / ".runs" / "killed" if publish == "adapter" else self.work / "scratch"
        return {"publish": publish, "kill": kill, "version": version, "root": self.work,
                "data_dir": self.paths.root, "scratch": scratch, "log": self.work.parent / "worker.log",
                "registry_url": self.clone[0] if self.clone else self.template_url}


def rerun(paths: DataPaths, publish: str, version: str | None) -> str:
    if publish == "dataset":
        return publish_dataset_once(paths, paths.root.parent / "rerun")
    return publish_adapter_once(paths, paths.adapters / ".runs" / "rerun", version)


def visible_state(paths: DataPaths) -> str:
    """Everything the checks and a re-run read: every registry table's rows and the published folders' files
    (hidden ``.tmp-*`` leftovers excluded: neither ``verify`` nor a publication reads another's temporary
    files). Kill points that leave the same visible state share the checks' results."""
    with connect(paths.registry, read_only=True) as con:
        rows = {table: sorted(repr(r) for r in con.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES}
    files = sorted((str(p.relative_to(paths.root)), sha256_file(p)) for kind in (paths.datasets, paths.adapters)
                   if kind.is_dir() for entry in kind.iterdir() if not entry.name.startswith(HIDDEN)
                   for p in ([entry] if entry.is_file() else entry.rglob("*")) if p.is_file())
    return sha256_json([rows, files])


def crash_everywhere(crasher, start: Starting, publish: str, version: str | None = None,
                     points: range | None = None) -> list[dict]:
    """Record the steps from ``start``, then kill at each point (or those of ``points``) and check.

    Returns one dict per kill point: {k, label, labels (all points), expected (the id), problems (files
    against the registry, and the re-run's), verify (its problems right after the kill), orphans (visible
    unregistered folders)}. The checks and the re-run run once per distinct ``visible_state``: kills that
    differ only in hidden temporary files (most of a publication's steps) share them."""
    start.reset()
    recorded = crasher.run(**start.command(publish, version=version))
    assert recorded["error"] is None and recorded["result"], recorded
    labels, expected = recorded["points"], recorded["result"]
    outcomes, checked, committed = [], {}, True
    for k in points if points is not None else range(len(labels)):
        start.reset(database=committed)
        reply = crasher.run(**start.command(publish, kill=k, version=version))
        assert reply["killed"] and reply["signal"] == signal.SIGKILL, (k, labels[k], reply)
        assert reply["points"] == labels[:k + 1], f"{k} {labels[k]}: the steps differ from the recorded run"
        committed = "after registry COMMIT" in reply["points"]
        seen = visible_state(start.paths)
        if seen not in checked:
            committed = True  # by the re-run
            problems, orphans = consistency(start.paths)
            verified = verify_all(start.paths)
            checked[seen] = {"orphans": orphans, "verify": verified["problems"],
                             "warnings": [w for w in verified["warnings"] if "interrupted publication" not in w],
                             "problems": problems + rerun_problems(start.paths, publish, version, expected)}
        outcomes.append({"k": k, "label": labels[k], "labels": labels, "expected": expected, **checked[seen]})
    start.drop()
    return outcomes


def rerun_problems(paths: DataPaths, publish: str, version: str | None, expected: str) -> list[str]:
    try:
        again = rerun(paths, publish, version)
    except Exception as exc:  # a re-run that fails is a finding, reported with the kill point
        return [f"re-run failed: {type(exc).__name__}: {exc}"]
    after, orphans = consistency(paths)
    problems = [f"after re-run: {p}" for p in after + [f"{o} not registered" for o in orphans]]
    problems += [f"after re-run: verify: {p}" for p in verify_all(paths)["problems"]]
    return problems + ([] if again == expected else [f"re-run gave {again[:12]}, not {expected[:12]}"])


def window(labels: list[str], pattern: str) -> range:
    """The kill points from the first that matches ``pattern`` up to the registry's COMMIT (excluded)."""
    first = next(k for k, label in enumerate(labels) if re.fullmatch(pattern, label))
    return range(first, labels.index("after registry COMMIT"))


def into_place(labels: list[str], kind: str, object_id: str) -> range:
    """From the rename of the finished folder into ``kind/<id>`` to the COMMIT: the folder is visible but
    not yet registered (a kill here leaves it for the next publication of the same content to take over)."""
    return window(labels, rf"after replace \S+ -> data/{kind}/{object_id[:12]}")


def assert_crash_safe(outcomes: list[dict], kind: str, unregistered_before: int = 0) -> None:
    """No problem anywhere, ``verify`` passes after every kill, and a visible unregistered folder only in the
    rename-to-COMMIT window (or, with ``unregistered_before``, at the points before it: the starting state's)."""
    report = {f"{o['k']:02d} {o['label']}": o["problems"] + [f"verify: {p}" for p in o["verify"]]
              for o in outcomes if o["problems"] or o["verify"]}
    assert report == {}, json.dumps(report, indent=1)
    labels, expected = outcomes[0]["labels"], outcomes[0]["expected"]
    allowed = set(into_place(labels, kind, expected)) | set(range(unregistered_before))
    outside = {f"{o['k']:02d} {o['label']}": o["orphans"] for o in outcomes if o["orphans"] and o["k"] not in allowed}
    assert outside == {}, "a visible unregistered folder outside the rename-to-COMMIT window"
    for o in outcomes:  # verify passes, and names the folder as a warning
        assert [w.split(":")[0] for w in o["warnings"]] == o["orphans"], (o["label"], o["warnings"])


def assert_durable_before_commit(outcomes: list[dict], published: Path) -> None:
    """Each file of the folder is fsynced before the rename that publishes it, and the folder holding it after
    that rename and before the COMMIT: a power cut (which a SIGKILL cannot show) must not leave a registered
    folder whose rename or files were still in the page cache."""
    labels = outcomes[0]["labels"]
    where = f"data/{published.parent.name}/{published.name[:12]}"
    rename = next(k for k, label in enumerate(labels) if re.fullmatch(rf"after replace \S+ -> {where}", label))
    staged = labels[rename].split(" ")[2]
    synced = {label.rsplit("/", 1)[1] for label in labels[:rename] if label.startswith(f"after fsync {staged}/")}
    assert {p.name for p in published.iterdir() if p.is_file()} <= synced
    assert f"after fsync data/{published.parent.name}" in labels[rename:labels.index("before registry COMMIT")]


# ------------------------------------------------------------------------------------------------ the tests


@pytest.fixture
def start(tmp_path, registry_backend, monkeypatch):
    start = Starting(tmp_path, registry_backend, monkeypatch)
    start.paths.root.mkdir(parents=True)
    with connect(start.paths.registry):  # an initialized registry, as every stage before publishing leaves it
        pass
    yield start
    start.drop()


def test_killed_dataset_publication_leaves_no_partial_state(crasher, start):
    start.freeze()
    outcomes = crash_everywhere(crasher, start, "dataset")
    assert_crash_safe(outcomes, "datasets")
    assert_durable_before_commit(outcomes, start.paths.datasets / outcomes[0]["expected"])


def test_leftovers_of_a_killed_publication_are_ignored_and_named(crasher, start):
    """A kill before the rename into place leaves the temporary folder and the erased-records file: no reader
    lists them, ``verify`` passes and names them, a re-run publishes beside them, and they stay until deleted."""
    start.freeze()
    start.reset()
    labels = crasher.run(**start.command("dataset"))["points"]
    start.reset()
    last_hidden = next(k for k, label in enumerate(labels)
                       if re.fullmatch(r"before replace data/datasets/\.tmp-<uuid> -> data/datasets/\w{12}", label))
    assert crasher.run(**start.command("dataset", kill=last_hidden))["killed"]
    leftovers = sorted(p.name for p in start.paths.datasets.iterdir())
    assert len(leftovers) == 2 and all(name.startswith(".tmp-") for name in leftovers)
    for _ in range(2):  # after the kill, and after the re-run
        result = verify_all(start.paths)
        assert result["ok"], result["problems"]
        assert sorted(w.split(":")[0] for w in result["warnings"]) == [f"datasets/{name}" for name in leftovers]
        version = rerun(start.paths, "dataset", None)
    assert sorted(p.name for p in start.paths.datasets.iterdir()) == sorted([*leftovers, version])


def test_killed_publication_over_a_folder_left_unregistered(crasher, start):
    """The starting state is a version's folder in place but not registered (a run killed before its COMMIT):
    the next publication moves it out of sight, then deletes it, so a kill there leaves nothing half deleted."""
    start.freeze()
    start.reset()
    recorded = crasher.run(**start.command("dataset"))
    version = recorded["result"]
    start.reset()
    killed = crasher.run(**start.command("dataset", kill=into_place(recorded["points"], "datasets", version).start))
    assert killed["killed"] and (start.paths.datasets / version).is_dir()
    shutil.rmtree(start.template)
    start.freeze()
    labels = crasher.run(**start.command("dataset"))["points"]
    aside = next(k for k, label in enumerate(labels) if f" data/datasets/{version[:12]} -> " in label)
    outcomes = crash_everywhere(crasher, start, "dataset", points=range(aside, len(labels)))
    assert outcomes[0]["labels"] == labels and labels[aside].startswith("before replace")
    assert_crash_safe(outcomes, "datasets", unregistered_before=aside + 1)


def test_killed_adapter_registration_leaves_no_partial_state(crasher, start):
    version = publish_dataset_once(start.paths, start.work / "prepare")
    start.freeze()
    outcomes = crash_everywhere(crasher, start, "adapter", version)
    assert_crash_safe(outcomes, "adapters")
    assert_durable_before_commit(outcomes, start.paths.adapters / outcomes[0]["expected"])


def test_killed_adapter_republication_keeps_the_published_adapter(crasher, start):
    """The same adapter published again (same weights, a new run's lineage) after it was evaluated: its folder,
    weights and evaluation report stay in place at every point. Between the first of the new run's files
    moved in and the COMMIT, ``verify`` names the run's own files (lineage.json, README.md, metrics) as
    changed, which they are, until the re-run registers them: the one window a SIGKILL can leave."""
    version = publish_dataset_once(start.paths, start.work / "prepare")
    adapter_id = publish_adapter_once(start.paths, start.paths.adapters / ".runs" / "first", version)
    report = start.paths.adapters / adapter_id / "eval" / "eval_report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"adapter_id": adapter_id}))
    record_test_evaluation(start.paths, adapter_id, version)
    start.freeze()
    outcomes = crash_everywhere(crasher, start, "adapter", version)
    assert outcomes[0]["expected"] == adapter_id
    renewing = window(outcomes[0]["labels"], rf"after replace \S+ -> data/adapters/{adapter_id[:12]}/\S+")
    run_only = "|".join(re.escape(name) for name in RUN_ONLY_FILES)
    in_window = re.compile(rf"adapter {adapter_id[:12]} file ({run_only}) changed: .*")
    unexpected = {f"{o['k']:02d} {o['label']}": o["problems"] + [
        f"verify: {p}" for p in o["verify"] if not (o["k"] in renewing and in_window.fullmatch(p))]
        for o in outcomes}
    assert {label: problems for label, problems in unexpected.items() if problems} == {}
    assert [o["label"] for o in outcomes if o["orphans"]] == []
    assert any(o["verify"] for o in outcomes if o["k"] in renewing)  # the window is real, and reported
