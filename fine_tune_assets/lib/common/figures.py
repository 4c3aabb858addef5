"""Writing matplotlib figures the way every report here does: whole or not at all, same bytes for the
same figure."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def save_png(fig, path: Path) -> Path:
    """Save ``fig`` (a bare ``Figure`` on the Agg canvas) as ``path``: no Software metadata (same
    figure, same bytes), via a temp file and ``os.replace`` so that a reader never sees half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", metadata={"Software": None})
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; reports are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
