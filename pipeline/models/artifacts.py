"""Model artifacts: the layout of a registered model's directory, its version format, and
reading a model back (the register stage writes them, serving and the API read them).

An artifact directory ``<root>/<tenant>/<model_name>/<version>/`` holds:
``model.txt`` (the first LightGBM booster; ``model-1.txt``... for the others of a blend,
``quantile-0.1.txt``... for the quantile boosters), ``preprocessing.joblib`` (the fitted
scaler), ``metadata.json`` (features and how to build them, params, metrics, quantile
calibration, the level the boosters forecast relative to (``level``, null for the target
itself), feature importance, lineage), ``test_predictions.parquet`` and, for a
multi-series set, ``series_metrics.parquet``. A model trained per series keeps each
series' boosters in a subdirectory ``series-00000/``... laid out as above, listed (series
-> subdirectory, members, calibration) under ``per_series`` in ``metadata.json``. A model
refitted on every row keeps the boosters its test part scored in ``scored/``, listed under
``scored``. A version is the second it was claimed (``domain.versions``). The root is a
local path or a ``pyarrow.fs`` URI.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from sklearn.preprocessing import StandardScaler

from domain.versions import first_free_version
from pipeline.features.build import SERIES_FEATURE, FeatureSpec
from pipeline.scoring.adaptation import ForecastRows, RecentMisses
from pipeline.scoring.intervals import QuantileCalibration
from pipeline.storage import Location
from pipeline.training.blend import Blend, Member
from pipeline.training.level import Level
from pipeline.training.per_series import SeriesRouter

MODEL_FILE = "model.txt"
PREPROCESSING_FILE = "preprocessing.joblib"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.parquet"
SERIES_METRICS_FILE = "series_metrics.parquet"
#: The boosters the test part scored, when a final refit on every row replaced them.
SCORED_DIRECTORY = "scored"

#: Picks the version to register: (the model's directory, the clock) -> version.
ClaimVersion = Callable[[Location, datetime], str]


def model_directory(root: Location, tenant_id: str, model_name: str) -> Location:
    """Where the versions of a tenant's model are kept."""
    return root / tenant_id / model_name


def member_file(index: int) -> str:
    """The file of a blend's ``index``-th booster."""
    return MODEL_FILE if index == 0 else f"model-{index}.txt"


def quantile_file(alpha: float) -> str:
    """The file of the quantile booster for ``alpha``."""
    return f"quantile-{alpha:g}.txt"


def quantile_column(quantile: float) -> str:
    """The test-predictions column of a quantile: ``q0.1``."""
    return f"q{quantile:g}"


def series_directory(index: int) -> str:
    """The subdirectory of a per-series model's ``index``-th series."""
    return f"series-{index:05d}"


def claim_directory(parent: Location, now: datetime) -> str:
    """The first second from ``now`` whose directory this call creates: for runs with no
    orchestrator to ask (see ``Location.create_dir_exclusive`` for object stores)."""
    return first_free_version(now, lambda v: (parent / v).create_dir_exclusive())


