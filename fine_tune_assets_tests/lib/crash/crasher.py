"""A warm child process that publishes through the real code and SIGKILLs itself at a chosen step.

    python -m fine_tune_assets_tests.lib.crash.crasher      (commands on stdin, replies on stdout)

It imports the package once (a few seconds) and then serves commands, one JSON line each: for every
command it forks a fresh worker, which publishes a dataset version or an adapter with the real
``publish_dataset`` / ``publish_adapter`` (through ``factories``), and answers with how the worker ended.
The server itself never opens a registry, a file or a thread pool of its own, so each worker starts
from a clean image of the imported package, as a freshly started process would.

While the publishing function runs, the worker wraps the primitives a publication is made of:
file writes (``open``/``Path.write_*`` in a writing mode, pyarrow's ``ParquetWriter.write_table`` and
``close``), ``os.fsync``, ``os.replace``/``os.rename``, ``os.unlink``/``os.rmdir``, ``shutil.rmtree``
(with one more point after its first removal: a folder half deleted) and the registry's ``BEGIN`` and
``COMMIT``. Every call gives two kill points, before and after the real call. The worker writes each
point's label to its log as it passes it; at point number ``kill`` it SIGKILLs itself. A command without
``kill`` records every point (a publication that runs to the end): the test enumerates the points from
it, so a step added to the code is a new kill point without touching the test.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import shutil
import signal
import sys
import traceback
from pathlib import Path

# What the crash tests publish: two conversations (one record per split with eval_fraction 0.5 or
# not, either way every writer runs), and one adapter's weights.
CONVERSATIONS = [[{"role": "user", "content": f"crash question {i}"},
                  {"role": "assistant", "content": f"crash answer {i}"}] for i in range(2)]
WEIGHTS = b"crash-weights"
KILLED = "KILL"
DONE = "DONE"


def publish_dataset_once(paths, scratch: Path) -> str:
    from fine_tune_assets_tests.factories import publish_test_dataset

    scratch.mkdir(parents=True, exist_ok=True)
    return publish_test_dataset(paths, scratch, conversations=CONVERSATIONS)


def publish_adapter_once(paths, scratch: Path, version: str) -> str:
    from fine_tune_assets_tests.factories import publish_test_adapter

    scratch.mkdir(parents=True, exist_ok=True)
    return publish_test_adapter(paths, scratch, version, weights=WEIGHTS)


# ------------------------------------------------------------------------------------------------ labels

_UUID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{12})[0-9a-f]{52}(?![0-9a-f])")
_PID = re.compile(r"\.\d+\.tmp\b")


def normalized(text: str, root: Path) -> str:
    """A path or label as it reads in every run: relative to the test's folder, random parts named."""
    text = text.replace(f"{root}/", "")
    return _PID.sub(".<pid>.tmp", _ID.sub(r"\1", _UUID.sub("<uuid>", text)))


# ------------------------------------------------------------------------------------------------ faults


