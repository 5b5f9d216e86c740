"""The pipeline as a Ray task graph: the only module that applies ``ray.remote``.

Batch forecasts (``launch_forecast``) are a coordinator task and one task per chunk of
series; the rest of this module is a training job's stages.

Each stage runs as a task named ``<stage>:<job_id>`` and returns two objects: its output,
which the next stage receives by ObjectRef (data stays in the object store), and a small
``StageReport`` (log lines, a summary, timing) that the orchestrator reads and persists.
The harness that runs a stage is ``pipeline.stages``, which needs no Ray.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
import pyarrow as pa
import ray
from ray import ObjectRef
from ray.exceptions import RayError

from domain.errors import TrainingStopped
from pipeline.artifacts import ModelArtifact, load_artifact, load_metadata
from pipeline.backtest import BacktestResult, Recipe, Window, all_rows, plan, run_window
from pipeline.batch_forecast import (
    ForecastOutcome,
    ForecastTask,
    SeriesHistory,
    forecast_chunk,
    forecast_location,
    load_history,
)
from pipeline.config import TrainingConfig
from pipeline.distributed import retrain_best_distributed, sample_fraction, train_distributed
from pipeline.evaluate import evaluate
from pipeline.feature_store import FeatureFrame, FeatureStore
from pipeline.fitting import BinnedData, bin_data
from pipeline.hpo import STOP_CHECK_SECONDS, search
from pipeline.job_callbacks import JobCallbacks
from pipeline.partitions import (
    FeaturePlan,
    Part,
    PartitionedData,
    TrainBlocks,
    build_part,
    feature_plan,
    joined,
    merged_scaler,
    rows_per_timestamp,
    split_part,
    train_moments,
)
from pipeline.per_series import (
    SeriesBundle,
    bundle,
    chunks,
    series_names,
    train_per_series,
    train_series,
)
from pipeline.preprocess import PreparedData, preprocess, split_bounds
from pipeline.pruning import PruningHistory
from pipeline.register import JobContext, SavedModel, register
from pipeline.search_results import SearchProgress, SearchResult, TrialReport
from pipeline.settings import PipelineSettings
from pipeline.stages import PIPELINE_LOGGER, Stage, StageReport, run_stage
from pipeline.storage import Location
from pipeline.summaries import WindowResult
from pipeline.train import TrainedModel, retrain_best, train
from pipeline.trials import run_trial

T = TypeVar("T")

#: The window metrics a backtest writes to the job's log.
SHOWN = ("mae", "rmse", "mase", "coverage_80")


def load_features(context: JobContext, features_root: Location) -> FeatureFrame:
    store = FeatureStore(features_root, context.tenant_id)
    frame = store.load(context.config.feature_set, context.config.end_date)
    logging.getLogger(f"{PIPELINE_LOGGER}.features").info(
        "loaded %d rows of %s (%s .. %s)",
        len(frame.data),
        frame.schema.name,
        frame.schema.start,
        frame.schema.end,
    )
    return frame


@dataclass(frozen=True)
class PipelineRun:
    """The in-flight tasks of one job: per stage, the output and report refs."""

    outputs: list[ObjectRef[Any]]
    reports: list[ObjectRef[StageReport]]

    @property
    def result(self) -> ObjectRef[SavedModel]:
        """The last stage's output: the model the register stage saved."""
        return cast(ObjectRef[SavedModel], self.outputs[-1])

    def cancel(self, force: bool = False) -> None:
        """Cancel the stage that is running; the stages after it then fail without running.

        Only that one task is cancelled: cancelling tasks that wait on it races with their
        dispatch in Ray's task manager (it can crash the owner when a task it marked
        cancelled reports completion). ``force`` kills the worker running it, for a task
        that did not stop when asked.
        """
        for ref in self.reports:
            finished, _ = ray.wait([ref], timeout=0)
            if not finished:
                ray.cancel(ref, force=force)
                return


_remote_stage = ray.remote(num_returns=2, num_cpus=1)(run_stage)


