"""The Parquet feature store: feature sets as immutable, partitioned versions.

An import (``FeatureStore.put`` for a DataFrame, ``import_file`` for an uploaded file) writes
a new version's files, ``<set>/versions/<version>/data/``: a Parquet dataset partitioned by
series bucket and year (``pipeline.versions.importing``, in bounded memory). Only then
does ``pipeline.versions.publication.publish``, one atomic write of the version's record,
make it visible and current: readers see the old version or the new, never a mix; a
rejected table leaves nothing behind, and an import killed mid-write leaves files that no
reader sees.
An append (``append``) is a version too: the previous version's files and one part more
(``pipeline.store.appending``); ``compact`` merges parts so reads stay fast
(``pipeline.store.compaction``). Readers see a version's parts as one dataset
(``pipeline.versions.parts``).

Nothing an import replaces is deleted: a job pins the version it read (and its model keeps
it in its lineage), so ``load(name, version=...)`` reads it again. Versions that are not
current, that nothing references and that were superseded (their successor published)
longer ago than a grace period are removed by ``remove_unreferenced`` (the retention
policy), with the files of interrupted imports; files a kept version still reads stay
(``pipeline.versions.retention``). Sets written before versions (one ``data-*.parquet`` file
beside ``schema.json``) read as a version named after their file.

Shared sets (the demo sets, an admin's uploads) live at ``<root>/<name>``; a tenant's own
at ``<root>/_tenants/<tenant>/<name>`` (``_`` cannot start a name, so the two never meet).
A store opened for a tenant sees its own sets and the shared ones, its own first, and
writes only its own: another tenant's sets do not exist for it. The root is a local
directory or any ``pyarrow.fs`` URI (see ``pipeline.storage``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from domain.errors import FeatureSetNotFound, InvalidFeatureSet
from domain.names import is_valid_name
from pipeline.storage import Location
from pipeline.store.appending import REFUSE, append_rows
from pipeline.store.compaction import compact
from pipeline.store.windows import LabelledWindow, checked_windows, read_windows, write_windows
from pipeline.versions import publication, retention
from pipeline.versions.importing import (
    LABEL_COLUMN,
    Columns,
    typical_step,
    write_partitioned,
)
from pipeline.versions.parts import version_dataset
from pipeline.versions.reading import ImportLimits, Source
from pipeline.versions.scan import row_filter, scan_keys
from pipeline.versions.schema import (
    TENANTS_DIR,
    VERSIONS_DIR,
    FeatureFrame,
    FeatureSetSchema,
    SetKeys,
)

__all__ = [
    "LABEL_COLUMN",
    "FeatureFrame",
    "FeatureSetSchema",
    "FeatureStore",
    "ImportLimits",
    "SetKeys",
    "typical_step",
]


class FeatureStore:
    def __init__(self, root: Location, tenant_id: str | None = None) -> None:
        if tenant_id is not None and not is_valid_name(tenant_id):
            raise InvalidFeatureSet("tenant_id", f"invalid tenant id {tenant_id!r}")
        self.root = root
        self.tenant_id = tenant_id

    def for_tenant(self, tenant_id: str | None) -> FeatureStore:
        """The store as ``tenant_id`` sees it (None: the shared sets only)."""
        return FeatureStore(self.root, tenant_id)

    @property
    def _own(self) -> Location:
        return self.root if self.tenant_id is None else self.root / TENANTS_DIR / self.tenant_id

    def _location(self, name: str) -> Location:
        """Where ``name`` is read from: the tenant's own set, else the shared one."""
        own = self._write_location(name)
        return own if publication.has_published(own) else self.root / name

    def _write_location(self, name: str) -> Location:
        if not is_valid_name(name):
            raise InvalidFeatureSet("name", f"invalid feature set name {name!r}")
        return self._own / name

    def exists(self, name: str) -> bool:
        return is_valid_name(name) and publication.has_published(self._location(name))

    def list(self) -> list[FeatureSetSchema]:
        names = {name for directory in {self.root, self._own} for name in directory.children()}
        return [self.schema(name) for name in sorted(names) if self.exists(name)]

    def schema(self, name: str, version: str | None = None) -> FeatureSetSchema:
        """The current version's schema, or that of ``version``; only published versions
        exist for readers.

        Raises:
            FeatureSetNotFound: no such set, or no such version of it.
        """
        return self._versioned(name, version)[0]

    def _versioned(self, name: str, version: str | None) -> tuple[FeatureSetSchema, Location]:
        """A version's schema and the set's directory it lives in, resolved once: the
        tenant's own set, or the shared one for a version pinned from it before the
        tenant stored a set of that name (its jobs and models still read it)."""
        directory = self._location(name)
        current = publication.current(directory)
        if current is None:
            raise FeatureSetNotFound(name)
        if version is None or version == current.pinned_version:
            return current, directory
        kept = publication.find(directory, version)
        shared = self.root / name
        if kept is None and directory != shared and publication.has_published(shared):
            kept, directory = publication.find(shared, version), shared
        if kept is None:
            raise FeatureSetNotFound(f"{name}@{version}")
        return kept, directory

    def versions(self, name: str) -> builtins.list[FeatureSetSchema]:
        """Every kept version of a set, in the order they were published (the current one
        last).

        Raises:
            FeatureSetNotFound: no such set.
        """
        kept = publication.published(self._location(name))
        if not kept:
            raise FeatureSetNotFound(name)
        return kept

    def step_seconds(self, name: str) -> float:
        """The typical spacing of a set's timestamps (read from the data for sets stored
        before the schema kept it).

        Raises:
            FeatureSetNotFound, InvalidFeatureSet: a set of a single timestamp.
        """
        schema = self.schema(name)
        step = schema.step_seconds
        if step is None:
            frame = self.load(name)
            step = typical_step(frame.data, schema.timestamp_column, schema.series_column)
        if not step:
            raise InvalidFeatureSet("feature_set", f"{name!r} has no two timestamps in a series")
        return step

    def load(
        self,
        name: str,
        end: datetime | None = None,
        *,
        version: str | None = None,
        start: datetime | None = None,
        series: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        bucket: int | None = None,
    ) -> FeatureFrame:
        """Read a set's rows: the current version or ``version``, from ``start``
        (inclusive) to ``end`` (exclusive), of the listed ``series`` (or series ``bucket``)
        and ``columns`` only (the key columns always come). The range, the series and the
        bucket are pushed down to the files: partitions outside them are not read.
        """
        schema, directory = self._versioned(name, version)
        dataset = version_dataset(directory, schema)
        keys = [c for c in (schema.series_column, schema.timestamp_column) if c]
        wanted = (
            schema.columns if columns is None else [*keys, *(c for c in columns if c not in keys)]
        )
        wanted_rows = row_filter(schema, dataset, start, end, series, bucket)
        table = dataset.to_table(columns=wanted, filter=wanted_rows)
        data = table.to_pandas().sort_values(keys, kind="stable").reset_index(drop=True)
        return FeatureFrame(schema, data)

    def batches(
        self,
        name: str,
        columns: Sequence[str],
        *,
        version: str | None = None,
        series: Sequence[str] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """A set's ``columns`` (of the listed ``series`` only), a batch of rows at a time:
        for what must see every row but need not hold them all. The batches are read one
        after another, without read-ahead: a scanner reading ahead holds many batches at
        once, whatever its consumer keeps (measured by bench/forecast_memory.py)."""
        schema, directory = self._versioned(name, version)
        dataset = version_dataset(directory, schema)
        wanted_rows = row_filter(schema, dataset, None, None, series, None)
        scanner = dataset.scanner(
            columns=list(columns),
            filter=wanted_rows,
            use_threads=False,
            batch_readahead=0,
            fragment_readahead=0,
        )
        for batch in scanner.to_batches():
            yield batch.to_pandas()

    def keys(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        version: str | None = None,
    ) -> SetKeys:
        """The rows, series, buckets and time span of a set's rows before ``end``, read
        batch by batch from the key columns alone (the span counts from ``start``)."""
        schema, directory = self._versioned(name, version)
        return scan_keys(schema, version_dataset(directory, schema), start, end)

    def put_windows(
        self, name: str, windows: Sequence[LabelledWindow]
    ) -> builtins.list[LabelledWindow]:
        """Replace the labelled anomaly windows of a set of the tenant's own.

        Raises: FeatureSetNotFound, InvalidRequest (``checked_windows``)."""
        schema, directory = self.schema(name), self._write_location(name)
        if not publication.has_published(directory):
            raise FeatureSetNotFound(name)
        known = self.keys(name).series
        checked = checked_windows(windows, schema, None if known is None else set(known))
        write_windows(directory, checked)
        return checked

    def windows(self, name: str) -> builtins.list[LabelledWindow]:
        """The set's labelled anomaly windows, in order of start ([] when none)."""
        self.schema(name)
        return read_windows(self._location(name))

    def put(
        self,
        name: str,
        table: pd.DataFrame,
        *,
        timestamp_column: str,
        target_column: str,
        series_column: str | None = None,
    ) -> FeatureSetSchema:
        """Store a DataFrame as the new current version of ``name`` (see ``import_file``)."""
        columns = Columns(timestamp_column, target_column, series_column)
        return self._import(name, table, columns, ImportLimits())

    def import_file(
        self,
        name: str,
        source: Source,
        *,
        timestamp_column: str,
        target_column: str,
        series_column: str | None = None,
        limits: ImportLimits | None = None,
    ) -> FeatureSetSchema:
        """Validate a CSV or Parquet file (a path or a binary stream), streaming it in
        batches, and store it as the new current version of feature set ``name``.

        Raises:
            InvalidFeatureSet: the file is not a table, a column is missing or of the
                wrong type, timestamps repeat within a series, the table is empty, or it
                has more columns than ``limits`` allow.
            FeatureSetTooLarge: the table, as read, exceeds ``limits``.
            Nothing is kept then.
        """
        columns = Columns(timestamp_column, target_column, series_column)
        return self._import(name, source, columns, limits or ImportLimits())

    def append(
        self,
        name: str,
        source: Source,
        *,
        on_conflict: str = REFUSE,
        limits: ImportLimits | None = None,
    ) -> FeatureSetSchema:
        """Add a CSV or Parquet file's rows (or a DataFrame's) to set ``name`` as its new
        current version, sharing the current version's files (``pipeline.store.appending``).
        Rows whose (series, timestamp) the set has are refused, or with ``on_conflict=
        "replace"`` replace the set's; the version records how many it added and replaced.

        Raises:
            FeatureSetNotFound: no such set of this store's own.
            InvalidFeatureSet: as for ``import_file``; the first row the set has already.
            InvalidColumns: columns missing, not the set's, or of other types.
            Conflict: a set stored before versions.
            Nothing is kept then.
        """
        target = self._write_location(name)
        return append_rows(target, name, source, on_conflict, limits or ImportLimits())

    def compact(self, name: str, *, full: bool = False) -> FeatureSetSchema | None:
        """Merge the current version's data parts (all of them with ``full``, else as the
        size tiers of ``pipeline.store.compaction`` say) into a new version of the same
        rows; None when there was nothing to merge."""
        return compact(self._write_location(name), name, full)

    def _import(
        self, name: str, source: Source, columns: Columns, limits: ImportLimits
    ) -> FeatureSetSchema:
        target = self._write_location(name)
        created = datetime.now(UTC)
        version = publication.new_version(created)
        directory = target / VERSIONS_DIR / version
        try:
            stats = write_partitioned(source, columns, directory / "data", limits)
        except BaseException:
            directory.delete_dir()
            for parent in (target / VERSIONS_DIR, target):  # a first import leaves no trace
                if not parent.children():
                    parent.delete_dir()
            raise
        special = {columns.timestamp, columns.target, columns.series, LABEL_COLUMN}
        schema = FeatureSetSchema(
            name=name,
            timestamp_column=columns.timestamp,
            target_column=columns.target,
            series_column=columns.series,
            covariates=[c for c in stats.columns if c not in special],
            label_column=LABEL_COLUMN if LABEL_COLUMN in stats.columns else None,
            rows=stats.rows,
            start=stats.start.isoformat(),
            end=stats.end.isoformat(),
            created_at=created.isoformat(),
            step_seconds=stats.step_seconds,
            version=version,
        )
        return publication.publish(target, schema)

    def remove_unreferenced(
        self,
        in_use: set[str],
        now: datetime,
        grace: timedelta,
        abandoned: timedelta = publication.ABANDONED_AFTER,
    ) -> builtins.list[str]:
        """Delete, in every set of every tenant, the versions that are not current, that
        no name in ``in_use`` pins, and that were superseded (their successor published)
        before ``now - grace`` (a reader that has just looked a version up has that long
        to open it); and the files of imports that never published, started before
        ``now - abandoned``.

        Returns the removed versions as ``<set directory>@<version>``.
        """
        removed = []
        for directory in self._all_set_directories():
            stale = retention.remove_stale(directory, in_use, now - grace, now - abandoned)
            removed += [f"{directory}@{version}" for version in stale]
        return removed

    def _all_set_directories(self) -> Iterator[Location]:
        """Every set's directory, published or holding only an interrupted import."""
        tenants = self.root / TENANTS_DIR
        owners = [self.root, *(tenants / t for t in tenants.children())]
        for owner in owners:
            for name in owner.children():
                directory = owner / name
                if is_valid_name(name) and (
                    publication.has_published(directory) or (directory / VERSIONS_DIR).is_dir()
                ):
                    yield directory
