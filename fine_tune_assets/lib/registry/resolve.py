"""What a person or a config names (a dataset version, an adapter) resolved to its registry row: the one
resolver that the CLI, the Dagster assets, lineage, promotion and the dossier share.

API:

- ``resolve_dataset_version(con, ref) -> dict``: a ``dataset_versions`` row.
- ``resolve_adapter(con, ref) -> dict``: an ``adapters`` row.
- ``NotFound`` (a ``LookupError``): nothing, or more than one thing, matches ``ref``. The message names
  the ref and says what to run next; callers map it (Dagster: ``dg.Failure``, CLI: exit 2).
- ``MIN_PREFIX``: the shortest id prefix accepted.

The rules (``ref`` is stripped and lower-cased first):

- ``latest``: for a dataset, the newest version that holds no erased record (an erasure can
  make an older version's content current again); for an adapter, the newest one.
- For an adapter, a stage name (``production``, ...) that has a holder: that holder. Stage names are
  tried before id prefixes, so a stage called ``beef`` wins over adapter ids starting with ``beef``.
- Otherwise a full id or a unique prefix of at least ``MIN_PREFIX`` (4) characters, git's shortest
  abbreviation: the registry holds tens to hundreds of versions and adapters, so a 4-character typo
  that happens to select another one is unlikely, and an ambiguous prefix is an error, never a guess.
  (Record ids, of which there are many and which erasure deletes for good, need more: see
  ``audit.lineage``.)
- An empty or blank ``ref`` is refused rather than read as ``latest``: an unset shell variable must not
  promote the newest adapter. Callers whose empty default means "the newest" pass ``LATEST`` themselves.
"""

from __future__ import annotations

from .connection import rows_as_dicts
from .stages import current_stages

MIN_PREFIX = 4
LATEST = "latest"


class NotFound(LookupError):
    """A dataset version or adapter reference matches nothing, or more than one row."""


def _normalized(ref: str | None, noun: str, listing: str) -> str:
    wanted = (ref or "").strip().lower()
    if not wanted:
        raise NotFound(f"no {noun} named: give an id, a unique prefix of at least {MIN_PREFIX} characters or "
                       f"'latest'; see `{listing}`")
    return wanted


def _by_prefix(con, table: str, key: str, ref: str, noun: str, listing: str, instead: str = "'latest'") -> dict:
    if len(ref) < MIN_PREFIX:
        raise NotFound(f"{noun} id {ref!r} is too short: give at least {MIN_PREFIX} characters (or {instead}); "
                       f"see `{listing}`")
    rows = rows_as_dicts(con.execute(f"SELECT * FROM {table} WHERE starts_with({key}, ?) ORDER BY created_at DESC",
                                     [ref]))
    if len(rows) == 1:
        return rows[0]
    more = "; give more characters" if rows else ""
    raise NotFound(f"{len(rows)} {noun}s match {ref!r}{more}; see `{listing}`")


def resolve_dataset_version(con, ref: str | None) -> dict:
    """The ``dataset_versions`` row named by ``ref`` (see the module docstring for the rules)."""
    wanted = _normalized(ref, "dataset version", "fine-tune-assets datasets list")
    if wanted == LATEST:
        rows = rows_as_dicts(con.execute(
            "SELECT * FROM dataset_versions v WHERE NOT EXISTS (SELECT 1 FROM dataset_records r JOIN erasures e "
            "ON r.record_id = e.record_id WHERE r.version_id = v.version_id) ORDER BY created_at DESC LIMIT 1"))
        if not rows:
            raise NotFound("0 dataset versions match 'latest': none published yet (or every one holds erased "
                           "records); run `make run` or materialize dataset_version")
        return rows[0]
    return _by_prefix(con, "dataset_versions", "version_id", wanted, "dataset version",
                      "fine-tune-assets datasets list")


def resolve_adapter(con, ref: str | None) -> dict:
    """The ``adapters`` row named by ``ref`` (see the module docstring for the rules)."""
    wanted = _normalized(ref, "adapter", "fine-tune-assets adapters list")
    if wanted == LATEST:
        rows = rows_as_dicts(con.execute("SELECT * FROM adapters ORDER BY created_at DESC LIMIT 1"))
        if not rows:
            raise NotFound("0 adapters match 'latest': none trained yet; materialize lora_adapter first")
        return rows[0]
    holder = current_stages(con).get(wanted)
    if holder is not None:
        rows = rows_as_dicts(con.execute("SELECT * FROM adapters WHERE adapter_id = ?", [holder]))
        if not rows:
            raise NotFound(f"stage {wanted!r} is held by adapter {holder[:12]}, which is no longer registered; "
                           "see `fine-tune-assets adapters stages`")
        return rows[0]
    return _by_prefix(con, "adapters", "adapter_id", wanted, "adapter", "fine-tune-assets adapters list",
                      instead="'latest' or a stage name")
