"""The two things every input record becomes: an accepted record or a quarantine entry.

Both carry provenance (file, its sha256, line or row), so any record in any dataset version can be
traced back to its raw source, and every rejection says where it came from and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa


@dataclass
class Provenance:
    source_file: str  # path relative to raw/
    source_sha256: str
    source_line: int  # physical line (JSONL, CSV) or 1-based row (Parquet); 0 = the whole file
    source_format: str  # jsonl | csv | parquet | unknown


@dataclass
class Record:
    record_id: str
    messages: list[dict]
    provenance: Provenance
    mapping: str | None = None
    extra: dict = field(default_factory=dict)  # stage-specific columns (scrub provenance, token counts ...)

    def to_row(self) -> dict:
        return {
            "record_id": self.record_id,
            "messages_json": json.dumps(self.messages, ensure_ascii=False),
            **asdict(self.provenance),
            "mapping": self.mapping,
            **self.extra,
        }

    @classmethod
    def from_row(cls, row: dict) -> Record:
        known = {"record_id", "messages_json", "mapping", *Provenance.__dataclass_fields__}
        return cls(
            record_id=row["record_id"],
            messages=json.loads(row["messages_json"]),
            provenance=Provenance(**{k: row[k] for k in Provenance.__dataclass_fields__}),
            mapping=row.get("mapping"),
            extra={k: v for k, v in row.items() if k not in known},
        )


@dataclass
class Rejection:
    """A quarantined input. ``messages`` is only ever set to *scrubbed* content (never raw PII)."""

    record_id: str
    stage: str  # ingest | scrub | validate
    reason: str  # machine-readable code
    detail: str  # human-readable, never contains record content
    provenance: Provenance
    messages: list[dict] | None = None

    def to_row(self) -> dict:
        return {
            "record_id": self.record_id,
            "stage": self.stage,
            "reason": self.reason,
            "detail": self.detail,
            **asdict(self.provenance),
            "messages_json": None if self.messages is None else json.dumps(self.messages, ensure_ascii=False),
        }

    @classmethod
    def for_record(cls, record: Record, stage: str, reason: str, detail: str, scrubbed: bool) -> Rejection:
        return cls(record.record_id, stage, reason, detail, record.provenance,
                   record.messages if scrubbed else None)


PROVENANCE_FIELDS = [
    pa.field("source_file", pa.string()),
    pa.field("source_sha256", pa.string()),
    pa.field("source_line", pa.int64()),
    pa.field("source_format", pa.string()),
]

RECORD_SCHEMA = pa.schema(
    [pa.field("record_id", pa.string()), pa.field("messages_json", pa.string()), *PROVENANCE_FIELDS,
     pa.field("mapping", pa.string())]
)

QUARANTINE_SCHEMA = pa.schema(
    [pa.field("record_id", pa.string()), pa.field("stage", pa.string()), pa.field("reason", pa.string()),
     pa.field("detail", pa.string()), *PROVENANCE_FIELDS, pa.field("messages_json", pa.string())]
)