@dataclass(frozen=True)
class ModelArtifact:
    """A registered model loaded back from its directory."""

    members: tuple[Member, ...]
    scaler: StandardScaler
    metadata: dict[str, Any]
    quantile_members: tuple[Member, ...] = ()
    #: A per-series model's series and their boosters (None for one global model).
    per_series: SeriesRouter[Blend] | None = None
    #: The level the boosters forecast relative to (``pipeline.training.level``).
    level: Level | None = None

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predict from unscaled feature rows, columns in ``metadata['features']`` order."""
        return self._model.predict(self.scaler.transform(features))

    def predict_quantiles(self, features: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        """The quantile forecasts (one column per quantile) of unscaled feature rows whose
        point forecasts are ``point``; None for models without quantiles."""
        return self._model.predict_quantiles(self.scaler.transform(features), point)

    def served_quantiles(
        self,
        point: np.ndarray,
        bounds: np.ndarray,
        actual: np.ndarray,
        timestamps: np.ndarray,
        series: np.ndarray | None,
        wanted: np.ndarray | None = None,
    ) -> np.ndarray:
        """``bounds`` as the model serves them: each series' rescaled by its recent misses
        among these rows (``actual``, NaN where unknown; ``timestamps`` as UTC
        ``datetime64``), as its evaluation rescaled the test part's; only the ``wanted``
        rows' (None: all)."""
        adaptation, calibration = self.adaptation, self.calibration
        if adaptation is None or calibration is None:
            return bounds
        spec = self.feature_spec
        rows = ForecastRows(
            point=point,
            bounds=bounds,
            actual=actual,
            timestamps=timestamps,
            series=series,
            lead=spec.horizon * spec.step,
            step=spec.step,
            out_of_sample_from=out_of_sample_from(self.metadata),
            wanted=wanted,
        )
        return adaptation.adapt(rows, calibration.quantiles)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-row contributions of each feature, then the expected value (last column);
        each row sums to ``predict``'s forecast."""
        scaled = self.scaler.transform(features)
        if self.per_series is None:
            return Blend(self.members, level=self.level).contributions(scaled)
        table = self.per_series.apply(scaled, lambda blend, rows, _: blend.contributions(rows))
        assert table is not None
        return table

    @property
    def _model(self) -> Blend | SeriesRouter[Blend]:
        if self.per_series is not None:
            return self.per_series
        return Blend(self.members, self.quantile_members, self.calibration, self.level)

    @property
    def calibration(self) -> QuantileCalibration | None:
        """The model's quantile calibration (a per-series model's first series' for one
        with quantiles: the series share their quantiles, not their widening)."""
        if self.per_series is not None:
            return self.per_series.parts[0].calibration
        stored = self.metadata.get("quantile_calibration")
        return QuantileCalibration.from_dict(stored) if stored else None

    @property
    def adaptation(self) -> RecentMisses | None:
        """How the model's intervals follow their recent misses; None for a model
        registered before they did, whose intervals stay as calibrated."""
        stored = self.metadata.get("interval_adaptation")
        return RecentMisses.from_dict(stored) if stored else None

    @property
    def series(self) -> tuple[str, ...] | None:
        """The series the model forecasts (None: any of its feature spec's)."""
        return self.per_series.series if self.per_series is not None else None

    @property
    def feature_spec(self) -> FeatureSpec:
        return feature_spec_of(self.metadata)


def feature_spec_of(metadata: dict[str, Any]) -> FeatureSpec:
    """How a model's features are built (models registered before the spec was saved read
    the horizon and season alone)."""
    stored = metadata.get("feature_spec")
    if stored:
        return FeatureSpec.from_dict(stored)
    return FeatureSpec(int(metadata["config"]["horizon"]), int(metadata["season"]))


def out_of_sample_from(metadata: dict[str, Any]) -> pd.Timestamp:
    """The first time a model was not fitted on (UTC): its test part's start, or the step
    after its data with a final refit on every row (models saved before the field: the
    test part's start, as they were fitted)."""
    lineage = metadata["lineage"]
    return pd.Timestamp(lineage.get("out_of_sample_from", lineage["test_start"]))


def load_metadata(directory: Location) -> dict[str, Any]:
    """A model's ``metadata.json`` alone: what it reads and how, without its boosters."""
    metadata: dict[str, Any] = json.loads((directory / METADATA_FILE).read_text())
    return metadata


