"""The feature store validates what it stores, writes atomically and keeps versions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domain.errors import FeatureSetNotFound, InvalidFeatureSet
from pipeline.storage import Location
from pipeline.store.demo import load_series, with_anomalies
from pipeline.store.feature_store import FeatureStore
from pipeline.versions import reading


def test_round_trip_keeps_schema_and_rows(store: FeatureStore) -> None:
    table = load_series(seed=1, hours=100)
    schema = store.put("s", table, timestamp_column="timestamp", target_column="load_kw")
    assert schema.covariates == ["temperature_c", "humidity_pct"]
    assert schema.rows == 100
    loaded = store.load("s")
    assert loaded.schema == schema
    pd.testing.assert_series_equal(loaded.data["load_kw"], table["load_kw"])
    assert str(loaded.data["timestamp"].dt.tz) == "UTC"
    assert [s.name for s in store.list()] == ["s"]


def test_load_stops_before_end(store: FeatureStore) -> None:
    store.put(
        "s", load_series(seed=1, hours=100), timestamp_column="timestamp", target_column="load_kw"
    )
    end = pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime()
    assert len(store.load("s", end=end).data) == 24


def test_labels_are_not_covariates(store: FeatureStore) -> None:
    table = with_anomalies(load_series(seed=1, hours=2000), seed=2)
    schema = store.put("a", table, timestamp_column="timestamp", target_column="load_kw")
    assert schema.label_column == "is_anomaly"
    assert "is_anomaly" not in schema.covariates


def test_demo_sets_are_deterministic() -> None:
    pd.testing.assert_frame_equal(load_series(seed=7, hours=500), load_series(seed=7, hours=500))
    assert len(load_series(seed=7)) >= 365 * 24


def test_replacing_a_set_and_failed_replacement_keeps_the_old_one(store: FeatureStore) -> None:
    store.put(
        "s", load_series(seed=1, hours=50), timestamp_column="timestamp", target_column="load_kw"
    )
    with pytest.raises(InvalidFeatureSet):
        store.put(
            "s", load_series(seed=1, hours=50), timestamp_column="ts", target_column="load_kw"
        )
    assert store.schema("s").rows == 50
    store.put(
        "s", load_series(seed=1, hours=70), timestamp_column="timestamp", target_column="load_kw"
    )
    assert store.schema("s").rows == 70
    assert store.root.children() == ["s"]
    assert (store.root / "s").children() == ["published", "versions"]
    assert [v.rows for v in store.versions("s")] == [50, 70]  # the refused one left nothing


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 129])
def test_unsafe_names_are_refused(store: FeatureStore, name: str) -> None:
    with pytest.raises(InvalidFeatureSet):
        store.put(
            name,
            load_series(seed=1, hours=10),
            timestamp_column="timestamp",
            target_column="load_kw",
        )
    assert not store.exists(name)


def test_unknown_set_is_not_found(store: FeatureStore) -> None:
    with pytest.raises(FeatureSetNotFound):
        store.load("missing")


def test_a_replace_never_deletes_what_a_concurrent_reader_looked_up(store: FeatureStore) -> None:
    """A job loading a set while an import replaces it reads one whole version, every time.

    Before sets were versioned, a replace deleted the old data file right after switching
    readers over, so a reader between its lookup and its read found the file gone.
    """
    table = load_series(seed=1, hours=24 * 120)
    store.put("s", table, timestamp_column="timestamp", target_column="load_kw")
    failures: list[BaseException] = []
    done = threading.Event()

    def replace() -> None:
        for hours in range(24 * 100, 24 * 100 + 15):
            store.put(
                "s",
                table.iloc[:hours],
                timestamp_column="timestamp",
                target_column="load_kw",
            )
        done.set()

    def read() -> None:
        while not done.is_set():
            try:
                frame = store.load("s")
                assert len(frame.data) == frame.schema.rows
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=replace), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, f"a reader failed during a replace: {failures[0]!r}"


def _meters(hours: int, meters: int = 3, seed: int = 1) -> pd.DataFrame:
    """A multi-series table: ``meters`` copies of a demo series under different names."""
    parts = []
    for meter in range(meters):
        part = load_series(seed=seed + meter, hours=hours)
        part.insert(0, "meter", f"m{meter}")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_a_replaced_version_stays_readable_by_its_name(store: FeatureStore) -> None:
    first = store.put(
        "s",
        _meters(48),
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    second = store.put(
        "s",
        _meters(72),
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    assert first.version is not None
    assert second.version is not None
    assert first.version < second.version
    assert store.schema("s") == second
    pinned = store.load("s", version=first.version)
    assert pinned.schema == first
    assert len(pinned.data) == 3 * 48
    assert pinned.data["meter"].is_monotonic_increasing
    with pytest.raises(FeatureSetNotFound):
        store.load("s", version="20000101T000000000000Z-00000000")


def test_reads_push_the_range_series_and_columns_down(store: FeatureStore) -> None:
    table = _meters(24 * 400)  # spans two years: two year partitions
    table["extra"] = 1.0
    store.put(
        "s", table, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
    )
    start = pd.Timestamp("2024-06-01", tz="UTC").to_pydatetime()
    end = pd.Timestamp("2024-06-03", tz="UTC").to_pydatetime()
    frame = store.load("s", end, start=start, series=["m2"], columns=["load_kw"])
    assert list(frame.data.columns) == ["meter", "timestamp", "load_kw"]
    assert set(frame.data["meter"]) == {"m2"}
    assert len(frame.data) == 48
    assert frame.data["timestamp"].min() == pd.Timestamp(start)


def test_keys_come_from_the_key_columns_and_buckets_read_alone(store: FeatureStore) -> None:
    table = _meters(24 * 10)
    store.put(
        "s", table, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
    )
    start = pd.Timestamp("2024-01-03", tz="UTC").to_pydatetime()
    end = pd.Timestamp("2024-01-05", tz="UTC").to_pydatetime()
    keys = store.keys("s", start, end)
    assert keys.rows == 3 * 24 * 4  # every row before the end
    assert (keys.first, keys.last) == (pd.Timestamp(start), pd.Timestamp(end) - pd.Timedelta("1h"))
    assert keys.series == ("m0", "m1", "m2")
    assert len(keys.buckets) > 1
    per_series = {n: r for rows in keys.rows_by_bucket.values() for n, r in rows.items()}
    assert per_series == {"m0": 96, "m1": 96, "m2": 96}
    read = [set(store.load("s", bucket=bucket).data["meter"]) for bucket in keys.buckets]
    assert sorted(name for names in read for name in names) == ["m0", "m1", "m2"]  # each once


def test_unreferenced_versions_go_after_the_grace_period(store: FeatureStore) -> None:
    versions = [
        store.put(
            "s",
            _meters(24 + i),
            timestamp_column="timestamp",
            target_column="load_kw",
            series_column="meter",
        ).pinned_version
        for i in range(4)
    ]
    now = datetime.now(UTC)
    assert store.remove_unreferenced(set(), now, timedelta(hours=1)) == []  # all too recent
    removed = store.remove_unreferenced({versions[1]}, now + timedelta(hours=2), timedelta(hours=1))
    assert sorted(r.rsplit("@", 1)[1] for r in removed) == [versions[0], versions[2]]
    assert [v.pinned_version for v in store.versions("s")] == [versions[1], versions[3]]
    assert len(store.load("s", version=versions[1]).data) == 3 * 25


def test_a_set_stored_before_versions_reads_and_is_kept_when_replaced(store: FeatureStore) -> None:
    directory = store.root / "old"
    table = load_series(seed=1, hours=30)
    table["timestamp"] = pd.to_datetime(table["timestamp"], utc=True)
    data_file = "data-0123456789ab.parquet"
    legacy: dict[str, Any] = {
        "name": "old",
        "timestamp_column": "timestamp",
        "target_column": "load_kw",
        "series_column": None,
        "covariates": ["temperature_c", "humidity_pct"],
        "label_column": None,
        "rows": 30,
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-02T05:00:00+00:00",
        "created_at": "2025-01-01T00:00:00+00:00",
        "data_file": data_file,
    }
    (directory / data_file).write_parquet(pa.Table.from_pandas(table))
    (directory / "schema.json").write_text(json.dumps(legacy))
    assert len(store.load("old").data) == 30
    assert store.schema("old").pinned_version == data_file
    keys = store.keys("old")
    assert (keys.rows, keys.series, keys.buckets) == (30, None, (None,))
    assert keys.rows_by_bucket == {None: {None: 30}}
    assert keys.last == pd.Timestamp("2024-01-02T05:00:00Z")
    store.put("old", table.iloc[:20], timestamp_column="timestamp", target_column="load_kw")
    assert len(store.load("old").data) == 20
    assert len(store.load("old", version=data_file).data) == 30
    later = datetime.now(UTC) + timedelta(days=1)
    assert [r.rsplit("@", 1)[1] for r in store.remove_unreferenced(set(), later, timedelta())] == [
        data_file
    ]
    assert directory.children() == ["published", "versions"]  # adopted, then removed


def test_a_file_streams_in_batches_and_checks_repeats_across_them(
    store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "BATCH_ROWS", 50)
    table = _meters(60)
    table["load_kw"] = table["load_kw"].round()  # whole numbers first ...
    table.loc[len(table) - 1, "load_kw"] = 1.5  # ... a decimal in the last batch
    csv = tmp_path / "meters.csv"
    table.to_csv(csv, index=False)
    schema = store.import_file(
        "s", csv, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
    )
    assert schema.rows == 180
    assert store.load("s").data["load_kw"].iloc[-1] == 1.5
    repeated = pd.concat([table, table.iloc[[3]]], ignore_index=True)  # far from its twin
    repeated.to_csv(csv, index=False)
    with pytest.raises(InvalidFeatureSet) as refused:
        store.import_file(
            "s", csv, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
        )
    assert refused.value.field == "timestamp_column"
    assert [v.rows for v in store.versions("s")] == [180]  # nothing of the refused one


def test_a_file_that_is_not_a_table_is_refused(store: FeatureStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(InvalidFeatureSet) as refused:
        store.import_file("s", junk, timestamp_column="timestamp", target_column="load_kw")
    assert refused.value.field in {"body", "timestamp_column"}
    assert not store.exists("s")


def _import_meters(store: FeatureStore, tmp_path: Path, rows: str) -> None:
    """``rows`` (CSV text with columns ts, meter, load, ...) imported as set ``s``."""
    path = tmp_path / "rows.csv"
    path.write_text(rows)
    store.import_file("s", path, timestamp_column="ts", target_column="load", series_column="meter")


def test_series_ids_are_kept_as_written(store: FeatureStore, tmp_path: Path) -> None:
    rows = "ts,meter,load\n2024-01-01T00:00Z,101,1\n2024-01-01T01:00Z,101,2\n"
    rows += "2024-01-01T00:00Z,007,3\n2024-01-01T00:00Z,7,4\n"
    _import_meters(store, tmp_path, rows)
    assert sorted(set(store.load("s").data["meter"])) == ["007", "101", "7"]


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        ("ts,meter,load\n2024-01-01T00:00Z,a,inf\n", "target_column", "infinite"),
        ("ts,meter,load,temp\n2024-01-01T00:00Z,a,1,-inf\n", "body", "infinite"),
        ("ts,meter,load,is_anomaly\n2024-01-01T00:00Z,a,1,\n", "body", "labels are 0/1"),
        ("ts,meter,load,is_anomaly\n2024-01-01T00:00Z,a,1,2\n", "body", "labels are 0/1"),
        ("ts,meter,load\n2024-01-01T00:00Z,,1\n", "series_column", "empty values"),
        ("ts,meter,load\n3000-01-01T00:00Z,a,1\n", "timestamp_column", "outside 1677-2262"),
        ("ts,meter,load\n1704067200,a,1\n", "timestamp_column", "numbers, not times"),
        ("ts,meter,load,x,x\n2024-01-01T00:00Z,a,1,2,3\n", "body", "repeated"),
        # Day first: pandas had guessed per batch, and read 12/03 as December 3rd.
        (
            "ts,meter,load\n01/03/2024 00:00,a,1\n12/03/2024 00:00,a,2\n",
            "timestamp_column",
            "ISO 8601",
        ),
        # The service's own feature names: two columns of one name in every job.
        ("ts,meter,load,month\n2024-01-01T00:00Z,a,1,2\n", "body", "own feature names"),
        ("ts,meter,load,lag_24\n2024-01-01T00:00Z,a,1,2\n", "body", r"\['lag_24'\]"),
        ("ts,meter,load,_observed\n2024-01-01T00:00Z,a,1,2\n", "body", "own feature names"),
    ],
)
def test_values_no_job_could_read_are_refused(
    store: FeatureStore, tmp_path: Path, rows: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidFeatureSet, match=message) as refused:
        _import_meters(store, tmp_path, rows)
    assert refused.value.field == field
    assert not store.exists("s")


def test_iso_times_with_offsets_fractions_or_dates_alone_are_read(
    store: FeatureStore, tmp_path: Path
) -> None:
    rows = "ts,meter,load,roll_mean\n2024-03-01,a,1,0\n2024-03-01T01:00:00+01:00,b,2,0\n"
    rows += "2024-03-01 01:00:00.250,c,3,0\n"
    _import_meters(store, tmp_path, rows)
    stamps = store.load("s").data.set_index("meter")["ts"]
    assert stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f").to_dict() == {
        "a": "2024-03-01 00:00:00.000000",
        "b": "2024-03-01 00:00:00.000000",
        "c": "2024-03-01 01:00:00.250000",
    }


def test_decimal_columns_are_numbers(store: FeatureStore, tmp_path: Path) -> None:
    """A database's NUMERIC(10,2), as exports write it, had been refused as not numeric."""
    path = tmp_path / "rows.parquet"
    table = pa.table(
        {
            "ts": pa.array([datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)]),
            "load": pa.array([Decimal("1.25"), Decimal("2.50"), None], pa.decimal128(10, 2)),
            "temp": pa.array([Decimal("-3.5"), Decimal("0"), Decimal("4.75")], pa.decimal128(5, 2)),
        }
    )
    pq.write_table(table, path)
    store.import_file("s", path, timestamp_column="ts", target_column="load")
    stored = store.load("s").data
    assert stored["load"].tolist()[:2] == [1.25, 2.5]
    assert stored["temp"].tolist() == [-3.5, 0.0, 4.75]


