"""Retention: which versions of a set, and which of their files, ``FeatureStore.
remove_unreferenced`` deletes.

A version goes once it is not current, no job pins it and its successor was published
longer ago than a grace period. Its files go with it unless a kept version still reads them
(an append shares its predecessor's parts): they stay, without a record, until no kept
version reads them, then go as an interrupted write's would.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

from pipeline.storage import Location
from pipeline.versions import publication
from pipeline.versions.schema import VERSIONS_DIR


def remove_stale(
    directory: Location, in_use: set[str], superseded_before: datetime, started_before: datetime
) -> list[str]:
    """Delete the versions of the set at ``directory`` that retention removes, and the
    files of writes that never published (started before ``started_before``) or of
    withdrawn versions no kept version reads any more. Returns the removed versions."""
    publication.adopt_legacy(directory)
    kept = publication.published(directory)
    stale = [
        schema
        for schema, successor in pairwise(kept)
        if schema.pinned_version not in in_use
        and datetime.fromisoformat(successor.published_at or successor.created_at)
        < superseded_before
    ]
    gone = {schema.pinned_version for schema in stale}
    still_read = publication.read_versions(s for s in kept if s.pinned_version not in gone)
    for schema in stale:
        publication.withdraw(directory, schema, still_read)
    removed = [schema.pinned_version for schema in stale]
    for version in publication.unpublished(directory):
        started = publication.started_at(version)
        if version in in_use or version in still_read:
            continue
        if started is None or started >= started_before:
            continue
        (directory / VERSIONS_DIR / version).delete_dir()
        removed.append(version)
    if not kept and not (directory / VERSIONS_DIR).children():
        directory.delete_dir()  # only an interrupted first import was there
    return removed
