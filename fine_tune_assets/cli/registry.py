"""The registry as the read-only commands open it: briefly, never for writing (an absent file reads as empty)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fine_tune_assets.lib.common.paths import DataPaths

T = TypeVar("T")


def read_registry(query: Callable[..., T]) -> T:
    """``query(con)`` on a read-only connection to the registry of ``$FINE_TUNE_DATA_DIR``."""
    from fine_tune_assets.lib.registry.connection import connect

    with connect(DataPaths.from_env().registry, read_only=True) as con:
        return query(con)


def register(sub) -> None:
    p = sub.add_parser("registry", help="the registry itself: copy it to PostgreSQL for a shared deployment",
                       description="Copy the registry (metadata and ledger; the data files stay where they are).")
    actions = p.add_subparsers(dest="action", required=True)
    m = actions.add_parser("migrate", help="copy a registry, ledger included, into an empty one",
                           description="Copy every table, rows as they are, into an empty registry; the copy's "
                                       "ledger head must equal the source's and its chain must verify.")
    m.add_argument("--to", required=True, metavar="URL|FILE",
                   help="the empty target: postgresql://user@host:port/database, or a DuckDB file")
    m.add_argument("--from", dest="source", metavar="URL|FILE",
                   help="the source (default: the DuckDB file of $FINE_TUNE_DATA_DIR, data/registry.duckdb)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_migrate)


def _migrate(args) -> int:
    from fine_tune_assets.lib.registry.backends import RegistryUnavailable, display
    from fine_tune_assets.lib.registry.connection import registry_exists
    from fine_tune_assets.lib.registry.migrate import MigrationError, migrate

    from .output import UsageError, answer

    def call():
        source = args.source or DataPaths.from_env().registry_file
        if not registry_exists(source):
            raise UsageError(f"no registry at {display(source)}: nothing to copy")
        return migrate(source, args.to)

    def text(result) -> str:
        rows = ", ".join(f"{table} {n}" for table, n in result.rows.items() if n)
        return (f"copied {result.source} -> {result.target}: {rows or 'no rows'}\n"
                f"ledger: {result.ledger_events} events, head {result.head or '-'} on both; chain verified\n"
                f"next: export FINE_TUNE_REGISTRY_URL={result.target} (with its password) and run "
                "`fine-tune-assets verify`")

    return answer(args, call, text, errors=(MigrationError, RegistryUnavailable))