class _SearchData:
    """The prepared data of the search this worker last ran a trial for, fetched from the
    object store and binned once: a worker runs one trial after another, so every trial
    but its first in a search skips both. One search's data is kept per worker process."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._data: PreparedData | None = None
        self._binned: BinnedData | None = None

    def get(
        self, ref: ObjectRef[PreparedData], config: TrainingConfig
    ) -> tuple[PreparedData, BinnedData]:
        if self._key != ref.hex() or self._data is None or self._binned is None:
            self._key = None
            self._data = ray.get(ref)
            self._binned = bin_data(self._data, config.lightgbm_params())
            self._key = ref.hex()
        return self._data, self._binned


_search_data = _SearchData()


class _FinishedPeers:
    """The trials that were running when a trial started, as they finish (see run_trial)."""

    def __init__(self, running: list[ObjectRef[TrialReport]]) -> None:
        self._running = running

    def __call__(self) -> list[TrialReport]:
        if not self._running:
            return []
        ready, self._running = ray.wait(self._running, num_returns=len(self._running), timeout=0)
        reports = []
        for ref in ready:
            try:
                reports.append(ray.get(ref))
            except RayError:  # a failed or cancelled peer tells nothing
                continue
        return reports


def _trial_task(
    data: list[ObjectRef[PreparedData]],
    config: TrainingConfig,
    number: int,
    params: dict[str, Any],
    completed: PruningHistory,
    running: list[ObjectRef[TrialReport]],
) -> TrialReport:
    prepared, binned = _search_data.get(data[0], config)
    peers = _FinishedPeers(running)
    return run_trial(prepared, config, number, params, completed, peers, binned)


_remote_trial = ray.remote(num_cpus=1, max_retries=0)(_trial_task)


class _RayTrials:
    """Trials as one-CPU Ray tasks sharing one copy of the prepared data; each learns of
    the trials running beside it as they finish."""

    def __init__(self, context: JobContext, data: ObjectRef[Any]) -> None:
        self._context = context
        self._data = data

    @staticmethod
    def cluster_cpus() -> int:
        """Trials at once by default: one per CPU of the cluster (asked again as trials
        end, so a search widens when the autoscaler adds nodes). Ray starts each trial
        as soon as a CPU is free. Ray's view of *free* CPUs lags tasks ending by up to
        seconds: read just after preprocess it showed that stage's CPU still held, and
        the search ran its trials one at a time."""
        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> ObjectRef[TrialReport]:
        job_id = self._context.job_id
        trial: ObjectRef[TrialReport] = _remote_trial.options(
            name=f"trial:{job_id}:{number}"
        ).remote([self._data], self._context.config, number, params, completed, running)
        return trial

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        if not pending:
            return []
        ready, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
        return list(ready)

    def result(self, handle: Any) -> TrialReport:
        report: TrialReport = ray.get(handle)
        return report

    def cancel(self, pending: list[Any]) -> None:
        for ref in pending:
            ray.cancel(ref)


def _window_task(
    data: list[ObjectRef[PreparedData]], recipe: Recipe, window: Window
) -> WindowResult:
    return run_window(ray.get(data[0]), recipe, window)


_remote_window = ray.remote(num_cpus=1)(_window_task)


def _gather(refs: list[ObjectRef[T]], callbacks: JobCallbacks | None, what: str) -> list[T]:
    """The results of a coordinator's parts, asking every ``STOP_CHECK_SECONDS`` whether
    the job was cancelled; on a cancel or a failure every part is cancelled."""
    stop = callbacks.is_cancelled if callbacks is not None else None
    try:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=STOP_CHECK_SECONDS)
            if pending and stop is not None and stop():
                raise TrainingStopped(f"{what} stopped: the job was cancelled")
        results: list[T] = ray.get(refs)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise
    return results


def backtest_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    model: TrainedModel,
    callbacks: JobCallbacks | None,
) -> BacktestResult:
    """The backtest stage: a coordinator (no CPU) that runs each window as a one-CPU task
    named ``backtest:<job_id>:<window>``; ``data`` comes boxed so the windows, not this
    task, read it (the coordinator reads only its timestamps)."""
    config = context.config
    spec = config.backtest
    assert spec is not None
    prepared: PreparedData = ray.get(data[0])
    stamps = all_rows(prepared)[2]
    windows = plan(stamps, config.horizon, spec.windows, config.backtest_step)
    recipe = Recipe.of(model)
    logger = logging.getLogger(f"{PIPELINE_LOGGER}.backtest")
    logger.info(
        "backtesting %d windows from %s, %d steps apart: %s each",
        len(windows),
        windows[0].origin,
        config.backtest_step,
        " + ".join(f"{o} {r} rounds" for o, _, r, _ in recipe.members),
    )
    refs = [
        _remote_window.options(name=f"backtest:{context.job_id}:{w.number}").remote(
            [data[0]], recipe, w
        )
        for w in windows
    ]
    results: list[WindowResult] = _gather(refs, callbacks, "backtest")
    for result in results:
        logger.info(
            "window %d (%s .. %s, %d training rows): %s",
            result.number,
            result.origin,
            result.end,
            result.train_rows,
            ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if k in SHOWN),
        )
    return BacktestResult(results)


def _series_task(
    data: list[ObjectRef[PreparedData]], config: TrainingConfig, names: list[str]
) -> list[TrainedModel]:
    return train_series(ray.get(data[0]), config, names)


_remote_series = ray.remote(num_cpus=1)(_series_task)


def per_series_stage(
    context: JobContext, data: list[ObjectRef[Any]], callbacks: JobCallbacks | None
) -> SeriesBundle:
    """The train stage of a per-series job: a coordinator (no CPU) that trains chunks of
    series as one-CPU tasks named ``train:<job_id>:<chunk>`` and bundles their models."""
    prepared: PreparedData = ray.get(data[0])
    names = series_names(prepared)
    parts = chunks(names)
    logger = logging.getLogger(f"{PIPELINE_LOGGER}.train")
    logger.info(
        "training one model per series: %d series in %d task(s) of up to %d",
        len(names),
        len(parts),
        len(parts[0]),
    )
    refs = [
        _remote_series.options(name=f"train:{context.job_id}:{number}").remote(
            [data[0]], context.config, part
        )
        for number, part in enumerate(parts)
    ]
    models = [model for chunk in _gather(refs, callbacks, "training") for model in chunk]
    trained = bundle(prepared, names, models)
    logger.info(
        "%d series models, median best iteration %d; validation l1=%.4f",
        len(models),
        trained.best_iteration,
        trained.validation_scores["best_mae"],
    )
    return trained


def plan_features(context: JobContext, features_root: Location) -> FeaturePlan:
    """The load stage of a partitioned job: its features, parts and pinned version,
    from the set's key columns alone."""
    planned = feature_plan(FeatureStore(features_root, context.tenant_id), context.config)
    logging.getLogger(f"{PIPELINE_LOGGER}.features").info(
        "%d rows of %s version %s in %d part(s), built in parallel",
        planned.rows,
        planned.schema.name,
        planned.schema.pinned_version,
        len(planned.parts),
    )
    return planned


