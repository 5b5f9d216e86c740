"""Appending rows to a feature set: a new immutable version that shares the previous one's
data parts and adds one of its own (``FeatureStore.append``).

The rows are validated and written as an import's are
(``pipeline.versions.importing.write_partitioned``), held to the set's columns and types,
into the new version's directory: one part, partitioned by series bucket and year.
Nothing of the set is rewritten, so the cost grows with the rows appended, not with the
set.

Rows whose (series, timestamp) the set has already are refused, the first named; with
``on_conflict="replace"`` they replace the set's (corrections): each file holding a
replaced row is copied without it into the new part, and the new version excludes the
original (copy-on-write of the files touched, not of the set). The check reads only the
key columns of the partitions (bucket, year) the rows fall in, within their time span.

The version is published on top of the one it was made on. If another write published
first, the check and the copies are redone on the new current version (the appended files
stay), so two appends at once both land, one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import chain

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from domain.errors import (
    Conflict,
    FeatureSetNotFound,
    InvalidFeatureSet,
    InvalidRequest,
    ServiceUnavailable,
)
from pipeline.storage import Location
from pipeline.versions import publication
from pipeline.versions.importing import (
    BUCKET_COLUMN,
    YEAR_COLUMN,
    Columns,
    ImportStats,
    validated,
    write_tables,
)
from pipeline.versions.parts import (
    FLAT_MAX_ROWS,
    checked,
    part_dataset,
    relative,
    version_dataset,
    write_flat,
)
from pipeline.versions.reading import ImportLimits, Source
from pipeline.versions.schema import APPEND, VERSIONS_DIR, DataPart, FeatureSetSchema

REFUSE, REPLACE = "refuse", "replace"
#: Publications lost to other writers before an append gives up (each redoes the check).
MAX_ATTEMPTS = 50
_FILE = "__filename"


@dataclass(frozen=True)
class _Appended:
    """The appended rows as written: their part and statistics."""

    part: DataPart
    stats: ImportStats


def append_rows(
    directory: Location, name: str, source: Source, on_conflict: str, limits: ImportLimits
) -> FeatureSetSchema:
    """Append ``source``'s rows to the set at ``directory`` as its new current version.

    Raises:
        FeatureSetNotFound: no such set.
        Conflict: the set was stored before versions (upload it again first).
        InvalidFeatureSet, InvalidColumns, TooLarge: as for an import, and rows the set
            has already, unless ``on_conflict`` is "replace".
        Nothing is kept then.
    """
    if on_conflict not in (REFUSE, REPLACE):
        raise InvalidRequest("query.on_conflict", "on_conflict is 'refuse' or 'replace'")
    base = publication.current(directory)
    if base is None:
        raise FeatureSetNotFound(name)
    if base.version is None:
        raise Conflict(f"feature set {name!r} was stored before versions: upload it again")
    created = datetime.now(UTC)
    version = publication.new_version(created)
    try:
        expected = version_dataset(directory, base).schema
        columns = Columns(base.timestamp_column, base.target_column, base.series_column)
        rows = validated(source, columns, limits, expected)
        appended = _write(directory, version, rows, columns)
        for _ in range(MAX_ATTEMPTS):
            schema = _on_top_of(directory, base, appended, on_conflict, version)
            schema = replace(schema, version=version, created_at=created.isoformat())
            try:
                return publication.publish(directory, schema, on_top_of=base.pinned_version)
            except publication.Moved as moved:
                (directory / _kept_path(version)).delete_file()  # made for the old one
                base = _still_fits(directory, moved.current, expected, name)
        raise ServiceUnavailable(f"feature set {name!r} changed too often; append again")
    except BaseException:
        (directory / VERSIONS_DIR / version).delete_dir()
        raise


def _write(
    directory: Location, version: str, tables: Iterator[pa.Table], columns: Columns
) -> _Appended:
    """Write the validated rows as the version's part: one file up to ``FLAT_MAX_ROWS``
    rows, else partitioned (streamed, as an import).

    Raises:
        InvalidFeatureSet: a timestamp repeats within a series.
    """
    held, rows = [], 0
    for table in tables:
        held.append(table)
        rows += table.num_rows
        if rows > FLAT_MAX_ROWS:
            path = f"{VERSIONS_DIR}/{version}/data"
            stats = write_tables(chain(held, tables), columns, directory / path)
            return _Appended(DataPart(path, stats.rows), stats)
    table = pa.concat_tables(held)
    stats = checked(table, columns)
    part = DataPart(f"{VERSIONS_DIR}/{version}/data.parquet", stats.rows)
    write_flat(table, directory / part.path, columns.timestamp)
    return _Appended(part, stats)


def _kept_path(version: str) -> str:
    """Where an append keeps the rows it did not replace of the files it replaced rows of."""
    return f"{VERSIONS_DIR}/{version}/kept.parquet"


def _on_top_of(
    directory: Location,
    base: FeatureSetSchema,
    appended: _Appended,
    on_conflict: str,
    version: str,
) -> FeatureSetSchema:
    """The appended version's schema on top of ``base`` (with the copies, made now, of
    the files whose rows it replaces)."""
    clashes = _clashes(directory, base, appended.part)
    if len(clashes) and on_conflict != REPLACE:
        raise InvalidFeatureSet("body", _clash_message(base, clashes))
    # A one-file part whose rows are replaced goes; a partitioned one's file is excluded.
    gone = {relative(directory, f) for f in clashes[_FILE]}
    parts = [p for p in base.data_parts() if p.path not in gone] + [appended.part]
    excluded = [*base.excluded, *sorted(gone - {p.path for p in base.data_parts()})]
    if gone:
        kept = _copy_without(directory, base, clashes, directory / _kept_path(version))
        parts += [DataPart(_kept_path(version), kept)] if kept else []
    stats = appended.stats
    return replace(
        base,
        rows=base.rows + stats.rows - len(clashes),
        start=min(pd.Timestamp(base.start), stats.start).isoformat(),
        end=max(pd.Timestamp(base.end), stats.end).isoformat(),
        published_at=None,
        operation=APPEND,
        previous_version=base.pinned_version,
        appended_rows=stats.rows,
        replaced_rows=len(clashes),
        parts=parts,
        excluded=excluded,
    )


def _clashes(directory: Location, base: FeatureSetSchema, part: DataPart) -> pd.DataFrame:
    """The appended keys ``base`` has already, with the file holding each, sorted: read
    from the key columns of the partitions they fall in, within their time span; a
    partition of the appended rows at a time."""
    names = [c for c in (base.series_column, base.timestamp_column) if c]
    dataset = version_dataset(directory, base)
    found = []
    appended = part_dataset(directory, part)
    for fragment in appended.get_fragments():
        keys = fragment.to_table(
            columns=[*names, BUCKET_COLUMN, YEAR_COLUMN], schema=appended.schema
        ).to_pandas()
        stamps = keys[base.timestamp_column]
        wanted = (
            ds.field(BUCKET_COLUMN).isin(sorted(set(keys[BUCKET_COLUMN].tolist())))
            & ds.field(YEAR_COLUMN).isin(sorted(set(keys[YEAR_COLUMN].tolist())))
            & (ds.field(base.timestamp_column) >= stamps.min())
            & (ds.field(base.timestamp_column) <= stamps.max())
        )
        held = dataset.scanner(columns=[*names, _FILE], filter=wanted).to_table().to_pandas()
        if len(held):
            found.append(held.merge(keys[names], on=names, how="inner"))
    if not found:
        return pd.DataFrame(columns=[*names, _FILE])
    clashes: pd.DataFrame = pd.concat(found).sort_values(names, kind="stable")
    return clashes.reset_index(drop=True)


def _clash_message(base: FeatureSetSchema, clashes: pd.DataFrame) -> str:
    first = clashes.iloc[0]
    stamp = pd.Timestamp(first[base.timestamp_column]).isoformat()
    where = f"series {first[base.series_column]!r}" if base.series_column else "the set"
    more = f" (and {len(clashes) - 1} more rows it has)" if len(clashes) > 1 else ""
    return (
        f"{where} already has a row at {stamp}{more}; "
        "append with on_conflict=replace to replace them"
    )


def _copy_without(
    directory: Location, base: FeatureSetSchema, clashes: pd.DataFrame, target: Location
) -> int:
    """Copy the rows of each file holding a replaced row, but those, into one file at
    ``target``, a file at a time. Returns the rows copied."""
    names = [c for c in (base.series_column, base.timestamp_column) if c]
    dataset = version_dataset(directory, base)
    replaced = clashes.groupby(_FILE, sort=True)
    writer: pq.ParquetWriter | None = None
    copied = 0
    try:
        for fragment in dataset.get_fragments():
            if fragment.path not in replaced.groups:
                continue
            table = fragment.to_table(schema=dataset.schema)
            held = pd.MultiIndex.from_frame(table.select(names).to_pandas())
            gone = pd.MultiIndex.from_frame(replaced.get_group(fragment.path)[names])
            kept = table.filter(pa.array(~held.isin(gone)))
            if not kept.num_rows:
                continue
            if writer is None:
                target.filesystem.create_dir(target.path.rsplit("/", 1)[0], recursive=True)
                writer = pq.ParquetWriter(target.path, dataset.schema, filesystem=target.filesystem)
            writer.write_table(kept)
            copied += kept.num_rows
    finally:
        if writer is not None:
            writer.close()
    return copied


def _still_fits(
    directory: Location, current: FeatureSetSchema | None, expected: pa.Schema, name: str
) -> FeatureSetSchema:
    """The version now current, if the appended rows still fit its columns.

    Raises:
        FeatureSetNotFound, InvalidFeatureSet: the set went, or was replaced by an upload
            of other columns, while the rows were appended.
    """
    if current is None or current.version is None:
        raise FeatureSetNotFound(name)
    if not version_dataset(directory, current).schema.equals(expected):
        raise InvalidFeatureSet(
            "body", f"feature set {name!r} was replaced, with other columns, during the append"
        )
    return current
