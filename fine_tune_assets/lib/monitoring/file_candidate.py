"""A raw file as a drift candidate: put through the pipeline's own ingest, scrub and validation
stages in a throw-away data folder, so that it is compared exactly as a published version would be,
and nothing is published. The folder holds raw and scrubbed text while it exists (the trust zone of
``raw/``), sits under the data folder, and is deleted when the comparison is done."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..common.paths import DataPaths
from ..data.stages import DEFAULT_MAX_RECORD_CHARS, ingest_stage, scrub_stage, validate_stage
from ..data.validate import ValidationSettings


class CandidateFileError(ValueError):
    """The candidate file cannot be compared (names the file)."""


@contextmanager
def prepared_file(paths: DataPaths, file: Path, settings: dict, scrub_policy, tokenizer, tokenizer_id: str,
                  progress: Callable[[str], None] | None = None) -> Iterator[tuple[Path, dict]]:
    """Yields (the validated records' Parquet, the three stages' counts). ``settings``: the reference
    version's validation settings, so both sides pass the same gates."""
    if not file.is_file():
        raise CandidateFileError(f"{file}: no such file")
    paths.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".drift-candidate-", dir=paths.root) as tmp:
        work = DataPaths(Path(tmp))
        work.raw.mkdir()
        shutil.copy2(file, work.raw / file.name)
        for shared in ("mappings", "config"):  # the deployment's mappings and policies
            if (paths.root / shared).exists():
                os.symlink(paths.root / shared, work.root / shared)
        ingested = ingest_stage(work, progress=progress)
        scrubbed = scrub_stage(work, ingested, scrub_policy, progress=progress,
                               max_record_chars=int(settings.get("max_record_chars", DEFAULT_MAX_RECORD_CHARS)))
        known = ValidationSettings.__dataclass_fields__
        validated = validate_stage(work, scrubbed, tokenizer, tokenizer_id,
                                   ValidationSettings(**{k: v for k, v in settings.items() if k in known}),
                                   progress=progress)
        counts = {"inputs": ingested.summary.get("inputs"), "ingest_rejected": ingested.summary.get("rejected"),
                  "scrub_rejected": scrubbed.summary.get("rejected"),
                  "validate_rejected": validated.summary.get("rejected"), "accepted": validated.summary.get("records")}
        yield validated.records_path, counts