def _build_task(
    features_root: Location,
    tenant_id: str | None,
    planned: FeaturePlan,
    part: Part,
    config: TrainingConfig,
) -> tuple[pa.Table, pd.Series]:
    return build_part(FeatureStore(features_root, tenant_id), planned, part, config)


# Typed Any: each call returns a list of refs, one per returned value.
_remote_build: Any = ray.remote(num_cpus=1, num_returns=2)(_build_task)
_remote_moments = ray.remote(num_cpus=1)(train_moments)
_remote_split: Any = ray.remote(num_cpus=1, num_returns=4)(split_part)


def partitioned_stage(
    context: JobContext,
    planned: FeaturePlan,
    features_root: Location,
    callbacks: JobCallbacks | None,
) -> PartitionedData:
    """The preprocess stage of a partitioned job: a coordinator (no CPU) whose tasks
    ``features:<job_id>:<part>`` build, measure and split each part's features
    (``pipeline.partitions``); the training rows stay in the object store."""
    config, job = context.config, context.job_id
    names = [f"features:{job}:{number}" for number in range(len(planned.parts))]
    built = [
        _remote_build.options(name=name).remote(
            features_root, context.tenant_id, planned, part, config
        )
        for name, part in zip(names, planned.parts, strict=True)
    ]
    tables = [table for table, _ in built]
    counts = _gather([count for _, count in built], callbacks, "feature building")
    bounds = split_bounds(rows_per_timestamp(counts), config)
    moments = _gather(
        [
            _remote_moments.options(name=name).remote(table, bounds, planned)
            for name, table in zip(names, tables, strict=True)
        ],
        callbacks,
        "feature scaling",
    )
    scaler = merged_scaler(moments, planned.feature_names)
    fraction = sample_fraction(sum(m.rows for m in moments))
    splits = [
        _remote_split.options(name=name).remote(table, bounds, scaler, planned, fraction, seed)
        for seed, (name, table) in enumerate(zip(names, tables, strict=True))
    ]
    del tables, built  # each part's matrix is freed once it is split
    parts = _gather([part for *_, part in splits], callbacks, "feature splitting")
    validation = joined(ray.get([v for _, v, _, _ in splits]))
    test = joined(ray.get([t for _, _, t, _ in splits]))
    return PartitionedData(
        train=TrainBlocks([block for block, *_ in splits], parts),
        validation=validation,
        test=test,
        feature_names=planned.feature_names,
        scaler=scaler,
        spec=planned.spec,
        feature_schema=planned.schema,
    )


