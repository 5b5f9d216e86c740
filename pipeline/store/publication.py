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
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pipeline.storage import Location
from pipeline.store.schema import (
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

_STAMP = "%Y%m%dT%H%M%S%fZ"
_RECORD = re.compile(r"(?P<stamp>\d{8}T\d{12}Z)_(?P<version>[^/]+)\.json")


def new_version(started: datetime) -> str:
    """A unique name for a version whose write starts at ``started``."""
    return f"{started.astimezone(UTC):{_STAMP}}-{uuid.uuid4().hex[:8]}"


def started_at(version: str) -> datetime | None:
    """When the write of a version named by ``new_version`` started (None: another name)."""
    try:
        return datetime.strptime(version.split("-", 1)[0], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def publish(directory: Location, schema: FeatureSetSchema) -> FeatureSetSchema:
    """Make a version whose files are all written visible, and the set's current version.

    Call it only once every file under ``schema.data_path()`` is written: the record it
    writes (atomically) is what readers look for. Returns the schema as published, with
    ``published_at``.
    """
    now = datetime.now(UTC)
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


def withdraw(directory: Location, schema: FeatureSetSchema) -> None:
    """Delete a published version: its record first (readers stop seeing it), then its
    files; a crash in between leaves an unpublished directory that retention removes."""
    for version, record in _records(directory):
        if version == schema.pinned_version:
            record.delete_file()
    if schema.version is None:  # stored before versions: one file beside schema.json
        (directory / schema.data_file).delete_file()
    (directory / VERSIONS_DIR / schema.pinned_version).delete_dir()


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
