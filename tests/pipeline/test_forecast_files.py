"""A stored forecast's pages: read from the row groups they fall in, of every series or of
one, with the same rows as a whole read gives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import forecast_files
from pipeline.forecast_files import forecast_page, write_forecast
from pipeline.storage import Location


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Location, pd.DataFrame]:
    """Three series of 250 rows each, by series then time, in row groups of 100 rows."""
    monkeypatch.setattr(forecast_files, "ROW_GROUP_ROWS", 100)
    stamps = pd.date_range("2024-01-01", periods=250, freq="h", tz="UTC")
    table = pd.concat(
        [
            pd.DataFrame({"series": name, "timestamp": stamps, "predicted": np.arange(250) + k})
            for k, name in enumerate(["m1", "m2", "m3"])
        ],
        ignore_index=True,
    )
    location = Location(str(tmp_path / "forecast.parquet"))
    write_forecast(location, pa.Table.from_pandas(table, preserve_index=False))
    return location, table


def test_a_page_reads_the_row_groups_it_falls_in(stored: tuple[Location, pd.DataFrame]) -> None:
    location, table = stored
    metadata = pq.ParquetFile(location.path).metadata
    assert metadata.num_row_groups == 8
    assert forecast_files._covering(metadata, 95, 10) == ([0, 1], 0)
    assert forecast_files._covering(metadata, 690, 100) == ([6, 7], 600)
    assert forecast_files._holding(metadata, "m2") == [2, 3, 4]  # rows 250-499
    for offset, limit in [(0, 10), (95, 10), (100, 100), (690, 100), (745, 1000), (750, 10)]:
        page, total = forecast_page(location, offset, limit)
        expected = table.iloc[offset : offset + limit].reset_index(drop=True)
        pd.testing.assert_frame_equal(page, expected)
        assert total == 750


def test_a_series_page_holds_that_series_alone(stored: tuple[Location, pd.DataFrame]) -> None:
    location, table = stored
    page, total = forecast_page(location, 240, 100, series="m2")
    mine = table[table["series"] == "m2"].reset_index(drop=True)
    pd.testing.assert_frame_equal(page, mine.iloc[240:].reset_index(drop=True))
    assert total == 250
    unknown, none = forecast_page(location, 0, 10, series="m9")
    assert unknown.empty
    assert none == 0
    for offset, limit in [(0, 10), (45, 10), (49, 60), (150, 100), (249, 5), (250, 5)]:
        page, total = forecast_page(location, offset, limit, series="m2")
        expected = mine.iloc[offset : offset + limit].reset_index(drop=True)
        pd.testing.assert_frame_equal(page, expected, check_dtype=not expected.empty)
        assert total == 250


def test_a_series_page_reads_only_the_row_groups_it_falls_in(
    stored: tuple[Location, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """m2 is rows 250-499: groups 3 and 4 (300-499) hold it alone and are counted from
    the footer; a page of its first ten rows reads group 2 whole, no other."""
    location, _ = stored
    read: list[list[int]] = []
    whole = pq.ParquetFile.read_row_groups

    def recorded(
        self: pq.ParquetFile, groups: list[int], *args: object, **kwargs: object
    ) -> pa.Table:
        read.append(list(groups))
        return whole(self, groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", recorded)
    page, total = forecast_page(location, 0, 10, series="m2")
    assert (len(page), total) == (10, 250)
    assert read == [[2]]


@pytest.mark.parametrize("series", [None, "m2", "m9"])
def test_the_csv_holds_every_row_or_one_series_rows(
    stored: tuple[Location, pd.DataFrame], series: str | None
) -> None:
    location, table = stored
    text = "".join(forecast_files.forecast_csv(location, batch_rows=64, series=series))
    read = pd.read_csv(io.StringIO(text), parse_dates=["timestamp"])
    expected = table if series is None else table[table["series"] == series]
    assert list(read.columns) == ["series", "timestamp", "predicted"]  # one header
    assert read["series"].tolist() == expected["series"].tolist()
    assert read["predicted"].tolist() == expected["predicted"].tolist()


def test_parts_are_written_as_they_come_in_full_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forecast's chunks written one at a time: the file holds them in order, in row
    groups of the usual size (not one per chunk); an empty chunk's untyped columns (and a
    column all null in a later one) do not break the file's types."""
    monkeypatch.setattr(forecast_files, "ROW_GROUP_ROWS", 100)
    stamps = pd.date_range("2024-01-01", periods=70, freq="h", tz="UTC")

    def part(name: str, rows: int) -> pa.Table:
        frame = pd.DataFrame(
            {
                "series": np.array([name] * rows, dtype=object),
                "timestamp": stamps[:rows],
                "actual": [None] * rows if name == "m3" else np.arange(rows, dtype=float),
            }
        )
        return pa.Table.from_pandas(frame, preserve_index=False)

    parts = [part("m0", 0), part("m1", 70), part("m2", 70), part("m3", 70)]
    location = Location(str(tmp_path / "forecast.parquet"))
    assert forecast_files.write_forecast_parts(location, iter(parts)) == 210
    metadata = pq.ParquetFile(location.path).metadata
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == [
        100,
        100,
        10,
    ]
    written = pq.read_table(location.path).to_pandas()
    assert list(written["series"].unique()) == ["m1", "m2", "m3"]
    assert written["actual"].isna().sum() == 70
    series_type = pq.read_schema(location.path).field("series").type
    assert pa.types.is_string(series_type) or pa.types.is_large_string(series_type)

    only_empty = Location(str(tmp_path / "empty.parquet"))
    assert forecast_files.write_forecast_parts(only_empty, iter([part("m0", 0)])) == 0
    assert pq.read_table(only_empty.path).num_rows == 0


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_write_that_fails_publishes_no_file(
    tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    """The parts' source fails half-way (a chunk task failed): no forecast file is left,
    not even on an object store, whose upload completes when its stream closes."""
    root = tmp_path if where == "local" else request.getfixturevalue("s3_bucket")
    location = (
        Location(str(root / "forecast.parquet"))
        if where == "local"
        else Location(str(root).format("forecast.parquet"))
    )

    def parts() -> Iterator[pa.Table]:
        yield pa.table({"series": ["m1"] * 70_000, "predicted": np.arange(70_000.0)})
        raise RuntimeError("a chunk task failed")

    with pytest.raises(RuntimeError, match="a chunk task failed"):
        forecast_files.write_forecast_parts(location, parts())
    assert not location.is_file()
