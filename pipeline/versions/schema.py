"""What the feature store keeps of a set: a version's schema (the record that publishes it,
``pipeline.versions.publication``), the rows a job reads, and what its key columns hold.

A version's rows are one or more data parts, each a partitioned Parquet dataset under some
version's directory: an import writes one part, an append adds one to those of the version
it appends to (sharing their files), and a compaction merges parts into one
(``pipeline.store.appending``, ``pipeline.store.compaction``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from pipeline.storage import Location
from pipeline.summaries import LoadSummary

#: The data file of sets written before the name was versioned.
DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.json"
VERSIONS_DIR = "versions"
#: Holds one directory of feature sets per tenant.
TENANTS_DIR = "_tenants"


#: How a version was made (``FeatureSetSchema.operation``).
IMPORT, APPEND, COMPACTION = "import", "append", "compaction"


@dataclass(frozen=True)
class DataPart:
    """One partitioned Parquet dataset of a version's rows, shared by every version that
    lists it."""

    #: Relative to the set's directory: ``versions/<the version that wrote it>/data``, a
    #: dataset partitioned by bucket and year, or ``.../<name>.parquet``, one file that
    #: holds the partition columns (a small part: ``pipeline.versions.parts``).
    path: str
    #: The rows written there (a version may exclude some files: ``excluded``).
    rows: int

    @property
    def flat(self) -> bool:
        """Whether the part is one file rather than a partitioned dataset."""
        return self.path.endswith(".parquet")

    def holds(self, file: str) -> bool:
        """Whether ``file`` (relative to the set's directory) is one of the part's."""
        return file == self.path or file.startswith(f"{self.path}/")

    @property
    def written_by(self) -> str | None:
        """The version whose directory holds it (None: the one file of a set stored before
        versions)."""
        steps = self.path.split("/")
        return steps[1] if len(steps) == 3 and steps[0] == VERSIONS_DIR else None


@dataclass(frozen=True)
class FeatureSetSchema:
    name: str
    timestamp_column: str
    target_column: str
    series_column: str | None
    covariates: list[str]
    label_column: str | None
    rows: int
    start: str
    end: str
    created_at: str
    #: The single data file of a set stored before versions (unused by versioned sets).
    data_file: str = DATA_FILE
    #: The typical spacing of the timestamps (None for sets stored before it was kept).
    step_seconds: float | None = None
    #: The immutable version these rows are (None for sets stored before versions).
    version: str | None = None
    #: When it became the current version (its predecessor was superseded then).
    published_at: str | None = None
    #: IMPORT, APPEND or COMPACTION.
    operation: str = IMPORT
    #: The version an append or a compaction was made on.
    previous_version: str | None = None
    #: The rows an append added, and those of ``previous_version`` it replaced.
    appended_rows: int | None = None
    replaced_rows: int | None = None
    #: The data parts, oldest first (empty: the one part at ``data_path()``).
    parts: list[DataPart] = field(default_factory=list)
    #: Files of those parts this version does not read (replaced rows' copied-from files),
    #: relative to the set's directory.
    excluded: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Records and model metadata hold parts as plain dicts (``asdict``).
        parts: list[Any] = self.parts
        object.__setattr__(
            self, "parts", [p if isinstance(p, DataPart) else DataPart(**p) for p in parts]
        )

    @property
    def columns(self) -> list[str]:
        named = [self.timestamp_column, self.series_column, self.target_column, self.label_column]
        return [c for c in named if c] + self.covariates

    @property
    def pinned_version(self) -> str:
        """The name a job pins: the version, or the data file of a set stored before them."""
        return self.version or self.data_file

    def data_path(self) -> str:
        """Where the files this version wrote are, relative to the set's directory (all its
        rows, for an import)."""
        if self.version is None:
            return self.data_file
        return f"{VERSIONS_DIR}/{self.version}/data"

    def data_parts(self) -> list[DataPart]:
        """The parts a version's rows are read from, oldest first."""
        return self.parts or [DataPart(self.data_path(), self.rows)]


@dataclass(frozen=True)
class FeatureFrame:
    """A feature set's rows (timestamps as UTC datetimes), sorted by series then time."""

    schema: FeatureSetSchema
    data: pd.DataFrame

    def summary(self) -> LoadSummary:
        return LoadSummary(
            rows=len(self.data), feature_set=self.schema.name, version=self.schema.pinned_version
        )


@dataclass(frozen=True)
class SetKeys:
    """What a set's key columns hold up to an end date (``FeatureStore.keys``)."""

    rows: int
    #: The first and last timestamps from the start date on (None: no rows there).
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    #: The series, sorted (None for a set without a series column).
    series: tuple[str, ...] | None
    #: Per series bucket (each readable alone, ``load(bucket=)``; ``None`` for a set stored
    #: before partitions), the rows of each of its series (``None`` for a set without a
    #: series column).
    rows_by_bucket: dict[int | None, dict[str | None, int]]

    @property
    def buckets(self) -> tuple[int | None, ...]:
        """The buckets holding rows, in order."""
        return tuple(sorted(self.rows_by_bucket, key=lambda b: -1 if b is None else b))


def read_schema(location: Location) -> FeatureSetSchema:
    return FeatureSetSchema(**json.loads(location.read_text()))


def dump_schema(schema: FeatureSetSchema) -> str:
    return json.dumps(asdict(schema), indent=2)
