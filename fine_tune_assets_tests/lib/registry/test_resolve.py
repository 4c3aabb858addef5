"""The one resolver of dataset versions and adapters, on a real registry: ids, prefixes, latest, stages, refusals."""

import pytest

from fine_tune_assets.lib.audit.promotion import promote
from fine_tune_assets.lib.common.paths import DataPaths
from fine_tune_assets.lib.registry.connection import connect
from fine_tune_assets.lib.registry.resolve import MIN_PREFIX, NotFound, resolve_adapter, resolve_dataset_version
from fine_tune_assets_tests.factories import publish_evaluated_adapters


@pytest.fixture
def two_adapters(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    return paths, *publish_evaluated_adapters(paths, tmp_path, 2)


def test_ids_prefixes_latest_and_stage_names(two_adapters):
    paths, version, (first, second) = two_adapters
    promote(paths.registry, first, "production", "passes gate", user="alice")
    with connect(paths.registry, read_only=True) as con:
        assert resolve_dataset_version(con, "latest")["version_id"] == version
        assert resolve_dataset_version(con, version[:MIN_PREFIX].upper())["version_id"] == version
        assert resolve_adapter(con, "latest")["adapter_id"] == second
        assert resolve_adapter(con, f"  {first}  ")["adapter_id"] == first
        assert resolve_adapter(con, "production")["adapter_id"] == first


@pytest.mark.parametrize("ref, message", [
    ("", "no adapter named"),
    ("   ", "no adapter named"),
    (None, "no adapter named"),
    ("abc", "too short"),
    ("ffff", "0 adapters match 'ffff'"),
    ("staging", "0 adapters match 'staging'"),  # a stage nobody holds is not a name
])
def test_refusals_name_the_reference_and_the_next_step(two_adapters, ref, message):
    paths, _, _ = two_adapters
    with connect(paths.registry, read_only=True) as con, pytest.raises(NotFound, match=message) as caught:
        resolve_adapter(con, ref)
    assert "fine-tune-assets adapters list" in str(caught.value)


def test_a_blank_reference_never_promotes_the_newest_adapter(two_adapters):
    paths, _, _ = two_adapters
    with pytest.raises(LookupError, match="no adapter named"):
        promote(paths.registry, "", "production", "an unset shell variable", user="alice")
    with connect(paths.registry, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM adapter_stages").fetchone()[0] == 0
