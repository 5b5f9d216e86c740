"""Appending rows makes a new version that shares the previous one's files: rows the set
has are refused or replaced, compaction keeps every row, retention keeps shared files, and
appends at once all land."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from domain.errors import (
    Conflict,
    FeatureSetNotFound,
    InvalidColumns,
    InvalidFeatureSet,
    InvalidRequest,
)
from pipeline.storage import Location
from pipeline.store import appending, compaction
from pipeline.store.compaction import merge_from
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore
from pipeline.versions import publication
from pipeline.versions.schema import DataPart

KEYS = ["meter", "timestamp"]
COLUMNS = {"timestamp_column": "timestamp", "target_column": "load_kw", "series_column": "meter"}


def meters(start: str, hours: int, meters: int = 5) -> pd.DataFrame:
    """Hourly rows of ``meters`` meters from ``start``: load and a temperature."""
    stamps = pd.date_range(start, periods=hours, freq="h", tz="UTC")
    rng = np.random.default_rng(hours)
    return pd.DataFrame(
        {
            "meter": np.repeat([f"m{i}" for i in range(meters)], hours),
            "timestamp": np.tile(stamps, meters),
            "load_kw": rng.uniform(10, 100, meters * hours).round(3),
            "temperature_c": rng.normal(10, 5, meters * hours).round(2),
        }
    )


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame's rows in key order, for comparing what two reads hold."""
    ordered = frame.sort_values(KEYS).reset_index(drop=True)
    ordered["meter"] = ordered["meter"].astype(str)
    ordered["timestamp"] = ordered["timestamp"].astype("datetime64[ns, UTC]")
    return ordered[["meter", "timestamp", "load_kw", "temperature_c"]]


def version_files(store: FeatureStore, name: str, version: str | None) -> list[str]:
    """The files under a version's directory, relative to it."""
    directory = store.root / name / "versions" / str(version)
    found = directory.filesystem.get_file_info(pafs.FileSelector(directory.path, recursive=True))
    return sorted(
        info.path[len(directory.path) + 1 :] for info in found if info.type == pafs.FileType.File
    )


@pytest.fixture
def local(tmp_path: Path) -> FeatureStore:
    return FeatureStore(Location(str(tmp_path / "features")))


def test_an_append_is_a_version_that_adds_one_file_to_the_previous_ones(
    store: FeatureStore,
) -> None:
    first = store.put("s", meters("2024-12-30", 48), **COLUMNS)
    day = meters("2025-01-01", 24)
    appended = store.append("s", day)

    assert (appended.operation, appended.previous_version) == ("append", first.version)
    assert (appended.appended_rows, appended.replaced_rows) == (120, 0)
    assert (appended.rows, appended.start, appended.end) == (
        240 + 120,
        first.start,
        "2025-01-01T23:00:00+00:00",
    )
    assert store.schema("s") == appended
    assert [v.pinned_version for v in store.versions("s")] == [first.version, appended.version]
    # Nothing of the set was rewritten: the new version wrote one file, of the day's rows.
    assert version_files(store, "s", appended.version) == ["data.parquet"]
    assert [p.path for p in appended.data_parts()] == [
        first.data_path(),
        f"versions/{appended.version}/data.parquet",
    ]
    everything = pd.concat([meters("2024-12-30", 48), day])
    pd.testing.assert_frame_equal(rows(store.load("s").data), rows(everything))
    assert len(store.load("s", version=first.version).data) == 240

    # Every reader sees the parts as one set: ranges, series, buckets, keys, batches.
    start = datetime(2024, 12, 31, 12, tzinfo=UTC)
    end = datetime(2025, 1, 1, 6, tzinfo=UTC)
    frame = store.load("s", end, start=start, series=["m1", "m3"], columns=["load_kw"])
    assert len(frame.data) == 2 * 18
    assert frame.data["meter"].is_monotonic_increasing
    keys = store.keys("s")
    assert (keys.rows, keys.series) == (360, ("m0", "m1", "m2", "m3", "m4"))
    assert str(keys.last) == "2025-01-01 23:00:00+00:00"
    by_bucket = [store.load("s", bucket=b).data for b in keys.buckets]
    assert sum(len(f) for f in by_bucket) == 360
    assert sum(len(b) for b in store.batches("s", ["load_kw"])) == 360


