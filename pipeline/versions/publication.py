"""Publishing a feature-set version: its files first, then the one record that shows it.

A writer (an import, or anything that writes a set's rows) puts a version's files under
``<set>/versions/<version>/`` and then calls ``publish``: one atomic write of the version's
record, ``<set>/published/<published at>_<version>.json`` (its schema and the time), makes
it visible and current (the current version is the last one published). A version
directory without a record is a write that never finished (an API replica killed
mid-upload): no reader sees it, and retention deletes it once no import can still be
writing it (``ABANDONED_AFTER``).

Sets stored before records read as published, each version at its creation time: a
``schema.json`` naming the current version and, under ``versions/``, the older versions it
kept (those created before the current one; a newer one was never made current).
``adopt_legacy`` gives them records, the current one first, so that readers see the same
versions at every step.

Records are written one at a time per set, under a lock (``<set>/.publishing``, created
exclusively): a writer that made its version on top of another (an append, a compaction)
publishes it only if that one is still current, else ``Moved`` tells it to redo its work on
the new current version, so concurrent appends never lose rows. The lock is exclusive on a
local disk and within a process; object stores have no create-if-absent, so writers in
different processes there can, in the same instant, both take it.
A version's files may be read by later versions (appends share their predecessor's
parts): ``withdraw`` keeps them while a kept version reads them.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from domain.errors import ServiceUnavailable
from pipeline.storage import Location
from pipeline.versions.schema import (
    SCHEMA_FILE,
    VERSIONS_DIR,
    FeatureSetSchema,
    dump_schema,
    read_schema,
)

PUBLISHED_DIR = "published"
#: An unpublished version started this long ago is an interrupted write, not one in
#: progress (an upload's size is bounded; the largest imports in minutes).
ABANDONED_AFTER = timedelta(hours=24)

#: The lock a record is written under, and how long a holder may keep it before it is
#: taken for one that died (holders only list the records and write one).
LOCK_DIR = ".publishing"
LOCK_STALE = timedelta(seconds=60)
LOCK_WAIT_SECONDS = 120.0

_STAMP = "%Y%m%dT%H%M%S%fZ"
_RECORD = re.compile(r"(?P<stamp>\d{8}T\d{12}Z)_(?P<version>[^/]+)\.json")
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class Moved(Exception):
    """The set's current version is no longer the one a new version was made on."""

    def __init__(self, current: FeatureSetSchema | None) -> None:
        super().__init__(f"the current version is now {current and current.pinned_version}")
        self.current = current


def new_version(started: datetime) -> str:
    """A unique name for a version whose write starts at ``started``."""
    return f"{started.astimezone(UTC):{_STAMP}}-{uuid.uuid4().hex[:8]}"


