"""The Parquet feature store: one directory per feature set, a data file and its schema.

User uploads and the demo sets go through ``FeatureStore.put``, which validates the table
before it writes anything: a rejected table leaves nothing behind. The root is a local
directory or any ``pyarrow.fs`` URI (see ``pipeline.storage``); a set is replaced without
a moment where readers see a mix: the data goes to a new file first, then one write of
``schema.json`` (which names that file) switches readers over, then older files go.

Shared sets (the demo sets, an admin's uploads) live at ``<root>/<name>``; a tenant's own
at ``<root>/_tenants/<tenant>/<name>`` (``_`` cannot start a name, so the two never meet).
A store opened for a tenant sees its own sets and the shared ones, its own first, and
writes only its own: another tenant's sets do not exist for it.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from domain.errors import FeatureSetNotFound, InvalidFeatureSet
from domain.names import is_valid_name
from pipeline.storage import Location
from pipeline.summaries import LoadSummary

#: The data file of sets written before the name was versioned.
DATA_FILE = "data.parquet"
SCHEMA_FILE = "schema.json"
#: A column with this name holds anomaly labels (0/1), never a covariate.
LABEL_COLUMN = "is_anomaly"
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
    data_file: str = DATA_FILE
    #: The typical spacing of the timestamps (None for sets stored before it was kept).
    step_seconds: float | None = None

    @property
    def columns(self) -> list[str]:
        named = [self.timestamp_column, self.series_column, self.target_column, self.label_column]
        return [c for c in named if c] + self.covariates


@dataclass(frozen=True)
class FeatureFrame:
    """A feature set's rows (timestamps as UTC datetimes), sorted by series then time."""

    schema: FeatureSetSchema
    data: pd.DataFrame

    def summary(self) -> LoadSummary:
        return LoadSummary(rows=len(self.data), feature_set=self.schema.name)


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
        return own if (own / SCHEMA_FILE).is_file() else self.root / name

    def _write_location(self, name: str) -> Location:
        if not is_valid_name(name):
            raise InvalidFeatureSet("name", f"invalid feature set name {name!r}")
        return self._own / name

    def exists(self, name: str) -> bool:
        return is_valid_name(name) and (self._location(name) / SCHEMA_FILE).is_file()

    def list(self) -> list[FeatureSetSchema]:
        names = {name for directory in {self.root, self._own} for name in directory.children()}
        return [self.schema(name) for name in sorted(names) if self.exists(name)]

    def schema(self, name: str) -> FeatureSetSchema:
        location = self._location(name) / SCHEMA_FILE
        if not location.is_file():
            raise FeatureSetNotFound(name)
        return FeatureSetSchema(**json.loads(location.read_text()))

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

    def load(self, name: str, end: datetime | None = None) -> FeatureFrame:
        """Read a feature set, up to ``end`` (exclusive) when given."""
        schema = self.schema(name)
        filters = [(schema.timestamp_column, "<", pd.Timestamp(end))] if end else None
        table = (self._location(name) / schema.data_file).read_parquet(filters)
        return FeatureFrame(schema, table.to_pandas().reset_index(drop=True))

    def put_bytes(
        self,
        name: str,
        body: bytes,
        *,
        timestamp_column: str,
        target_column: str,
        series_column: str | None = None,
    ) -> FeatureSetSchema:
        """Parse a CSV or Parquet upload and store it (see ``put``)."""
        return self.put(
            name,
            parse_table(body),
            timestamp_column=timestamp_column,
            target_column=target_column,
            series_column=series_column,
        )

    def put(
        self,
        name: str,
        table: pd.DataFrame,
        *,
        timestamp_column: str,
        target_column: str,
        series_column: str | None = None,
    ) -> FeatureSetSchema:
        """Validate a table and store it as feature set ``name``, replacing any earlier one.

        Raises:
            InvalidFeatureSet: a column is missing or of the wrong type, timestamps repeat
                within a series, or the table is empty. Nothing is written then.
        """
        target = self._write_location(name)
        data = _validated(table, timestamp_column, target_column, series_column)
        ts = data[timestamp_column]
        schema = FeatureSetSchema(
            name=name,
            timestamp_column=timestamp_column,
            target_column=target_column,
            series_column=series_column,
            covariates=[
                c
                for c in data.columns
                if c not in {timestamp_column, target_column, series_column, LABEL_COLUMN}
            ],
            label_column=LABEL_COLUMN if LABEL_COLUMN in data.columns else None,
            rows=len(data),
            start=ts.min().isoformat(),
            end=ts.max().isoformat(),
            created_at=datetime.now(UTC).isoformat(),
            data_file=f"data-{uuid.uuid4().hex[:12]}.parquet",
            step_seconds=typical_step(data, timestamp_column, series_column),
        )
        (target / schema.data_file).write_parquet(pa.Table.from_pandas(data, preserve_index=False))
        (target / SCHEMA_FILE).write_text(json.dumps(asdict(schema), indent=2))
        for stale in target.children():
            if stale not in {SCHEMA_FILE, schema.data_file}:
                (target / stale).delete_file()
        return schema