def test_rows_the_set_has_are_refused_naming_the_first(store: FeatureStore) -> None:
    first = store.put("s", meters("2025-01-01", 48), **COLUMNS)
    overlapping = meters("2025-01-02", 48)  # its first day is in the set
    with pytest.raises(InvalidFeatureSet) as refused:
        store.append("s", overlapping)
    assert refused.value.field == "body"
    assert "series 'm0' already has a row at 2025-01-02T00:00:00+00:00" in refused.value.message
    assert "and 119 more rows" in refused.value.message
    assert store.versions("s") == [first]
    assert (store.root / "s" / "versions").children() == [first.version]  # nothing left


def test_replace_corrects_the_rows_and_counts_them(store: FeatureStore) -> None:
    first = store.put("s", meters("2025-01-01", 48), **COLUMNS)
    second = store.append("s", meters("2025-01-03", 24))
    # Corrections of rows of both earlier versions' files, and two new hours.
    fixes = pd.concat([meters("2025-01-02T23:00", 2), meters("2025-01-04", 1)])
    fixes["load_kw"] = -1.0
    fixed = store.append("s", fixes, on_conflict="replace")

    assert (fixed.appended_rows, fixed.replaced_rows) == (15, 10)
    assert fixed.rows == 240 + 120 + 5
    data = store.load("s").data
    assert len(data) == fixed.rows
    assert not data.duplicated(KEYS).any()
    corrected = data[data["load_kw"] == -1.0]
    assert len(corrected) == 15
    assert set(corrected["timestamp"].astype(str)) == {
        "2025-01-02 23:00:00+00:00",
        "2025-01-03 00:00:00+00:00",
        "2025-01-04 00:00:00+00:00",
    }
    # The versions it was made on still hold their rows.
    assert len(store.load("s", version=second.version).data) == 360
    assert (store.load("s", version=first.version).data["load_kw"] > 0).all()
    # The replaced day's one file goes from the parts; the base's files touched are
    # excluded and their other rows copied (copy-on-write of what was touched only).
    assert second.data_parts()[1] not in fixed.data_parts()
    assert fixed.excluded
    assert all(f.startswith(first.data_path()) for f in fixed.excluded)
    assert "kept.parquet" in version_files(store, "s", fixed.version)


def test_an_append_must_have_the_set_s_columns_and_types(store: FeatureStore) -> None:
    store.put("s", meters("2025-01-01", 24), **COLUMNS)
    day = meters("2025-01-02", 24)
    with pytest.raises(InvalidColumns) as wrong:
        store.append("s", day.drop(columns=["temperature_c"]).assign(humidity=1.0))
    assert wrong.value.problems == {
        "temperature_c": "missing: the set has this column",
        "humidity": "not a column of the set",
    }
    with pytest.raises(InvalidColumns) as typed:
        store.append("s", day.assign(temperature_c=day["temperature_c"] > 10))
    assert list(typed.value.problems) == ["temperature_c"]
    with pytest.raises(InvalidFeatureSet):  # as an upload: covariates are numbers
        store.append("s", day.assign(temperature_c="warm"))
    # Whole numbers fit a column of decimals.
    widened = store.append("s", day.assign(temperature_c=day["temperature_c"].round().astype(int)))
    assert widened.appended_rows == 120
    assert len(store.versions("s")) == 2


def test_decimals_do_not_fit_a_set_of_whole_numbers(store: FeatureStore) -> None:
    whole = meters("2025-01-01", 24).assign(load_kw=7)
    store.put("s", whole, **COLUMNS)
    day = meters("2025-01-02", 24)
    with pytest.raises(InvalidColumns) as refused:
        store.append("s", day.assign(load_kw=2.5))
    assert list(refused.value.problems) == ["load_kw"]
    assert store.append("s", day.assign(load_kw=3.0)).rows == 240


def test_a_csv_or_parquet_file_appends_as_an_upload_would(store: FeatureStore) -> None:
    store.put("s", meters("2025-01-01", 24), **COLUMNS)
    csv = io.BytesIO(meters("2025-01-02", 24).to_csv(index=False).encode())
    assert store.append("s", csv).appended_rows == 120
    parquet = io.BytesIO()
    meters("2025-01-03", 24).to_parquet(parquet, index=False)
    parquet.seek(0)
    assert store.append("s", parquet).rows == 360


