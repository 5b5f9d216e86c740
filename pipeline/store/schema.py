"""What the feature store keeps of a set: a version's schema (the record that publishes it,
``pipeline.store.publication``), the rows a job reads, and what its key columns hold."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd

from pipeline.storage import Location
from pipeline.summaries import LoadSummary

#: The data file of sets written before the name was versioned.
DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.json"
VERSIONS_DIR = "versions"
#: Holds one directory of feature sets per tenant.
TENANTS_DIR = "_tenants"


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

    @property
    def columns(self) -> list[str]:
        named = [self.timestamp_column, self.series_column, self.target_column, self.label_column]
        return [c for c in named if c] + self.covariates

    @property
    def pinned_version(self) -> str:
        """The name a job pins: the version, or the data file of a set stored before them."""
        return self.version or self.data_file

    def data_path(self) -> str:
        """Where the rows are, relative to the set's directory."""
        if self.version is None:
            return self.data_file
        return f"{VERSIONS_DIR}/{self.version}/data"


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
