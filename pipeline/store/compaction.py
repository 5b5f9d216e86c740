"""Compaction: merging a set's data parts into fewer, so that reads stay fast after many
appends (``FeatureStore.compact``).

Each append adds a part, and every part costs a read its own files. The parts are kept
geometric instead: every part holds at least as many rows as all newer parts together.
When an append breaks that, the oldest part that breaks it is merged with every newer one
into a single part. A version then has at most log2(rows / smallest part) + 1 parts (a
set of 1.75M rows after 365 daily appends of 2,400 rows: about 10), and a row is rewritten
about once per doubling of what was appended after it (log2 times in all), so merging costs
O(log n) per appended row, amortised. A full compaction merges every part into one, which
reads as a fresh import does.

A compaction publishes a new version (operation "compaction") with exactly the rows of the
one it was made on and fewer parts; the files it merged stay as long as a kept version
reads them (retention). If an append publishes first, the compaction is rebased onto it
when the parts it merged are still there unchanged, and dropped otherwise (the next
compaction catches up: the rule depends only on the parts a version has).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import pyarrow.dataset as ds

from domain.errors import FeatureSetNotFound
from pipeline.storage import Location
from pipeline.versions import publication
from pipeline.versions.importing import MAX_PARTITIONS, PARTITIONING
from pipeline.versions.parts import FLAT_MAX_ROWS, parts_dataset, write_flat
from pipeline.versions.schema import COMPACTION, VERSIONS_DIR, DataPart, FeatureSetSchema

_running: set[str] = set()
_running_guard = threading.Lock()


def merge_from(schema: FeatureSetSchema, full: bool = False) -> int | None:
    """The index of the oldest part to merge with every newer one (None: nothing to do).

    Tiered: the oldest part with fewer rows than all newer parts together. Full: the first
    part, if there are several or a version excludes some of their files.
    """
    parts = schema.data_parts()
    if full:
        return 0 if len(parts) > 1 or schema.excluded else None
    oldest, newer = None, 0
    for index in range(len(parts) - 1, -1, -1):
        if parts[index].rows < newer:
            oldest = index
        newer += parts[index].rows
    return oldest


def compact(directory: Location, name: str, full: bool = False) -> FeatureSetSchema | None:
    """Merge the current version's parts that ``merge_from`` names and publish the result as
    the new current version; None if there is nothing to merge, another compaction of the
    set runs in this process, or an append changed the merged parts meanwhile.

    Raises:
        FeatureSetNotFound: no such set.
    """
    with _running_guard:
        if str(directory) in _running:
            return None
        _running.add(str(directory))
    try:
        return _compact(directory, name, full)
    finally:
        with _running_guard:
            _running.discard(str(directory))


def _compact(directory: Location, name: str, full: bool) -> FeatureSetSchema | None:
    base = publication.current(directory)
    if base is None:
        raise FeatureSetNotFound(name)
    start = merge_from(base, full) if base.version is not None else None
    if start is None:
        return None
    created = datetime.now(UTC)
    version = publication.new_version(created)
    merged = base.data_parts()[start:]
    try:
        part = _merge(directory, merged, base.excluded, version, base.timestamp_column)
        while True:
            schema = _with_merged(base, start, merged, part)
            schema = replace(schema, version=version, created_at=created.isoformat())
            try:
                return publication.publish(directory, schema, on_top_of=base.pinned_version)
            except publication.Moved as moved:
                rebased = _rebased(moved.current, base, start + len(merged))
                if rebased is None:
                    (directory / VERSIONS_DIR / version).delete_dir()
                    return None
                base = rebased
    except BaseException:
        (directory / VERSIONS_DIR / version).delete_dir()
        raise


def _merge(
    directory: Location, parts: list[DataPart], excluded: list[str], version: str, stamp: str
) -> DataPart:
    """Write ``parts``' rows (less the ``excluded`` files) as one part of ``version``: one
    file up to ``FLAT_MAX_ROWS`` rows, else partitioned, streamed as an import writes (its
    files' row groups as small as an import's: larger ones would hold rows of every
    partition in memory until they fill)."""
    rows = parts_dataset(directory, parts, excluded)
    if sum(part.rows for part in parts) <= FLAT_MAX_ROWS:
        table = rows.to_table()
        merged = DataPart(f"{VERSIONS_DIR}/{version}/data.parquet", table.num_rows)
        write_flat(table, directory / merged.path, stamp)
        return merged
    written = 0

    def count(file: ds.WrittenFile) -> None:
        nonlocal written
        written += file.metadata.num_rows

    path = f"{VERSIONS_DIR}/{version}/data"
    target = directory / path
    ds.write_dataset(
        rows,
        target.path,
        format="parquet",
        filesystem=target.filesystem,
        partitioning=PARTITIONING,
        basename_template="part-{i}.parquet",
        file_visitor=count,
        max_partitions=MAX_PARTITIONS,
    )
    return DataPart(path, written)


def _with_merged(
    base: FeatureSetSchema, start: int, merged: list[DataPart], part: DataPart
) -> FeatureSetSchema:
    """``base`` with ``merged`` (its parts from ``start``) read from ``part`` instead."""
    parts = base.data_parts()
    return replace(
        base,
        published_at=None,
        operation=COMPACTION,
        previous_version=base.pinned_version,
        appended_rows=None,
        replaced_rows=None,
        parts=[*parts[:start], part, *parts[start + len(merged) :]],
        excluded=[f for f in base.excluded if not any(p.holds(f) for p in merged)],
    )


def _rebased(
    current: FeatureSetSchema | None, base: FeatureSetSchema, merged_end: int
) -> FeatureSetSchema | None:
    """``current``, if a merge of ``base``'s parts up to ``merged_end`` holds its rows of
    those parts too: it has them, and excludes none of their files ``base`` did not."""
    if current is None or current.version is None:
        return None
    prefix = base.data_parts()[:merged_end]
    if current.data_parts()[:merged_end] != prefix:
        return None

    def under_prefix(schema: FeatureSetSchema) -> set[str]:
        return {f for f in schema.excluded if any(p.holds(f) for p in prefix)}

    return current if under_prefix(current) == under_prefix(base) else None