def typical_step(
    data: pd.DataFrame, timestamp_column: str, series_column: str | None
) -> float | None:
    """The median spacing of consecutive timestamps within a series, in seconds."""
    keys = [series_column, timestamp_column] if series_column else [timestamp_column]
    ordered = data.sort_values(keys)
    stamps = ordered[timestamp_column]
    spacing = stamps.groupby(ordered[series_column]).diff() if series_column else stamps.diff()
    seconds = spacing.dropna().dt.total_seconds()
    return float(seconds.median()) if len(seconds) else None


def parse_table(body: bytes) -> pd.DataFrame:
    """Read Parquet (by its magic bytes) or CSV.

    Raises:
        InvalidFeatureSet: the body is neither.
    """
    if not body:
        raise InvalidFeatureSet("body", "the uploaded file is empty")
    try:
        if body[:4] == b"PAR1":
            table: pd.DataFrame = pq.read_table(io.BytesIO(body)).to_pandas()
            return table
        return pd.read_csv(io.BytesIO(body))
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidFeatureSet("body", f"cannot read the file as CSV or Parquet: {exc}") from exc


def _validated(
    table: pd.DataFrame, timestamp_column: str, target_column: str, series_column: str | None
) -> pd.DataFrame:
    for field, column in (
        ("timestamp_column", timestamp_column),
        ("target_column", target_column),
        ("series_column", series_column),
    ):
        if column is not None and column not in table.columns:
            raise InvalidFeatureSet(
                field, f"column {column!r} not in the file (columns: {list(table.columns)})"
            )
    if table.empty:
        raise InvalidFeatureSet("body", "the file has no rows")
    data = table.copy()
    try:
        data[timestamp_column] = pd.to_datetime(data[timestamp_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidFeatureSet(
            "timestamp_column", f"column {timestamp_column!r} does not hold timestamps: {exc}"
        ) from exc
    if data[timestamp_column].isna().any():
        raise InvalidFeatureSet("timestamp_column", f"column {timestamp_column!r} has empty values")
    if not _is_number(data[target_column]):
        raise InvalidFeatureSet("target_column", f"target column {target_column!r} is not numeric")
    special = {timestamp_column, target_column, series_column}
    for column in data.columns:
        if column in special:
            continue
        if not _is_number(data[column]) and not pd.api.types.is_bool_dtype(data[column]):
            raise InvalidFeatureSet(
                "body", f"covariate column {column!r} is not numeric; only numeric covariates"
            )
    if series_column is not None:
        data[series_column] = data[series_column].astype(str)
    keys = [series_column, timestamp_column] if series_column else [timestamp_column]
    duplicated = data.duplicated(subset=keys)
    if duplicated.any():
        first = data[duplicated].iloc[0][keys].tolist()
        raise InvalidFeatureSet("timestamp_column", f"timestamp repeated within a series: {first}")
    if LABEL_COLUMN in data.columns:
        data[LABEL_COLUMN] = data[LABEL_COLUMN].astype(bool)
    return data.sort_values(keys, kind="stable").reset_index(drop=True)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