def test_what_cannot_be_appended_to(store: FeatureStore) -> None:
    with pytest.raises(FeatureSetNotFound):
        store.append("missing", meters("2025-01-01", 2))
    store.put("s", meters("2025-01-01", 2), **COLUMNS)
    with pytest.raises(InvalidRequest):
        store.append("s", meters("2025-01-02", 2), on_conflict="overwrite")
    # A set stored before versions: one file beside its schema.
    legacy = {
        "name": "old",
        "timestamp_column": "timestamp",
        "target_column": "load_kw",
        "series_column": "meter",
        "covariates": ["temperature_c"],
        "label_column": None,
        "rows": 10,
        "start": "2025-01-01T00:00:00+00:00",
        "end": "2025-01-01T01:00:00+00:00",
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    table = pa.Table.from_pandas(meters("2025-01-01", 2), preserve_index=False)
    (store.root / "old" / "data.parquet").write_parquet(table)
    (store.root / "old" / "schema.json").write_text(json.dumps(legacy))
    assert len(store.load("old").data) == 10
    with pytest.raises(Conflict, match="stored before versions"):
        store.append("old", meters("2025-01-02", 2))


def test_compaction_keeps_every_row_in_fewer_parts(local: FeatureStore) -> None:
    store = local
    store.put("s", meters("2025-01-01", 24 * 8), **COLUMNS)
    for day in range(8, 20):
        store.append("s", meters(f"2025-01-{day + 1:02d}", 24))
        store.compact("s")
    tiered = store.schema("s")
    assert 2 <= len(tiered.data_parts()) <= 4  # the base and log2(12 days) at most
    assert [v.operation for v in store.versions("s")].count("compaction") >= 3
    store.append("s", meters("2025-01-05", 24).assign(load_kw=0.0), on_conflict="replace")
    before = store.schema("s")
    full = store.compact("s", full=True)
    assert full is not None
    assert (full.operation, full.previous_version, full.rows) == (
        "compaction",
        before.version,
        before.rows,
    )
    assert (len(full.data_parts()), full.excluded) == (1, [])
    pd.testing.assert_frame_equal(
        rows(store.load("s").data), rows(store.load("s", version=before.version).data)
    )
    assert len(store.load("s").data) == 5 * 24 * 20
    assert store.compact("s", full=True) is None  # nothing left to merge


def test_large_parts_are_partitioned_as_an_import(
    local: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local
    monkeypatch.setattr(appending, "FLAT_MAX_ROWS", 50)
    monkeypatch.setattr(compaction, "FLAT_MAX_ROWS", 50)
    store.put("s", meters("2024-12-31", 48), **COLUMNS)
    big = store.append("s", meters("2025-01-02", 24))
    assert not big.data_parts()[-1].flat
    assert "data.parquet" not in version_files(store, "s", big.version)
    with pytest.raises(InvalidFeatureSet, match="series 'm0' already has a row at 2025-01-02"):
        store.append("s", meters("2025-01-02T12:00", 24))
    fixed = store.append("s", meters("2025-01-02T12:00", 24), on_conflict="replace")
    assert (fixed.replaced_rows, fixed.rows) == (60, 240 + 120 + 60)
    merged = store.compact("s", full=True)
    assert merged is not None
    assert not merged.data_parts()[0].flat
    pd.testing.assert_frame_equal(
        rows(store.load("s").data), rows(store.load("s", version=fixed.version).data)
    )


def test_tiered_compaction_keeps_the_parts_logarithmic() -> None:
    """After 365 daily appends to two years, at most log2 of the days appended in parts,
    and each appended row rewritten about log2 times."""
    schema = FeatureSetSchema(
        name="s",
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column=None,
        covariates=[],
        label_column=None,
        rows=730,
        start="",
        end="",
        created_at="",
        version="v",
    )
    schema = FeatureSetSchema(**{**schema.__dict__, "parts": [DataPart("base", 730)]})
    rewritten, most = 0, 0
    for day in range(365):
        parts = [*schema.data_parts(), DataPart(f"day{day}", 1)]
        start = merge_from(FeatureSetSchema(**{**schema.__dict__, "parts": parts}))
        if start is not None:
            merged = sum(p.rows for p in parts[start:])
            rewritten += merged
            parts = [*parts[:start], DataPart(f"merged{day}", merged)]
        schema = FeatureSetSchema(**{**schema.__dict__, "parts": parts})
        most = max(most, len(parts))
        sizes = [p.rows for p in parts]
        assert all(s >= sum(sizes[i + 1 :]) for i, s in enumerate(sizes))
    assert most <= 2 + int(np.log2(365))
    assert rewritten / 365 <= np.log2(365)


def test_retention_keeps_the_files_a_kept_version_reads(local: FeatureStore) -> None:
    base = local.put("s", meters("2025-01-01", 24), **COLUMNS)
    second = local.append("s", meters("2025-01-02", 24))
    third = local.append("s", meters("2025-01-03", 24))
    later = datetime.now(UTC) + timedelta(days=2)  # every import long abandoned too

    removed = local.remove_unreferenced(set(), later, timedelta(hours=1))
    assert [r.rsplit("@", 1)[1] for r in removed] == [base.version, second.version]
    assert [v.pinned_version for v in local.versions("s")] == [third.version]
    # Their records went; their files stay: the current version reads them.
    versions = local.root / "s" / "versions"
    assert versions.children() == sorted(str(v.version) for v in (base, second, third))
    assert len(local.load("s").data) == 360
    local.remove_unreferenced(set(), later, timedelta(hours=1))  # an orphan read stays
    assert len(versions.children()) == 3

    compacted = local.compact("s", full=True)
    assert compacted is not None
    pinned = {third.pinned_version}
    local.remove_unreferenced(pinned, later, timedelta(hours=1))
    assert len(versions.children()) == 4  # a pinned version keeps its parts
    assert len(local.load("s", version=third.version).data) == 360

    removed = local.remove_unreferenced(set(), later, timedelta(hours=1))
    assert versions.children() == [compacted.version]
    assert len(local.load("s").data) == 360


def test_appends_at_once_all_land(local: FeatureStore) -> None:
    local.put("s", meters("2025-01-01", 24), **COLUMNS)
    days = [meters(f"2025-02-{day:02d}", 24) for day in range(1, 9)]
    failures: list[BaseException] = []
    stop = threading.Event()

    def append(day: pd.DataFrame) -> None:
        try:
            local.append("s", day)
        except BaseException as exc:  # reported below
            failures.append(exc)

    def compact() -> None:
        while not stop.is_set():
            try:
                local.compact("s")
            except BaseException as exc:
                failures.append(exc)

    compacting = threading.Thread(target=compact)
    compacting.start()
    threads = [threading.Thread(target=append, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    compacting.join(timeout=120)
    assert not failures, failures
    expected = pd.concat([meters("2025-01-01", 24), *days])
    pd.testing.assert_frame_equal(rows(local.load("s").data), rows(expected))
    versions = local.versions("s")
    assert [v.operation for v in versions].count("append") == 8
    # One after another: each version was made on the one published before it.
    assert all(later.previous_version == earlier.version for earlier, later in pairwise(versions))


def test_an_append_redoes_its_check_on_an_upload_that_came_first(
    local: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.put("s", meters("2025-01-01", 24), **COLUMNS)
    real = publication.publish
    uploads = [meters("2025-01-01", 48)]

    def upload_first(directory: Location, schema: FeatureSetSchema, **kwargs: str) -> object:
        if uploads:
            local.put("s", uploads.pop(), **COLUMNS)
        return real(directory, schema, **kwargs)

    monkeypatch.setattr(publication, "publish", upload_first)
    with pytest.raises(InvalidFeatureSet, match="2025-01-02T00:00:00"):
        local.append("s", meters("2025-01-02", 24))  # the upload has that day now
    uploads.append(meters("2025-01-01", 24))
    landed = local.append("s", meters("2025-01-03", 24))
    assert local.versions("s")[-2].operation == "import"
    assert (landed.previous_version, landed.rows) == (local.versions("s")[-2].version, 240)


def test_a_version_published_on_a_stale_one_is_refused(local: FeatureStore) -> None:
    first = local.put("s", meters("2025-01-01", 24), **COLUMNS)
    local.put("s", meters("2025-01-01", 48), **COLUMNS)
    with pytest.raises(publication.Moved):
        publication.publish(local.root / "s", first, on_top_of=first.pinned_version)
    assert (local.root / "s").children() == ["published", "versions"]  # the lock went too
