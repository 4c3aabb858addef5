"""The single Dagster entry point (``dagster dev -m fine_tune_assets.definitions``): every asset, check,
job, sensor and resource is discovered from the ``defs`` package, none is listed here."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
