"""A version's rows as one Arrow dataset: the union of its data parts, without the files it
excludes (``FeatureSetSchema.parts``, ``excluded``); and the writing of small parts.

Every reader (``FeatureStore.load``, ``batches``, ``keys``) scans that dataset, so the
range, series and bucket filters reach each part alike. A set stored before versions is
its one file.

A part is partitioned by bucket and year (an import's), or, up to ``FLAT_MAX_ROWS`` rows
(an append, a merge of small parts), one file that holds the partition columns, sorted by
bucket then time in row groups of ``ROW_GROUP_ROWS``: every file costs a read its own
opening, and a day's rows in 16 buckets would be 16 files of 150 rows; in one file the
row groups' statistics still skip other buckets and years.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from domain.errors import InvalidFeatureSet
from pipeline.storage import Location
from pipeline.versions.importing import BUCKET_COLUMN, PARTITIONING, Columns, ImportStats
from pipeline.versions.schema import DataPart, FeatureSetSchema

FLAT_MAX_ROWS = 1_000_000
ROW_GROUP_ROWS = 1 << 16


def version_dataset(directory: Location, schema: FeatureSetSchema) -> ds.Dataset:
    """The rows of version ``schema`` of the set at ``directory``."""
    if schema.version is None:  # one file, before versions
        location = directory / schema.data_path()
        return ds.dataset(location.path, filesystem=location.filesystem, format="parquet")
    return parts_dataset(directory, schema.data_parts(), schema.excluded)


def parts_dataset(
    directory: Location, parts: list[DataPart], excluded: Collection[str] = ()
) -> ds.Dataset:
    """The rows of ``parts``, less the ``excluded`` files (relative to the set's
    directory); a version always reads some file of its parts."""
    children = [kept_dataset(directory, part, excluded) for part in parts]
    read = [child for child in children if child is not None]
    return read[0] if len(read) == 1 else ds.dataset(read)


def part_dataset(directory: Location, part: DataPart) -> ds.Dataset:
    """Every row of one part."""
    location = directory / part.path
    partitioning = None if part.flat else PARTITIONING
    return ds.dataset(
        location.path, filesystem=location.filesystem, format="parquet", partitioning=partitioning
    )


def kept_dataset(
    directory: Location, part: DataPart, excluded: Collection[str]
) -> ds.Dataset | None:
    """One part's rows less the ``excluded`` files (None: every file is excluded)."""
    dataset = part_dataset(directory, part)
    skipped = {file for file in excluded if part.holds(file)}
    if not skipped:
        return dataset
    files = [f for f in dataset.files if relative(directory, f) not in skipped]
    if not files:
        return None
    location = directory / part.path
    return ds.dataset(
        files,
        filesystem=location.filesystem,
        format="parquet",
        partitioning=PARTITIONING,
        partition_base_dir=location.path,
    )


def relative(directory: Location, path: str) -> str:
    """A file's path (as a dataset lists it) relative to the set's directory."""
    return path[len(directory.path.rstrip("/")) + 1 :]


def write_flat(table: pa.Table, location: Location, timestamp_column: str) -> None:
    """Write a small part's rows (partition columns included) as one file."""
    ordered = table.sort_by([(BUCKET_COLUMN, "ascending"), (timestamp_column, "ascending")])
    location.filesystem.create_dir(location.path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(
        ordered, location.path, filesystem=location.filesystem, row_group_size=ROW_GROUP_ROWS
    )


def checked(table: pa.Table, columns: Columns) -> ImportStats:
    """What an import's check learns of its rows, for rows held in memory (the set's
    spacing is the set's own, not measured again).

    Raises:
        InvalidFeatureSet: a timestamp repeats within a series.
    """
    keys = table.select(columns.keys).to_pandas()
    repeated = keys.duplicated()
    if repeated.any():
        first = keys[repeated].iloc[0].tolist()
        raise InvalidFeatureSet("timestamp_column", f"timestamp repeated within a series: {first}")
    stamps = keys[columns.timestamp]
    return ImportStats(
        columns=[c for c in table.column_names if c not in PARTITIONING.schema.names],
        rows=len(keys),
        start=pd.Timestamp(stamps.min()),
        end=pd.Timestamp(stamps.max()),
        step_seconds=None,
    )
