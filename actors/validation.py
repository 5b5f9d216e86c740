"""Whether a job could ever run here (its LightGBM values, feature set, target, window,
backtest and CPUs, against the largest node and the most CPUs the cluster can grow to),
and how: a job on a large feature set trains data-parallel, and a job's fan-out widths
left to the service are fixed from the cluster's CPUs. Checked when a job is submitted
(or retried, or fired by a schedule or a policy), not when a stored config is read back:
a config queued before a check existed still loads."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from actors.cluster import ClusterShape
from domain.errors import InvalidFeatureSet, InvalidRequest
from pipeline.config import TrainingConfig
from pipeline.evaluation.backtest import check_fits as check_backtest_fits
from pipeline.features.build import CALENDAR_STEP
from pipeline.features.preprocess import MIN_ROWS
from pipeline.features.seasons import seasons_of
from pipeline.features.steps import CALENDAR_SLACK
from pipeline.hyperparameters import hyperparameter_problems
from pipeline.resources import Demand, demand_of
from pipeline.store.feature_store import FeatureStore
from pipeline.versions.column_types import is_feature_column
from pipeline.versions.schema import FeatureSetSchema


def check_per_series(config: TrainingConfig, series_column: str | None) -> None:
    """Raises: InvalidRequest when the feature set has one series only (the config
    itself refuses per_series with HPO or a backtest)."""
    if series_column is None:
        raise InvalidRequest(
            "config.per_series",
            f"feature set {config.feature_set!r} has no series column: per_series needs "
            "several series (upload it with series_column)",
        )


class JobValidator:
    """Checks a job's config against the feature store and the cluster's shape: a job
    whose bundles fit the largest node it can have and whose CPUs fit the most it can
    grow to is fine (it waits for them), one beyond either could never run. It reads the
    feature store (a file system, or S3): call it off the actor's event loop."""

    def __init__(
        self,
        features: FeatureStore,
        cluster: Callable[[], ClusterShape],
        distributed_min_rows: int,
    ) -> None:
        self._features = features
        self._cluster = cluster
        self._distributed_min_rows = distributed_min_rows

    def check(self, tenant_id: str, config: TrainingConfig) -> TrainingConfig:
        """The config to queue: ``config``, data-parallel if its feature set is large
        (``TrainingConfig.sized_for``), its fan-out widths fixed
        (``TrainingConfig.resolved_for``).

        Raises: InvalidRequest naming the ``config.*`` field at fault."""
        problems = hyperparameter_problems(config.hyperparameters)
        if problems:
            raise InvalidRequest("config.hyperparameters", "; ".join(problems))
        # Refused here, not by the config's own checks: a job stored with both still loads.
        if config.enable_hpo and config.time_budget_s is not None:
            raise InvalidRequest(
                "config.time_budget_s",
                "time_budget_s with enable_hpo is not supported (it bounds one fit, not a "
                "search: bound the search with n_trials); drop one of them",
            )
        features = self._features.for_tenant(tenant_id)
        if not features.exists(config.feature_set):
            known = [s.name for s in features.list()]
            raise InvalidRequest(
                "config.feature_set", f"unknown feature set {config.feature_set!r}; known: {known}"
            )
        schema = features.schema(config.feature_set)
        if config.target_variable != schema.target_column:
            raise InvalidRequest(
                "config.target_variable",
                f"feature set {schema.name!r} has target {schema.target_column!r}, "
                f"not {config.target_variable!r}",
            )
        clashing = [
            name for name in schema.covariates if is_feature_column(name, reserved_prefix=False)
        ]
        if clashing:  # a set imported before such names were refused
            raise InvalidRequest(
                "config.feature_set",
                f"feature set {schema.name!r} has covariates {clashing} named like the "
                "service's own features: import it again with them renamed",
            )
        check_window(config, schema)
        try:
            step_seconds = features.step_seconds(config.feature_set)
        except InvalidFeatureSet as exc:  # a set of a single timestamp
            raise InvalidRequest("config.feature_set", exc.message) from None
        check_enough_rows(config, schema, step_seconds)
        if config.per_series:
            check_per_series(config, schema.series_column)
        if config.backtest is not None:
            check_backtest_fits(config, schema, step_seconds)
        shape = self._cluster()
        sized = config.sized_for(schema.rows, self._distributed_min_rows, shape.max_cpus)
        resolved = sized.resolved_for(max(shape.cpus, shape.largest_node))
        check_fits(resolved, demand_of(resolved), shape)
        return resolved