def search_stage(
    context: JobContext,
    data: list[ObjectRef[Any]],
    preprocessed: StageReport,
    studies_root: Path,
    callbacks: JobCallbacks | None,
) -> SearchResult:
    """The search stage: ``data`` comes boxed in a list so the trials, not this
    coordinator, receive it from the object store; ``preprocessed`` (the preprocess
    stage's report) holds the search back until the data exists. Started earlier, its
    trials would block on the data holding the CPUs preprocess needs."""
    config = context.config

    def report(trial: TrialReport, progress: SearchProgress) -> None:
        if callbacks is not None:
            callbacks.record_trial(trial, progress)

    journal = studies_root / f"{context.job_id}.journal"
    runner = _RayTrials(context, data[0])
    workers = config.n_workers
    parallel = (lambda: workers) if workers else runner.cluster_cpus
    stop = callbacks.is_cancelled if callbacks is not None else None
    return search(config, journal, context.job_id, parallel, runner, report, stop)


def launch(
    context: JobContext, settings: PipelineSettings, callbacks: JobCallbacks | None = None
) -> PipelineRun:
    """Submit the job's stages as chained Ray tasks and return their refs at once.

    With HPO a ``search`` stage runs between preprocess and train, and train refits the
    best trial; ``callbacks`` then hear of every trial. With ``distributed`` the train
    stage only coordinates (no CPU): Ray Train's workers train (``pipeline.distributed``),
    and unless a search or a backtest needs every row in one place, the features are built
    per series bucket (``partitioned_stage``).
    A per-series job's train stage fans out over the series (``per_series_stage``).
    """
    config = context.config

    def submit(stage: Stage, fn: Callable[..., Any], *args: Any, cpus: int = 1) -> ObjectRef[Any]:
        output, report = _remote_stage.options(
            name=f"{stage}:{context.job_id}",
            num_cpus=cpus,
            max_retries=settings.stage_max_retries,
        ).remote(stage, fn, *args)
        outputs.append(output)
        reports.append(report)
        return cast(ObjectRef[Any], output)

    outputs: list[ObjectRef[Any]] = []
    reports: list[ObjectRef[StageReport]] = []
    features = settings.features_root
    if config.partitioned:
        planned = submit(Stage.LOAD_FEATURES, plan_features, context, features)
        data = submit(
            Stage.PREPROCESS, partitioned_stage, context, planned, features, callbacks, cpus=0
        )
    else:
        frame = submit(Stage.LOAD_FEATURES, load_features, context, features)
        data = submit(Stage.PREPROCESS, preprocess, frame, config)
    cpus = config.train_cpus
    if config.enable_hpo:
        preprocessed = reports[-1]
        found = submit(
            Stage.SEARCH,
            search_stage,
            context,
            [data],
            preprocessed,
            settings.studies_root,
            callbacks,
            cpus=0,
        )
        if config.distributed is not None:  # Ray Train's workers hold the CPUs
            model = submit(Stage.TRAIN, retrain_best_distributed, data, found, config, cpus=0)
        else:
            model = submit(Stage.TRAIN, retrain_best, data, found, config, cpus, cpus=cpus)
    elif config.per_series:
        model = submit(Stage.TRAIN, per_series_stage, context, [data], callbacks, cpus=0)
    else:
        stop = callbacks.is_cancelled if callbacks is not None else None
        live = callbacks.record_live_metrics if callbacks is not None else None
        if config.distributed is not None:
            model = submit(Stage.TRAIN, train_distributed, data, config, stop, live, cpus=0)
        else:
            model = submit(Stage.TRAIN, train, data, config, cpus, stop, live, cpus=cpus)
    backtest = None
    if config.backtest is not None:
        backtest = submit(Stage.BACKTEST, backtest_stage, context, [data], model, callbacks, cpus=0)
    evaluation = submit(Stage.EVALUATE, evaluate, model, data, context.model_type, config)
    claim = callbacks.claim_version if callbacks is not None else None
    root = settings.artifacts_root
    submit(Stage.REGISTER, register, context, model, data, evaluation, backtest, root, claim)
    return PipelineRun(outputs, reports)


