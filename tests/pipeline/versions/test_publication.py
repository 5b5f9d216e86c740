"""A version is published atomically: an import killed mid-write (its files written, its
record not) leaves the set as it was, readers and retention skip it, and retention removes
its files once no import can still be writing them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from domain.errors import FeatureSetNotFound
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.versions.importing import Columns, write_partitioned

COLUMNS = Columns("timestamp", "load_kw", None)


def put(store: FeatureStore, name: str, hours: int) -> str:
    schema = store.put(
        name,
        load_series(seed=1, hours=hours),
        timestamp_column="timestamp",
        target_column="load_kw",
    )
    return schema.pinned_version


def interrupted_import(store: FeatureStore, name: str, started: datetime) -> str:
    """What an import killed before it published leaves: its version's data files, written
    by the importer itself, and one Parquet file cut short; no record. Returns the version."""
    version = f"{started:%Y%m%dT%H%M%S%fZ}-0badc0de"
    data = store.root / name / "versions" / version / "data"
    write_partitioned(load_series(seed=2, hours=500), COLUMNS, data)
    (data / "part_bucket=0" / "part_year=2024" / "part-9.parquet").write_bytes(b"PAR1\x15\x00")
    return version


def test_an_import_killed_mid_write_leaves_the_set_at_its_previous_version(
    store: FeatureStore,
) -> None:
    first = put(store, "s", 48)
    debris = interrupted_import(store, "s", datetime.now(UTC))

    [listed] = store.list()
    assert (listed.name, listed.pinned_version, listed.rows) == ("s", first, 48)
    assert store.schema("s").pinned_version == first
    assert len(store.load("s").data) == 48
    assert [v.pinned_version for v in store.versions("s")] == [first]
    with pytest.raises(FeatureSetNotFound):
        store.load("s", version=debris)

    second = put(store, "s", 72)  # the next import publishes as usual
    assert [v.pinned_version for v in store.versions("s")] == [first, second]
    assert len(store.load("s").data) == 72


def test_retention_skips_an_interrupted_import_then_removes_its_files(
    store: FeatureStore,
) -> None:
    first = put(store, "s", 48)
    now = datetime.now(UTC)
    debris = interrupted_import(store, "s", now)
    versions = store.root / "s" / "versions"

    # It may be an import still writing: kept.
    assert store.remove_unreferenced(set(), now + timedelta(hours=2), timedelta(hours=1)) == []
    assert debris in versions.children()

    removed = store.remove_unreferenced(set(), now + timedelta(days=2), timedelta(hours=1))
    assert [r.rsplit("@", 1)[1] for r in removed] == [debris]
    assert versions.children() == [first]
    assert [v.pinned_version for v in store.versions("s")] == [first]
    assert len(store.load("s").data) == 48


def test_an_interrupted_first_import_shows_no_set_and_goes_with_retention(
    store: FeatureStore,
) -> None:
    now = datetime.now(UTC)
    interrupted_import(store, "new", now)
    assert store.list() == []
    assert not store.exists("new")
    with pytest.raises(FeatureSetNotFound):
        store.versions("new")

    assert store.remove_unreferenced(set(), now, timedelta(hours=1)) == []
    assert store.root.children() == ["new"]
    assert len(store.remove_unreferenced(set(), now + timedelta(days=2), timedelta(hours=1))) == 1
    assert store.root.children() == []


def test_the_grace_period_runs_from_when_the_successor_was_published(
    store: FeatureStore,
) -> None:
    """An import that took long supersedes its predecessor when it ends, not when it began:
    a reader that looked the old version up just before has the whole grace period."""
    first = put(store, "s", 48)
    second = store.put(
        "s", load_series(seed=1, hours=72), timestamp_column="timestamp", target_column="load_kw"
    )
    published = datetime.now(UTC)  # at or after its publication
    grace = timedelta(hours=1)
    started = datetime.fromisoformat(second.created_at)
    # A grace period after the successor began, but not after it was published.
    assert (
        store.remove_unreferenced(set(), started + grace + timedelta(microseconds=1), grace) == []
    )
    assert [v.pinned_version for v in store.versions("s")] == [first, second.pinned_version]

    removed = store.remove_unreferenced(set(), published + grace, grace)
    assert [r.rsplit("@", 1)[1] for r in removed] == [first]


def test_a_versioned_set_stored_before_records_reads_and_is_adopted(tmp_path: Path) -> None:
    """The layout before records: ``schema.json`` names the current version, and each
    version's own ``schema.json`` sits in its directory; a directory without one, or whose
    version is newer than the current one, is an import that never finished."""
    store = FeatureStore(Location(str(tmp_path)))
    root = store.root / "s"
    versions: list[str] = []
    for index, hours in enumerate((30, 40, 50)):
        created = datetime(2025, 1, 1 + index, tzinfo=UTC)
        version = f"{created:%Y%m%dT%H%M%S%fZ}-0000000{index}"
        write_partitioned(
            load_series(seed=1, hours=hours), COLUMNS, root / "versions" / version / "data"
        )
        schema = {
            "name": "s",
            "timestamp_column": "timestamp",
            "target_column": "load_kw",
            "series_column": None,
            "covariates": ["temperature_c", "humidity_pct"],
            "label_column": None,
            "rows": hours,
            "start": "2024-01-01T00:00:00+00:00",
            "end": str(pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=hours - 1)),
            "created_at": created.isoformat(),
            "version": version,
        }
        (root / "versions" / version / "schema.json").write_text(json.dumps(schema))
        versions.append(version)
    # The third import was killed between its own schema.json and the set's.
    (root / "schema.json").write_text((root / "versions" / versions[1] / "schema.json").read_text())
    interrupted_import(store, "s", datetime(2025, 1, 5, tzinfo=UTC))

    def shown() -> list[str]:
        return [v.pinned_version for v in store.versions("s")]

    assert shown() == versions[:2]
    assert store.schema("s").rows == 40
    assert len(store.load("s", version=versions[0]).data) == 30

    later = datetime.now(UTC) + timedelta(days=2)
    removed = store.remove_unreferenced({versions[0]}, later, timedelta(hours=1))
    assert sorted(r.rsplit("@", 1)[1] for r in removed) == sorted(
        [versions[2], "20250105T000000000000Z-0badc0de"]
    )
    assert "schema.json" not in root.children()  # adopted: a record per version
    assert shown() == versions[:2]
    assert store.schema("s").rows == 40
    assert len(store.load("s", version=versions[0]).data) == 30