class Faults:
    """Wraps the primitives (``install``); ``armed`` while the publishing function runs."""

    def __init__(self, log, root: Path, kill: int | None):
        self.log, self.root, self.kill = log, root, kill
        self.armed = False
        self.inside: str | None = None  # the wrapped call running now: its own inner calls are not steps
        self.partial: str | None = None  # an rmtree whose first removal is still to come
        self.count = 0

    def point(self, label: str) -> None:
        self.log.write(label + "\n")
        if self.count == self.kill:
            self.log.write(f"{KILLED}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        self.count += 1

    def step(self, kind: str, target, call):
        if not self.armed or self.inside:
            result = call()
            if self.partial and kind in ("unlink", "rmdir"):
                label, self.partial = self.partial, None
                self.point(f"during rmtree {label} (first entry removed)")
            return result
        label = f"{kind} {normalized(str(target), self.root)}".rstrip()
        self.point(f"before {label}")
        self.inside = label
        try:
            result = call()
        finally:
            self.inside = None
        self.point(f"after {label}")
        return result

    def install(self) -> None:
        import pyarrow.parquet as pq

        from fine_tune_assets.lib.registry import backends

        real_open, real_replace, real_rename = builtins.open, os.replace, os.rename
        real_fsync, real_unlink, real_rmdir, real_rmtree = os.fsync, os.unlink, os.rmdir, shutil.rmtree
        real_write_table, real_close = pq.ParquetWriter.write_table, pq.ParquetWriter.close
        real_open_connection, real_pg_execute = backends.open_connection, backends.PostgresConnection.execute
        faults = self

        def watched_open(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if faults.armed and any(c in mode for c in "wax+") and isinstance(file, str | os.PathLike):
                return WatchedFile(faults, handle, file)
            return handle

        def fsync(fd):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = f"fd {fd}"
            return faults.step("fsync", target, lambda: real_fsync(fd))

        def rmtree(path, *args, **kwargs):
            if not faults.armed or faults.inside:
                return real_rmtree(path, *args, **kwargs)
            faults.partial = normalized(str(path), faults.root)
            try:
                return faults.step("rmtree", path, lambda: real_rmtree(path, *args, **kwargs))
            finally:
                faults.partial = None

        def write_table(writer, table, *args, **kwargs):
            return faults.step("parquet write_table", writer.where,
                               lambda: real_write_table(writer, table, *args, **kwargs))

        def close(writer):
            if not writer.is_open:
                return real_close(writer)
            return faults.step("parquet close", writer.where, lambda: real_close(writer))

        def registry_statement(sql: str, run):
            word = sql.split(None, 1)[0].upper() if sql.strip() else ""
            return faults.step(f"registry {word}", "", run) if word in ("BEGIN", "COMMIT") else run()

        class WatchedPostgres(backends.PostgresConnection):
            def execute(self, sql, params=None):
                return registry_statement(sql, lambda: real_pg_execute(self, sql, params))

        def open_connection(target, read_only, timeout_s):
            con = real_open_connection(target, read_only, timeout_s)
            if backends.postgres(con):
                con.__class__ = WatchedPostgres
                return con
            return WatchedDuckDB(con, registry_statement)

        builtins.open = io.open = watched_open
        os.replace = lambda src, dst, **kw: faults.step("replace", f"{src} -> {dst}",
                                                        lambda: real_replace(src, dst, **kw))
        os.rename = lambda src, dst, **kw: faults.step("rename", f"{src} -> {dst}", lambda: real_rename(src, dst, **kw))
        os.fsync = fsync
        os.unlink = os.remove = lambda path, **kw: faults.step("unlink", path, lambda: real_unlink(path, **kw))
        os.rmdir = lambda path, **kw: faults.step("rmdir", path, lambda: real_rmdir(path, **kw))
        shutil.rmtree = rmtree
        pq.ParquetWriter.write_table, pq.ParquetWriter.close = write_table, close
        backends.open_connection = open_connection

    def arming(self, function):
        """``function`` with the faults armed while it runs."""
        def armed(*args, **kwargs):
            self.armed = True
            try:
                return function(*args, **kwargs)
            finally:
                self.armed = False
        return armed


class WatchedFile:
    """A file opened for writing: each ``write`` is a step."""

    def __init__(self, faults: Faults, handle, path):
        self._faults, self._handle, self._path = faults, handle, path

    def write(self, data):
        return self._faults.step("write", self._path, lambda: self._handle.write(data))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name):
        return getattr(self._handle, name)


class WatchedDuckDB:
    """A DuckDB connection whose ``BEGIN`` and ``COMMIT`` are steps (the C type cannot be patched)."""

    def __init__(self, con, statement):
        self._con, self._statement = con, statement

    def execute(self, sql, *args):
        return self._statement(sql, lambda: self._con.execute(sql, *args))

    def __getattr__(self, name):
        return getattr(self._con, name)


# ------------------------------------------------------------------------------------------------ worker


def work(command: dict, log) -> str:
    """Publish what ``command`` says, armed; returns the dataset version or adapter id."""
    from fine_tune_assets.lib.common.paths import REGISTRY_URL_ENV, DataPaths
    from fine_tune_assets_tests import factories

    if command.get("registry_url"):
        os.environ[REGISTRY_URL_ENV] = command["registry_url"]
    else:
        os.environ.pop(REGISTRY_URL_ENV, None)
    faults = Faults(log, Path(command["root"]), command.get("kill"))
    faults.install()
    factories.publish_dataset = faults.arming(factories.publish_dataset)
    factories.publish_adapter = faults.arming(factories.publish_adapter)
    paths = DataPaths(Path(command["data_dir"]))
    if command["publish"] == "dataset":
        return publish_dataset_once(paths, Path(command["scratch"]))
    return publish_adapter_once(paths, Path(command["scratch"]), command["version"])


def run_forked(command: dict) -> dict:
    """One command in a fresh fork: {points: [labels passed], killed: bool, result, signal, exit_code, error}."""
    log_path = Path(command["log"])
    log_path.unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        with open(log_path, "a", buffering=1) as log:
            try:
                log.write(f"{DONE} {work(command, log)}\n")
                code = 0
            except BaseException:
                log.write("ERROR " + json.dumps(traceback.format_exc()) + "\n")
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    reply = {"points": [], "killed": False, "result": None, "error": None,
             "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
             "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}
    for line in lines:
        if line == KILLED:
            reply["killed"] = True
        elif line.startswith(f"{DONE} "):
            reply["result"] = line.split(" ", 1)[1]
        elif line.startswith("ERROR "):
            reply["error"] = json.loads(line.split(" ", 1)[1])
        else:
            reply["points"].append(line)
    return reply


def serve() -> None:
    import fine_tune_assets_tests.factories  # noqa: F401  (the slow import, once, before any fork)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run_forked(json.loads(line))), flush=True)


if __name__ == "__main__":
    serve()


class Crasher:
    """The test's side: starts the server and sends it commands (``run``)."""

    def __init__(self):
        import subprocess

        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def run(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command, default=str) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
