"""Monitoring on the orchestrator: which stored forecasts to score, and the scores kept.

Every ``monitor_seconds`` it looks for completed forecasts with rows not yet scored whose
feature set has a version they have not been scored against (a batch forecast never
scored, only once a version was published after it: before, no actual can be there). Per
model, a Ray task (``pipeline.graph.monitor``) reads the forecasts and their actuals,
scores them and takes the drift checks; their rows are written here, and the model's
gauges set from the latest. A forecast older than ``max_age`` is no longer looked at.
While a rollback rule watches the model's promotion (``shadow_for``), its forecasts made
since the promotion are also forecast by the champion it replaced, and both scores kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from itertools import groupby

from db.monitoring import MonitorStore, NewEvaluation, Unscored
from db.records import ModelRecord
from db.registry import ModelRegistry
from domain.errors import FeatureSetNotFound, ModelNotFound
from domain.forecasts import ForecastSource
from pipeline.monitoring.drift import RECENT_WINDOWS, SCORED_SHARE
from pipeline.monitoring.evaluate import Evaluated, MonitorTask, PastEvaluation, PendingForecast
from pipeline.monitoring.shadow import ShadowModel
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureSetSchema, FeatureStore

logger = logging.getLogger(__name__)

#: Runs a model's monitoring task and returns what it scored.
LaunchMonitor = Callable[[MonitorTask], Awaitable[list[Evaluated]]]
#: Told a model's latest figures (``ServiceMetrics.model_health``).
ReportHealth = Callable[[str, dict[str, float]], None]
#: The previous champion to shadow a model's forecasts with (``Rollbacks.shadow_for``).
ShadowFor = Callable[[ModelRecord], Awaitable[ShadowModel | None]]
#: Forecasts scored per pass, and looked at per page ...
BATCH = 500
#: ... of at most this many pages a pass.
MAX_PAGES = 20


class Monitor:
    def __init__(
        self,
        store: MonitorStore,
        registry: ModelRegistry,
        pipeline: PipelineSettings,
        *,
        launch: LaunchMonitor,
        report: ReportHealth,
        clock: Callable[[], datetime],
        max_age: timedelta,
        shadow_for: ShadowFor | None = None,
        batch: int = BATCH,
    ) -> None:
        self._store = store
        self._registry = registry
        self._pipeline = pipeline
        self._launch = launch
        self._report = report
        self._clock = clock
        self._max_age = max_age
        self._shadow_for = shadow_for
        self._batch = batch

    async def step(self) -> int:
        """Score what can be scored now; how many forecasts were scored."""
        due = await self.due_forecasts()
        scored = 0
        for (model_id, _), group in groupby(sorted(due, key=_model), key=_model):
            forecasts = list(group)
            try:
                scored += await self._score(model_id, forecasts)
            except ModelNotFound:
                continue  # deleted since
            except Exception:
                logger.exception("monitoring model %s failed; trying again later", model_id)
        return scored

    async def due_forecasts(self) -> list[Unscored]:
        """Up to a batch of forecasts that can be scored now, oldest first. The unscored
        ones are read a page at a time past those that cannot be (actuals that never came,
        a set without a new version): however many of those there are, they do not hide
        the newer forecasts behind them."""
        due: list[Unscored] = []
        after, after_id = self._clock() - self._max_age, None
        for _ in range(MAX_PAGES):
            page = await self._store.unscored(after, self._batch, after_id)
            due += await asyncio.to_thread(self._due, page)
            if len(due) >= self._batch or len(page) < self._batch:
                break
            after, after_id = page[-1].created_at, page[-1].forecast_id
        return due[: self._batch]

    def _due(self, unscored: list[Unscored]) -> list[Unscored]:
        """The forecasts whose set has a version they were not scored against (and, for a
        batch forecast never scored, one published after it)."""
        versions: dict[tuple[str, str], FeatureSetSchema | None] = {}
        due = []
        for forecast in unscored:
            key = (forecast.tenant_id, forecast.feature_set)
            if key not in versions:
                versions[key] = self._current(*key)
            current = versions[key]
            if current is None or current.pinned_version == forecast.evaluated_version:
                continue
            published = datetime.fromisoformat(current.published_at or current.created_at)
            never_scored_batch = (
                forecast.evaluated_version is None and forecast.source is ForecastSource.BATCH
            )
            if never_scored_batch and published <= forecast.created_at:
                continue
            due.append(forecast)
        return due

    def _current(self, tenant_id: str, feature_set: str) -> FeatureSetSchema | None:
        try:
            return FeatureStore(self._pipeline.features_root, tenant_id).schema(feature_set)
        except FeatureSetNotFound:
            return None

    async def _score(self, model_id: str, forecasts: list[Unscored]) -> int:
        model = await self._registry.get(model_id)
        history = await self._store.recent_maes(
            model_id, self._clock(), RECENT_WINDOWS + len(forecasts), SCORED_SHARE
        )
        pending = {f.forecast_id for f in forecasts}
        shadow = await self._shadow_for(model) if self._shadow_for is not None else None
        task = MonitorTask(
            model_id=model_id,
            model_uri=model.artifact_uri,
            tenant_id=model.tenant_id,
            feature_set=forecasts[0].feature_set,
            forecasts=tuple(
                PendingForecast(
                    f.forecast_id,
                    f.artifact_uri,
                    shadowed=shadow is not None and f.created_at >= shadow.promoted_at,
                    created_at=f.created_at,
                )
                for f in forecasts
            ),
            history=tuple(
                PastEvaluation(origin, mae)
                for forecast_id, origin, mae in history
                if forecast_id not in pending
            ),
            shadow=shadow,
        )
        evaluated = await self._launch(task)
        now = self._clock()
        await self._store.save([_row(model, task, e, now) for e in evaluated])
        latest = max((e for e in evaluated if e.health is not None), key=_origin, default=None)
        newest = await self._store.latest(model_id, SCORED_SHARE) if latest is not None else None
        if latest is not None and (newest is None or newest.origin <= latest.origin):
            # not an old forecast re-scored: the gauges show the model's newest figures
            self._report(model_id, _figures(latest))
        return sum(1 for e in evaluated if e.scores.rows)


def _model(forecast: Unscored) -> tuple[str, str]:
    return forecast.model_id, forecast.feature_set


def _origin(evaluated: Evaluated) -> datetime:
    return evaluated.origin


def _row(
    model: ModelRecord, task: MonitorTask, evaluated: Evaluated, now: datetime
) -> NewEvaluation:
    return NewEvaluation(
        forecast_id=evaluated.forecast_id,
        model_id=model.model_id,
        tenant_id=model.tenant_id,
        feature_set=task.feature_set,
        feature_set_version=evaluated.feature_set_version,
        origin=evaluated.origin,
        forecast_rows=evaluated.forecast_rows,
        rows=evaluated.scores.rows,
        metrics=evaluated.scores.metrics,
        by_lead=evaluated.scores.by_lead,
        by_series=evaluated.scores.by_series,
        health=evaluated.health.as_dict() if evaluated.health is not None else {},
        evaluated_at=now,
        shadow_promotion_id=evaluated.shadow["promotion_id"] if evaluated.shadow else None,
        shadow=evaluated.shadow,
    )


def _figures(evaluated: Evaluated) -> dict[str, float]:
    figures = {}
    accuracy = evaluated.health.accuracy if evaluated.health is not None else None
    if accuracy is not None:
        figures["live_mae"] = accuracy.live_mae
        if accuracy.ratio is not None:
            figures["drift_ratio"] = accuracy.ratio
    if "coverage_80" in evaluated.scores.metrics:
        figures["live_coverage_80"] = evaluated.scores.metrics["coverage_80"]
    return figures