def started_at(version: str) -> datetime | None:
    """When the write of a version named by ``new_version`` started (None: another name)."""
    try:
        return datetime.strptime(version.split("-", 1)[0], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def publish(
    directory: Location, schema: FeatureSetSchema, on_top_of: str | None = None
) -> FeatureSetSchema:
    """Make a version whose files are all written visible, and the set's current version.

    Call it only once every file under ``schema.data_path()`` is written: the record it
    writes (atomically) is what readers look for. ``on_top_of``: the version it was made
    from, which must still be current. Returns the schema as published, with
    ``published_at``.

    Raises:
        Moved: ``on_top_of`` is no longer current (nothing is written).
        ServiceUnavailable: another writer held the set's lock too long.
    """
    with _publishing(directory):
        if on_top_of is not None:
            now_current = current(directory)
            if now_current is None or now_current.pinned_version != on_top_of:
                raise Moved(now_current)
        now = datetime.now(UTC)
        records = _records(directory)
        if records:  # a record's name orders it: never before the last, whatever the clock
            last = datetime.strptime(records[-1][1].name.split("_", 1)[0], _STAMP)
            now = max(now, last.replace(tzinfo=UTC) + timedelta(microseconds=1))
        published = replace(schema, published_at=now.isoformat())
        _write_record(directory, published, now)
    return published


def published(directory: Location) -> list[FeatureSetSchema]:
    """Every published version of the set at ``directory``, in the order they were
    published: the current one last."""
    legacy = _legacy(directory)  # before the records: adoption writes these first
    by_version = {s.pinned_version: s for s in legacy}
    by_version.update({v: read_schema(record) for v, record in _records(directory)})
    return sorted(by_version.values(), key=_publication_order)


def current(directory: Location) -> FeatureSetSchema | None:
    """The set's current version (None: nothing published)."""
    legacy = _read_if_there(directory / SCHEMA_FILE)  # before the records, as above
    records = _records(directory)
    if records:
        return read_schema(records[-1][1])
    return None if legacy is None else _as_published(legacy)


def find(directory: Location, version: str) -> FeatureSetSchema | None:
    """The published version named ``version`` (None: not published, or no such one)."""
    record = dict(_records(directory)).get(version)
    if record is not None:
        return read_schema(record)
    return next((s for s in _legacy(directory) if s.pinned_version == version), None)


def has_published(directory: Location) -> bool:
    """Whether the set at ``directory`` has a published version (readers see it)."""
    return bool(_records(directory)) or (directory / SCHEMA_FILE).is_file()


def unpublished(directory: Location) -> list[str]:
    """The version directories no record names: writes in progress, or interrupted."""
    shown = {v for v, _ in _records(directory)} | {s.pinned_version for s in _legacy(directory)}
    return [v for v in (directory / VERSIONS_DIR).children() if v not in shown]


def withdraw(directory: Location, schema: FeatureSetSchema, still_read: Collection[str]) -> None:
    """Delete a published version: its record first (readers stop seeing it), then the
    files it wrote, unless its name is in ``still_read`` (the versions whose files the
    kept versions read: ``read_versions``); a crash in between leaves an unpublished
    directory that retention removes once nothing reads it."""
    for version, record in _records(directory):
        if version == schema.pinned_version:
            record.delete_file()
    if schema.version is None:  # stored before versions: one file beside schema.json
        (directory / schema.data_file).delete_file()
    if schema.pinned_version not in still_read:
        (directory / VERSIONS_DIR / schema.pinned_version).delete_dir()


def read_versions(schemas: Iterable[FeatureSetSchema]) -> set[str]:
    """The versions whose files ``schemas`` read (their own, and those of the parts they
    share)."""
    return {
        version
        for schema in schemas
        for version in (part.written_by for part in schema.data_parts())
        if version is not None
    }


def adopt_legacy(directory: Location) -> None:
    """Give the versions of a set stored before records a record each (the current one
    first), then drop its ``schema.json``; readers see the same versions throughout."""
    legacy = _legacy(directory)
    if not legacy:
        return
    recorded = {version for version, _ in _records(directory)}
    for schema in reversed(legacy):
        if schema.pinned_version not in recorded:
            _write_record(directory, schema, _published_at(schema))
    (directory / SCHEMA_FILE).delete_file()


@contextmanager
def _publishing(directory: Location) -> Iterator[None]:
    """Hold the set's publication lock: one thread of the process, then one process."""
    with _process_locks_guard:
        local = _process_locks.setdefault(str(directory), threading.Lock())
    with local:
        lock = directory / LOCK_DIR
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not lock.create_dir_exclusive():
            if _stale(lock):
                lock.delete_dir()
            elif time.monotonic() > deadline:
                raise ServiceUnavailable(f"feature set {directory.name!r} is locked; retry")
            else:
                time.sleep(0.005)
        try:
            yield
        finally:
            lock.delete_dir()


def _stale(lock: Location) -> bool:
    """Whether a lock was taken longer ago than ``LOCK_STALE`` (its holder died)."""
    infos = lock.filesystem.get_file_info([lock.path, (lock / ".created").path])
    times = [_aware(info.mtime) for info in infos if info.mtime is not None]
    return bool(times) and datetime.now(UTC) - max(times) > LOCK_STALE


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_record(directory: Location, schema: FeatureSetSchema, at: datetime) -> None:
    name = f"{at.astimezone(UTC):{_STAMP}}_{schema.pinned_version}.json"
    (directory / PUBLISHED_DIR / name).write_text(dump_schema(schema))


def _records(directory: Location) -> list[tuple[str, Location]]:
    """The set's records by version, oldest first (their names start with the time)."""
    folder = directory / PUBLISHED_DIR
    matches = (_RECORD.fullmatch(name) for name in folder.children())
    return [(m["version"], folder / m.string) for m in matches if m is not None]


def _legacy(directory: Location) -> list[FeatureSetSchema]:
    """The versions of a set stored before records, oldest first (none once adopted)."""
    current = _read_if_there(directory / SCHEMA_FILE)
    if current is None:
        return []
    versions = directory / VERSIONS_DIR
    kept = []
    for name in versions.children():
        record = versions / name / SCHEMA_FILE
        if name != current.pinned_version and record.is_file():
            schema = read_schema(record)
            if _created(schema) < _created(current):
                kept.append(schema)
    return [_as_published(s) for s in [*sorted(kept, key=_created), current]]


def _read_if_there(location: Location) -> FeatureSetSchema | None:
    try:
        return read_schema(location)
    except FileNotFoundError:
        return None


def _as_published(schema: FeatureSetSchema) -> FeatureSetSchema:
    return schema if schema.published_at else replace(schema, published_at=schema.created_at)


def _published_at(schema: FeatureSetSchema) -> datetime:
    return datetime.fromisoformat(schema.published_at or schema.created_at)


def _created(schema: FeatureSetSchema) -> datetime:
    return datetime.fromisoformat(schema.created_at)


def _publication_order(schema: FeatureSetSchema) -> tuple[datetime, str]:
    return _published_at(schema), schema.pinned_version