def load_artifact(directory: Location, scored: bool = False) -> ModelArtifact:
    """The model a directory holds; with ``scored``, the model its test part scored: the
    same one, unless a final refit on every row replaced its boosters, whose scored ones
    it then serves instead, out of sample from its test part's start on."""
    metadata = load_metadata(directory)
    scaler = joblib.load(io.BytesIO((directory / PREPROCESSING_FILE).read_bytes()))
    before_refit = metadata.get("scored") if scored else None
    if before_refit is not None:
        lineage = {**metadata["lineage"], "out_of_sample_from": metadata["lineage"]["test_start"]}
        blend = _blend(directory / before_refit["directory"], before_refit)
        metadata = {**metadata, **before_refit, "lineage": lineage}
        return ModelArtifact(
            blend.members, scaler, metadata, blend.quantile_members, level=blend.level
        )
    if metadata.get("per_series"):
        return ModelArtifact((), scaler, metadata, per_series=_series_router(directory, metadata))
    stored = metadata.get("members") or [
        {"file": MODEL_FILE, "objective": "regression", "rounds": metadata["best_iteration"]}
    ]
    blend = _blend(directory, {**metadata, "members": stored})
    return ModelArtifact(blend.members, scaler, metadata, blend.quantile_members, level=blend.level)


def _blend(directory: Location, entry: dict[str, Any]) -> Blend:
    """The boosters an entry lists (a model's metadata, or one series' entry in it)."""
    members = tuple(
        Member(
            member["objective"],
            lgb.Booster(model_str=(directory / member["file"]).read_text()),
            int(member["rounds"]),
        )
        for member in entry["members"]
    )
    quantile_members = tuple(
        Member(
            "quantile",
            lgb.Booster(model_str=(directory / member["file"]).read_text()),
            int(member["rounds"]),
            float(member["alpha"]),
        )
        for member in entry.get("quantile_members") or []
    )
    stored = entry.get("quantile_calibration")
    calibration = QuantileCalibration.from_dict(stored) if stored else None
    level = Level.from_dict(entry["level"]) if entry.get("level") else None
    return Blend(members, quantile_members, calibration, level)


def _series_router(directory: Location, metadata: dict[str, Any]) -> SeriesRouter[Blend]:
    entries = metadata["per_series"]
    positions = {name: i for i, name in enumerate(metadata["feature_spec"]["series"])}
    return SeriesRouter(
        series=tuple(e["series"] for e in entries),
        parts=tuple(_blend(directory / e["directory"], e) for e in entries),
        codes=tuple(positions[e["series"]] for e in entries),
        column=metadata["features"].index(SERIES_FEATURE),
    )


def artifact_bytes(directory: Location) -> int:
    """The size of a model's files, its series' subdirectories included."""
    selector = pafs.FileSelector(directory.path, recursive=True)
    infos = directory.filesystem.get_file_info(selector)
    return sum(info.size for info in infos if info.type == pafs.FileType.File)


def predictions_page(
    directory: Location, offset: int, limit: int, series: str | None = None
) -> tuple[pd.DataFrame, int]:
    """``limit`` rows from ``offset`` of the test period saved with the model (actual,
    predicted, quantiles; of one series if given), and how many rows there are."""
    table = _predictions(directory, series)
    frame: pd.DataFrame = table.slice(offset, limit).to_pandas()
    return frame, table.num_rows


def predictions_csv(
    directory: Location, series: str | None = None, batch_rows: int = 10_000
) -> Iterator[str]:
    """The test period saved with the model (of one series if given) as CSV: a header,
    then the rows, a batch at a time."""
    table = _predictions(directory, series)
    batches = table.to_batches(max_chunksize=batch_rows) or [table.slice(0, 0)]
    for index, batch in enumerate(batches):
        text = io.StringIO()
        batch.to_pandas().to_csv(text, header=index == 0, index=False)
        yield text.getvalue()


def _predictions(directory: Location, series: str | None) -> pa.Table:
    table = (directory / PREDICTIONS_FILE).read_parquet()
    if series is None:
        return table
    if "series" not in table.column_names:  # one series, unnamed: none matches
        return table.slice(0, 0)
    return table.filter(pc.equal(table["series"], series))


def load_series_metrics(directory: Location) -> pd.DataFrame | None:
    """The per-series test metrics of a multi-series model; None for a single series."""
    location = directory / SERIES_METRICS_FILE
    if not location.is_file():
        return None
    frame: pd.DataFrame = location.read_parquet().to_pandas()
    return frame
