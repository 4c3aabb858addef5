"""The Dagster UI in a real browser: the repository's code location served the way `make ui` and `make ui-audit`
serve it, data_job launched through the GraphQL API, then the pages a user and an auditor open, rendered by
headless Chromium (the system browser, driven by Playwright; no browser is downloaded):

- the global asset lineage shows every group and every asset of the code location;
- dataset_version shows the version id the registry holds, its counts and its ledger entry, and the blocking
  quality gates show as passed checks;
- the read-only server (`make ui-audit`) renders materialize, launch and sensor toggles disabled, where the
  normal server renders the same controls enabled, and its GraphQL API refuses to launch;
- no PII value the sample generator planted appears in any rendered page, GraphQL response or websocket frame.

lora_adapter and eval_report (their metadata and ledger entries) are not checked here: data_job does not train,
and training the real base model is `make run`'s job (fine_tune_assets_tests/defs/training covers the assets).

Screenshots go to $FINE_TUNE_TEST_ARTIFACTS (default: <pytest tmp>/screenshots); their paths are printed.
"""

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from playwright.sync_api import Page, expect, sync_playwright

from fine_tune_assets.definitions import defs as load_definitions
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.ledger import EventKind, event_reference
from fine_tune_assets_tests.factories import REPO, SAMPLE_DATA, cli, make_data_dir

pytestmark = pytest.mark.slow

SERVER_START_S = 180  # both servers load the code location at once, on 2 cores
RUN_TIMEOUT_S = 300  # data_job on the sample: ~25 s alone
UI_TIMEOUT_MS = 30_000  # one page's text to appear
# Offline: no component updates, no sync, no background requests. --no-sandbox: CI runs as root.
BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}
# The global lineage lays out every group; at this size it zooms in far enough to print full asset names
# (at a smaller one the nodes turn into truncated labels).
GRAPH_VIEWPORT = {"width": 2400, "height": 1300}
MATERIALIZE = re.compile(r"(^|\s)Materialize$")  # the button's name follows its icon's label
LOCATION = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["location_name"]


# ------------------------------------------------------------------------------------------------ the browser


