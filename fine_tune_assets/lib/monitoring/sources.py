"""Where the two sides of a drift evaluation come from.

* The reference: the train split of the dataset version behind an adapter, by default the one in
  ``production`` (the newest adapter when no adapter holds it), or a dataset version named directly.
* The window: the records of a candidate dataset version that are not in the reference version
  (neither split: its held-out records are not new data) and that no earlier evaluation against the
  same reference judged (tumbling windows: each record is judged once, so consecutive windows are
  disjoint and a signal can be confirmed by the next one). Record ids are content hashes, so this is
  a set difference, done by DuckDB on the Parquet files; only the capped, hash-ordered samples are
  read into memory, so a split of any size costs one scan.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..registry.connection import rows_as_dicts
from ..registry.resolve import NotFound, resolve_adapter, resolve_dataset_version
from ..registry.stages import current_stages

PRODUCTION = "production"


@dataclass(frozen=True)
class Reference:
    version_id: str
    path: Path
    adapter_id: str | None
    how: str  # how it was chosen, for the report

    def to_dict(self) -> dict:
        return {"version_id": self.version_id, "adapter_id": self.adapter_id, "how": self.how}


def resolve_reference(con, ref: str = PRODUCTION) -> Reference:
    """``production`` (or another stage), ``latest`` (the newest adapter), an adapter id, or a dataset
    version id; an adapter stands for the dataset version it was trained on."""
    wanted = (ref or PRODUCTION).strip().lower()
    stages = current_stages(con)
    if wanted == PRODUCTION and PRODUCTION not in stages:
        adapter = resolve_adapter(con, "latest")
        how = "no adapter holds production: the newest adapter"
    else:
        try:
            adapter = resolve_adapter(con, wanted)
        except NotFound:
            version = resolve_dataset_version(con, wanted)
            return Reference(version["version_id"], Path(version["path"]), None, "dataset version named")
        how = f"adapter {wanted}" if wanted == "latest" or wanted in stages else "adapter named"
    version = resolve_dataset_version(con, adapter["dataset_version"])
    return Reference(version["version_id"], Path(version["path"]), adapter["adapter_id"], how)


def _hash_key(seed: int, salt: str) -> str:
    # the same order as ``drift.subsample``: sha256("salt:seed:record_id"), hex, ascending
    return f"sha256('{salt}:{int(seed)}:' || record_id)"


def _rows(con, sql: str, params: list) -> list[dict]:
    out = []
    for r in rows_as_dicts(con.execute(sql, params)):
        messages = json.loads(r["messages_json"]) if "messages_json" in r else [dict(m) for m in r["messages"]]
        out.append({"record_id": r["record_id"], "messages": messages})
    return out


def reference_sample(reference: Reference, n: int, seed: int) -> tuple[list[dict], int]:
    """(at most ``n`` train records of the reference, hash-ordered; how many it has in all)."""
    train = str(reference.path / "train.parquet")
    with duckdb.connect() as con:
        total = con.execute("SELECT count(*) FROM read_parquet(?)", [train]).fetchone()[0]
        rows = _rows(con, f"SELECT record_id, messages FROM read_parquet(?) ORDER BY {_hash_key(seed, 'reference')} "
                          "LIMIT ?", [train, n])
    return rows, total


def version_files(folder: Path) -> list[Path]:
    """A dataset version's record files: both splits (the window is every new record)."""
    files = [folder / f"{split}.parquet" for split in ("train", "eval") if (folder / f"{split}.parquet").exists()]
    if not files:
        raise NotFound(f"dataset version folder {folder} has no train.parquet or eval.parquet")
    return files


def window_sample(reference: Reference, files: list[Path], n: int, seed: int,
                  judged: Collection[str] = ()) -> tuple[list[dict], int, int]:
    """(at most ``n`` records of ``files`` that the reference version lacks and no earlier evaluation
    judged, hash-ordered; how many records are new to the reference; how many of those were judged).
    ``files``: a version's splits, or a validated stage's records (``messages_json``)."""
    import pyarrow as pa

    column = "messages_json" if _has(files[0], "messages_json") else "messages"
    new = ("FROM read_parquet(?) c WHERE NOT EXISTS "
           "(SELECT 1 FROM read_parquet(?) r WHERE r.record_id = c.record_id)")
    unjudged = f"{new} AND NOT EXISTS (SELECT 1 FROM judged j WHERE j.record_id = c.record_id)"
    # new to the reference version as a whole: its held-out records are not new data
    params = [[str(f) for f in files], [str(f) for f in version_files(reference.path)]]
    with duckdb.connect() as con:
        con.register("judged", pa.table({"record_id": pa.array(sorted(judged), pa.string())}))
        total, judged_new = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM judged j WHERE j.record_id = c.record_id)) "
            f"{new}", params).fetchone()
        rows = _rows(con, f"SELECT record_id, {column} {unjudged} ORDER BY {_hash_key(seed, 'window')} LIMIT ?",
                     [*params, n])
    return rows, total, judged_new


def _has(path: Path, column: str) -> bool:
    import pyarrow.parquet as pq

    return column in pq.read_schema(path).names