def run_in_process(
    context: JobContext, settings: PipelineSettings, num_threads: int = 1
) -> tuple[SavedModel, list[StageReport]]:
    """The same stages, called one after another in this process (no Ray)."""
    config = context.config
    if config.enable_hpo or config.backtest is not None:
        raise ValueError("run_in_process runs no search and no backtest; launch() does")
    reports: list[StageReport] = []

    def step(stage: Stage, fn: Callable[..., Any], *args: Any) -> Any:
        output, report = run_stage(stage, fn, *args)
        reports.append(report)
        return output

    frame = step(Stage.LOAD_FEATURES, load_features, context, settings.features_root)
    data = step(Stage.PREPROCESS, preprocess, frame, config)
    fit = train_per_series if config.per_series else train
    model = step(Stage.TRAIN, fit, data, config, num_threads)
    evaluation = step(Stage.EVALUATE, evaluate, model, data, context.model_type, config)
    root = settings.artifacts_root
    saved = step(Stage.REGISTER, register, context, model, data, evaluation, None, root)
    return saved, reports


@functools.lru_cache(maxsize=4)
def _artifact(model_uri: str) -> ModelArtifact:
    """A worker's loaded models (artifacts never change), so its next chunk skips the load."""
    return load_artifact(Location(model_uri))


def _forecast_part(model_uri: str, history: SeriesHistory, horizon: int) -> pd.DataFrame:
    return forecast_chunk(_artifact(model_uri), history, horizon)


_remote_forecast_part = ray.remote(num_cpus=1)(_forecast_part)


def run_forecast(
    task: ForecastTask, settings: PipelineSettings, progress: Callable[[float], None] | None
) -> ForecastOutcome:
    """The coordinator of a batch forecast: read the history once, forecast it as one-CPU
    tasks ``forecast:<id>:<n>`` of ``CHUNK_SERIES`` series each, write one Parquet file.

    Raises:
        InvalidRequest: the model or the set changed since the request was accepted.
    """
    store = FeatureStore(settings.features_root, task.tenant_id)
    metadata = load_metadata(Location(task.model_uri))
    history = load_history(store, metadata, task.feature_set, task.horizon, task.series)
    refs = [
        _remote_forecast_part.options(name=f"forecast:{task.forecast_id}:{n}").remote(
            task.model_uri, part, task.horizon
        )
        for n, part in enumerate(history.split())
    ]
    pending = list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=1)
        if progress is not None:
            progress(1 - len(pending) / len(refs))
    table: pd.DataFrame = pd.concat(ray.get(refs), ignore_index=True)
    table = table.sort_values(["series", "timestamp"], kind="stable", na_position="first")
    location = forecast_location(settings.artifacts_root, task.tenant_id, task.forecast_id)
    location.write_parquet(pa.Table.from_pandas(table, preserve_index=False))
    return ForecastOutcome(rows=len(table), artifact_uri=str(location))


_remote_forecast = ray.remote(num_cpus=0, max_retries=0)(run_forecast)


def launch_forecast(
    task: ForecastTask, settings: PipelineSettings, progress: Callable[[float], None] | None
) -> ObjectRef[ForecastOutcome]:
    """Start a batch forecast's coordinator (0 CPUs: it only waits on its parts)."""
    ref: ObjectRef[ForecastOutcome] = _remote_forecast.options(
        name=f"forecast:{task.forecast_id}"
    ).remote(task, settings, progress)
    return ref