def _chromium() -> str:
    """The system Chromium: a missing browser skips the test on a developer machine and fails it under CI."""
    path = os.environ.get("FINE_TUNE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "no system Chromium to drive (apt-get install chromium, or set FINE_TUNE_CHROMIUM)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser test of the UI may not skip", pytrace=False)
    pytest.skip(reason)


# ------------------------------------------------------------------------------------------------ the servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post_graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


class Server:
    """A Dagster UI process (and its children) in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path):
        self.name, self.log, self.port = name, log, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "w") as out:
            self.process = subprocess.Popen([*argv, "-h", "127.0.0.1", "-p", str(self.port)], env=env, cwd=REPO,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def fail(self, why: str):
        raise AssertionError(f"{self.name} ({self.url}): {why}; its log tail:\n{self.tail()}")

    def wait_ready(self, deadline: float) -> None:
        """Until the webserver answers GraphQL and the code location has loaded."""
        last = "no answer yet"
        while time.time() < deadline:
            if self.process.poll() is not None:
                self.fail(f"exited with code {self.process.returncode} before it was ready")
            try:
                workspace = _post_graphql(self.url, LOCATIONS_QUERY)["data"]["workspaceOrError"]
            except (OSError, ValueError, KeyError, TypeError) as error:  # not listening yet, or starting up
                last = repr(error)
            else:
                entries = {e["name"]: e for e in workspace.get("locationEntries", [])}
                entry = entries.get(LOCATION)
                loaded = entry and entry["loadStatus"] == "LOADED"
                if loaded and entry["locationOrLoadError"]["__typename"] == "PythonError":
                    self.fail(f"code location {LOCATION} failed to load: {entry['locationOrLoadError']['message']}")
                if loaded and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                    return
                last = json.dumps(workspace)[:500]
            time.sleep(1)
        self.fail(f"not ready after {SERVER_START_S} s (last answer: {last})")

    def stop(self) -> None:
        """SIGTERM to the server alone (Dagster maps it to Ctrl-C: it shuts its children down through their
        shutdown pipes; the same signal sent to the whole group at once can leave `dagster dev` hanging), then
        SIGKILL to whatever is left of its process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone: a clean shutdown
        self.process.wait(timeout=30)


class RecordingClient(DagsterGraphQLClient):
    """The GraphQL client, keeping every response body for the PII check."""

    def __init__(self, url: str, bodies: list[str]):
        host, port = url.removeprefix("http://").split(":")
        super().__init__(host, port_number=int(port), timeout=60)
        self._bodies = bodies

    def _execute(self, query, variables=None):
        result = super()._execute(query, variables)
        self._bodies.append(json.dumps(result, ensure_ascii=False))
        return result


def _run_to_success(client: RecordingClient, home: Path, server: Server) -> str:
    run_id = client.submit_job_execution("data_job")
    deadline = time.time() + RUN_TIMEOUT_S
    status = client.get_run_status(run_id)
    while status not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        if time.time() > deadline:
            break
        time.sleep(2)
        status = client.get_run_status(run_id)
    if status != dg.DagsterRunStatus.SUCCESS:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            events = [f"{e.dagster_event_type.value if e.dagster_event_type else 'LOG'} {e.step_key or ''} "
                      f"{(e.user_message or '')[:300]}" for e in instance.all_logs(run_id)]
        raise AssertionError(f"data_job run {run_id} is {status.value} after {RUN_TIMEOUT_S} s; its event log tail:\n"
                             + "\n".join(events[-40:]) + f"\n\nserver log tail:\n{server.tail()}")
    return run_id


# ------------------------------------------------------------------------------------------------ planted PII


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def _as_text(body: str) -> str:
    """JSON (a GraphQL answer, a websocket frame) as its decoded strings, so escapes hide nothing; HTML unescaped."""
    try:
        return "\n".join(_strings(json.loads(body)))
    except ValueError:
        return html.unescape(body)


def _planted_pii() -> list[dict]:
    """Every PII value the sample generator planted, mapped into messages or not (an unmapped column must not
    leak either), from its manifest."""
    return json.loads((SAMPLE_DATA / "sample_manifest.json").read_text())["pii"]


def _pii_matcher(values: set[str]) -> re.Pattern:
    """Any of the values as a whole token (longest first), so a short first name inside a word is not a hit."""
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _raw_text(raw: Path) -> str:
    parts: list[str] = []
    for path in sorted(p for p in raw.iterdir() if p.is_file()):
        if path.suffix == ".parquet":
            parts += _strings(pq.read_table(path).to_pylist())
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    parts += _strings(json.loads(line))
                except ValueError:  # the sample's planted broken lines
                    parts.append(line)
        else:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------ pages


class Pages:
    """One browser page; every page it renders is kept (its HTML) and screenshotted."""

    def __init__(self, page: Page, shots: Path):
        self.page, self.shots, self.rendered, self.screenshots = page, shots, [], []

    def open(self, url: str) -> Page:
        self.page.goto(url, wait_until="domcontentloaded")
        return self.page

    def keep(self, name: str) -> None:
        try:  # a nicer screenshot: the sections still loading, given a few seconds (what was checked has rendered)
            expect(self.page.locator('[class*="Skeleton_skeleton"]')).to_have_count(0, timeout=5_000)
        except AssertionError:
            pass
        path = self.shots / f"{len(self.screenshots) + 1:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        print(f"screenshot: {path}")
        self.screenshots.append(path)
        self.rendered.append(self.page.content())

    def on_failure(self, error_type, error, traceback) -> None:
        """The page as it was when a check failed."""
        if error_type is not None and not self.page.is_closed():
            path = self.shots / "failed.png"
            self.page.screenshot(path=path)
            print(f"screenshot of the failure: {path} ({self.page.url})")


def _check_lineage(pages: Pages, url: str, groups: set[str], assets: set[str], ran: set[str], name: str) -> None:
    page = pages.open(f"{url}/asset-groups")
    nodes = page.locator("svg foreignObject")
    # collapsed group boxes first, once their asset statuses have arrived; then expand every group (Alt+E, the
    # graph's "Expand all groups") and wait for one node per asset, with its full name
    expect(page.get_by_text("Global asset lineage").first).to_be_visible()
    for group in groups:
        expect(nodes.get_by_text(group, exact=True).first).to_be_attached()
    expect(nodes.get_by_text("fetching statuses")).to_have_count(0)
    page.keyboard.press("Alt+e")
    for asset in assets:
        expect(nodes.locator(f'[data-tooltip="{asset}"]')).to_have_text(asset)
        node = nodes.filter(has=page.locator(f'[data-tooltip="{asset}"]'))
        expect(node).to_contain_text("Materialized" if asset in ran else "Never materialized")
    for group in groups:  # still shown, now as the frames around their assets
        expect(nodes.get_by_text(group, exact=True).first).to_be_attached()
    pages.keep(name)


def _metadata_value(page: Page, key: str):
    """The value cell of a row of an asset's metadata table."""
    return page.locator("tr", has=page.locator("td:first-child").get_by_text(key, exact=True)).last.locator("td").last


# ------------------------------------------------------------------------------------------------ the test


def test_the_ui_renders_the_published_dataset_and_the_read_only_ui_cannot_launch(tmp_path, models_dir):
    started = time.time()
    executable = _chromium()
    expect.set_options(timeout=UI_TIMEOUT_MS)  # every wait below: for text to appear, up to this long
    shots = Path(os.environ.get("FINE_TUNE_TEST_ARTIFACTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    # What the UI must show, from the code location itself
    definitions = load_definitions()
    graph = definitions.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    data_job = definitions.resolve_job_def("data_job").asset_layer
    ran = {key.to_user_string() for key in data_job.executable_asset_keys}
    gates = sorted((k for k in data_job.asset_graph.asset_check_keys if graph.get_check_spec(k).blocking),
                   key=lambda k: (k.asset_key.to_user_string(), k.name))
    assert "dataset_version" in ran and ran < assets and len(groups) >= 2 and gates

    # The planted PII can be found by the matcher in the raw input, so the leak check below cannot pass vacuously
    planted = _planted_pii()
    values = {p["value"] for p in planted}
    matcher = _pii_matcher(values)
    data = make_data_dir(tmp_path / "data", models_dir)
    in_raw = set(matcher.findall(_raw_text(data / "raw")))
    assert len(values) > 1000 and in_raw == values, f"{len(values - in_raw)} planted values not found in raw/"

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # create the SQLite storages here: two servers creating them at once race on their schema migrations
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_latest_materialization_event(dg.AssetKey("dataset_version"))
    env = {**os.environ, "DAGSTER_HOME": str(home), "FINE_TUNE_DATA_DIR": str(data)}
    bin_dir = Path(sys.executable).parent
    workspace = ["-w", str(REPO / "workspace.yaml")]
    bodies: list[str] = []  # every GraphQL response and websocket frame, the client's and the browser's

    with ExitStack() as stack:
        # `make ui`: `dagster dev`, the webserver with the daemon. The repository's instance keeps Dagster's default
        # QueuedRunCoordinator (dagster.yaml's run tag concurrency limits only exist under it), so a run launched
        # from the UI or the API waits in the queue until the daemon dequeues it; a DefaultRunCoordinator would
        # launch it at once but test an instance nobody runs.
        ui = Server("dagster dev", [str(bin_dir / "dagster"), "dev", *workspace], env, tmp_path / "ui.log")
        stack.callback(ui.stop)
        # `make ui-audit`: a second, read-only webserver on the same instance (no daemon of its own)
        audit = Server("dagster-webserver --read-only", [str(bin_dir / "dagster-webserver"), "--read-only",
                                                         *workspace], env, tmp_path / "ui-audit.log")
        stack.callback(audit.stop)
        deadline = time.time() + SERVER_START_S
        ui.wait_ready(deadline)
        audit.wait_ready(deadline)
        ready = time.time()

        # 1. data_job through the GraphQL API
        run_id = _run_to_success(RecordingClient(ui.url, bodies), home, ui)
        run_done = time.time()
        shown = cli("datasets", "show", "latest", "--json", data_dir=data)
        assert shown.returncode == 0, shown.stderr[-2000:]
        version = json.loads(shown.stdout)
        version_id, counts = version["version_id"], version["counts"]
        ledger = event_reference(DataPaths(data).registry, EventKind.DATASET_PUBLISHED, version_id)
        assert ledger and ledger.startswith("seq ")

        # the read-only API refuses to launch
        with pytest.raises(DagsterGraphQLClientError, match="Unauthorized"):
            RecordingClient(audit.url, bodies).submit_job_execution("data_job")

        # 2. the pages, in headless Chromium
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=BROWSER_ARGS)
        stack.callback(browser.close)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(UI_TIMEOUT_MS)

        def keep_graphql(response):
            if response.url.split("?")[0].endswith("/graphql"):
                try:
                    bodies.append(response.text())
                except Exception:  # a body gone with its page (a navigation) holds nothing new
                    pass

        page.on("response", keep_graphql)
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: bodies.append(
            frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))))
        pages = Pages(page, shots)
        stack.push(pages.on_failure)

        # 3a. the asset graph: every group and every asset of the code location
        page.set_viewport_size(GRAPH_VIEWPORT)
        _check_lineage(pages, ui.url, groups, assets, ran, "asset-graph")
        expect(page.get_by_role("button", name="Materialize all")).to_be_enabled()
        page.set_viewport_size(VIEWPORT)

        # 3b. dataset_version: the registry's version id, its counts, its ledger entry; materializable here
        page = pages.open(f"{ui.url}/assets/dataset_version")
        expect(_metadata_value(page, "dataset_version")).to_have_text(version_id)
        expected = {"input_records": counts["input_records"], "accepted": counts["accepted"],
                    "quarantined": counts["quarantined"], "train_examples": counts["train"],
                    "eval_examples": counts["eval"], "new_version": "true", "ledger_event": ledger}
        for key, value in expected.items():
            expect(_metadata_value(page, key)).to_have_text(str(value))
        for reason, n in counts["quarantined_by_reason"].items():  # the markdown table, row by row
            expect(page.locator("tr", has=page.get_by_text(reason, exact=True)).last).to_contain_text(str(n))
        materialize = page.get_by_role("button", name=MATERIALIZE)
        expect(materialize).to_be_enabled()
        pages.keep("dataset_version")

        # 3c. the blocking quality gates, passed, on the latest materialization
        for asset in sorted({k.asset_key.to_user_string() for k in gates}):
            page = pages.open(f"{ui.url}/assets/{asset}?view=checks")
            for check in (k.name for k in gates if k.asset_key.to_user_string() == asset):
                row = page.locator('[class*="checkRow"]', has=page.locator(f'[title="{check}"]'))
                expect(row).to_contain_text("Succeeded")
                row.click()
                expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
                expect(page.get_by_text("Evaluation result").locator("..")).to_contain_text("Passed")
            pages.keep(f"{asset}-checks")

        # the run's page, its event log streamed over the websocket (checked for PII below)
        page = pages.open(f"{ui.url}/runs/{run_id}")
        expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
        pages.keep("data_job-run")

        # the launchpad, and the raw-files sensor's toggle: usable on this server
        page = pages.open(f"{ui.url}/locations/{LOCATION}/jobs/data_job/playground")
        expect(page.get_by_role("button", name="Launch Run")).to_be_enabled()
        pages.keep("launchpad")
        page = pages.open(f"{ui.url}/locations/{LOCATION}/sensors/new_raw_files")
        expect(page.locator('label[class*="formatSwitch"] input')).to_be_enabled()
        pages.keep("sensor")

        # 3d. the read-only server: the same controls, disabled; no launchpad
        page.set_viewport_size(GRAPH_VIEWPORT)
        _check_lineage(pages, audit.url, groups, assets, ran, "read-only-asset-graph")
        expect(page.get_by_role("button", name="Materialize all")).to_be_disabled()
        page.set_viewport_size(VIEWPORT)
        page = pages.open(f"{audit.url}/assets/dataset_version")
        expect(_metadata_value(page, "dataset_version")).to_have_text(version_id)  # an auditor sees the same data
        expect(page.get_by_role("button", name=MATERIALIZE)).to_be_disabled()
        pages.keep("read-only-dataset_version")
        page = pages.open(f"{audit.url}/locations/{LOCATION}/jobs/data_job/playground")
        expect(page).to_have_url(re.compile(r"/jobs/data_job/?$"))  # sent back to the job's overview
        expect(page.get_by_text("View as Asset Graph")).to_be_visible()
        expect(page.get_by_role("button", name="Launch Run")).to_have_count(0)
        expect(page.get_by_role("tab", name="Launchpad")).to_have_count(0)
        expect(page.get_by_role("button", name="Materialize all")).to_be_disabled()
        pages.keep("read-only-job")
        page = pages.open(f"{audit.url}/locations/{LOCATION}/sensors/new_raw_files")
        expect(page.locator('label[class*="formatSwitch"] input')).to_be_disabled()
        pages.keep("read-only-sensor")
        browsed = time.time()

    # 4. no planted PII value anywhere the UI showed or answered; the corpus holds what the pages showed
    corpus = "\n".join([*(_as_text(h) for h in pages.rendered), *(_as_text(b) for b in bodies)])
    assert version_id in corpus and ledger in corpus and len(bodies) > 20, (len(bodies), len(pages.rendered))
    leaked = set(matcher.findall(corpus))
    where = sorted({(p["kind"], p["file"], p["line"]) for p in planted if p["value"] in leaked})
    assert where == [], f"planted PII in the UI (kind, file, line; the values stay out of this message): {where[:20]}"

    print(f"timing: servers ready {ready - started:.0f} s, data_job {run_done - ready:.0f} s, "
          f"pages {browsed - run_done:.0f} s, total {time.time() - started:.0f} s; "
          f"{len(bodies)} GraphQL answers and frames, {len(pages.rendered)} pages checked for "
          f"{len(values)} planted values")