def check_window(config: TrainingConfig, schema: FeatureSetSchema) -> None:
    """Raises: InvalidRequest when the job's ``start_date``/``end_date`` window lies wholly
    outside the set's rows (it would load nothing and fail in its first stage)."""
    first, last = (_utc(pd.Timestamp(moment)) for moment in (schema.start, schema.end))
    if config.start_date is not None and _utc(pd.Timestamp(config.start_date)) > last:
        raise InvalidRequest(
            "config.start_date",
            f"after the last row of feature set {schema.name!r} ({last.isoformat()})",
        )
    if config.end_date is not None and _utc(pd.Timestamp(config.end_date)) <= first:
        raise InvalidRequest(
            "config.end_date",
            f"at or before the first row of feature set {schema.name!r} ({first.isoformat()})",
        )


#: A step this long or longer is a calendar month (or quarter, year).
CALENDAR_SECONDS = CALENDAR_STEP.total_seconds()


def check_enough_rows(
    config: TrainingConfig, schema: FeatureSetSchema, step_seconds: float
) -> None:
    """Raises: InvalidRequest on ``config.horizon`` when the job's window of a set of one
    series cannot hold the rows each part needs (``MIN_ROWS``) past the horizon's warm-up
    (its longest lag; the rows before the window count towards it): the job would fail in
    its preprocess stage. Sets of several series are checked only for a warm-up longer
    than the window (their rows add up)."""
    earliest, last = (_utc(pd.Timestamp(moment)) for moment in (schema.start, schema.end))
    first = earliest
    if config.start_date is not None:
        first = max(first, _utc(pd.Timestamp(config.start_date)))
    if config.end_date is not None:
        last = min(last, _utc(pd.Timestamp(config.end_date)))
    # Counted generously, so that no job preprocess would take is refused: a window's ends
    # may fall between rows, and calendar steps (a 31-day median) may be a tenth shorter.
    unit = step_seconds * (1 - CALENDAR_SLACK if step_seconds >= CALENDAR_SECONDS else 1)
    steps = max(0, math.ceil((last - first).total_seconds() / unit) + 1)
    warm_up = max(seasons_of(step_seconds, config.horizon, weekly=False, yearly=False).lags)
    history = math.ceil((first - earliest).total_seconds() / unit)  # these feed the lags
    usable = steps - max(0, warm_up - history)
    held_out = max(2, round(usable * (config.test_split + config.validation_split)))
    test = max(1, round(usable * config.test_split))
    parts = {"train": usable - held_out, "validation": held_out - test, "test": test}
    short = usable < 3 or (
        schema.series_column is None and any(parts[p] < MIN_ROWS[p] for p in MIN_ROWS)
    )
    if short:
        needed = warm_up + sum(MIN_ROWS.values()) if schema.series_column is None else warm_up + 3
        raise InvalidRequest(
            "config.horizon",
            f"a horizon of {config.horizon} steps needs a {warm_up}-step warm-up before the "
            f"first row, then rows to train, validate and test on: about {needed} steps; "
            f"the selected range of {schema.name!r} has {steps}",
        )


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    return moment.tz_localize("UTC") if moment.tz is None else moment.tz_convert("UTC")


def check_fits(config: TrainingConfig, demand: Demand, shape: ClusterShape) -> None:
    """Raises: InvalidRequest when a bundle of ``demand`` fits no node the cluster has or
    can get, or its CPUs exceed the most the cluster can grow to."""
    if demand.largest > shape.largest_node:
        raise InvalidRequest(
            "config.n_workers",
            f"n_workers={config.n_workers} asks for {demand.largest} CPUs in one task, "
            f"more than any node holds: the largest node has {shape.largest_node} CPUs; "
            "the job could never run",
        )
    if demand.cpus > shape.max_cpus:
        raise InvalidRequest(
            _widest_field(config),
            f"the job holds {demand.cpus} CPUs at once, more than the cluster's ceiling of "
            f"{shape.max_cpus} CPUs ({shape.cpus} now); the job could never run",
        )


def _widest_field(config: TrainingConfig) -> str:
    """The field that sets how many CPUs a job holds at once."""
    if config.distributed is not None:
        return "config.distributed.workers"
    if config.enable_hpo or config.per_series or config.backtest is None:
        return "config.n_workers"
    return "config.backtest.workers"