@pytest.mark.parametrize("role", ["target_column", "series_column"])
def test_the_labels_name_is_no_role(store: FeatureStore, tmp_path: Path, role: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("ts,load,is_anomaly\n2024-01-01T00:00Z,1,0\n")
    roles = {"target_column": "load", "series_column": None, role: "is_anomaly"}
    with pytest.raises(InvalidFeatureSet, match="names the anomaly labels") as refused:
        store.import_file(
            "s",
            path,
            timestamp_column="ts",
            target_column=roles["target_column"] or "",
            series_column=roles["series_column"],
        )
    assert refused.value.field == role
    assert not store.exists("s")


def test_a_column_cannot_have_two_roles(store: FeatureStore, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("ts,load\n2024-01-01T00:00Z,1\n")
    with pytest.raises(InvalidFeatureSet, match="different columns") as refused:
        store.import_file(
            "s", path, timestamp_column="ts", target_column="load", series_column="load"
        )
    assert refused.value.field == "series_column"
    assert not store.exists("s")


def test_a_batch_without_a_value_in_a_column_keeps_it_missing(
    store: FeatureStore, tmp_path: Path
) -> None:
    rows = "ts,meter,load,temp\n2024-01-01T00:00Z,a,,\n2024-01-01T01:00Z,a,2,\n"
    _import_meters(store, tmp_path, rows)
    stored = store.load("s").data
    assert stored["load"].isna().tolist() == [True, False]
    assert stored["temp"].isna().all()


def test_a_parquet_file_of_an_indexed_frame_imports(store: FeatureStore, tmp_path: Path) -> None:
    """``frame.set_index("ts").to_parquet()``: the index is a column of the file."""
    frame = pd.DataFrame(
        {"ts": pd.date_range("2024-01-01", periods=48, freq="h", tz="UTC"), "load": 1.0}
    )
    path = tmp_path / "indexed.parquet"
    frame.set_index("ts").to_parquet(path)
    frame.to_parquet(tmp_path / "plain.parquet")  # an unnamed RangeIndex: no column
    for name in ("indexed", "plain"):
        stored = store.import_file(
            name, tmp_path / f"{name}.parquet", timestamp_column="ts", target_column="load"
        )
        assert (stored.rows, stored.covariates) == (48, [])


def test_a_set_of_many_years_and_series_imports(store: FeatureStore) -> None:
    """75 years of monthly rows for 60 series: more than pyarrow's 1,024 partitions by
    default (16 buckets by year), which had failed the import with a 500."""
    months = pd.date_range("1950-01-01", "2024-12-01", freq="MS", tz="UTC")
    frame = pd.concat(
        [pd.DataFrame({"ts": months, "meter": f"m{n}", "load": float(n)}) for n in range(60)]
    )
    stored = store.put(
        "s", frame, timestamp_column="ts", target_column="load", series_column="meter"
    )
    assert stored.rows == len(frame)


def test_a_version_pinned_from_the_shared_set_stays_readable_to_its_tenant(
    tmp_path: Path,
) -> None:
    """A tenant's job or model pinned the shared set's version; the tenant then stored a
    set of the same name, and the pinned version had become 'not found' to it."""
    root = Location(str(tmp_path))
    put = {"timestamp_column": "timestamp", "target_column": "load_kw"}
    pinned = FeatureStore(root).put("demo", load_series(seed=1, hours=48), **put).pinned_version
    acme = FeatureStore(root, "acme")
    acme.put("demo", load_series(seed=2, hours=24), **put)
    assert acme.schema("demo").rows == 24  # its own set is the current one
    assert acme.schema("demo", pinned).rows == 48
    assert len(acme.load("demo", version=pinned).data) == 48
    with pytest.raises(FeatureSetNotFound):
        acme.schema("demo", "no-such-version")
