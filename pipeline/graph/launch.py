"""A training job's stages as chained Ray tasks, inside the job's reservation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray import ObjectRef

from pipeline.context import JobContext
from pipeline.distributed.ray_train import (
    retrain_best_distributed,
    train_distributed,
)
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.load import load_features, plan_features
from pipeline.features.partitions import FeaturePlan
from pipeline.features.preprocess import preprocess
from pipeline.forecasting.champion import compare_with_champion
from pipeline.graph.backtest import backtest_stage
from pipeline.graph.partitioned import partitioned_stage
from pipeline.graph.per_series import per_series_stage
from pipeline.graph.search import search_stage
from pipeline.job_callbacks import JobCallbacks
from pipeline.models.register import SavedModel, register
from pipeline.placement import Placement
from pipeline.resources import TASK_CPUS
from pipeline.settings import PipelineSettings
from pipeline.stages import Stage, StageReport, run_stage
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureFrame
from pipeline.training.final_refit import refit_on_all_rows
from pipeline.training.train import retrain_best, train


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


_remote_stage = ray.remote(num_returns=2)(run_stage)


# The load stages run as functions of this module, as they did when one graph.py held
# every stage's task: a worker that runs one imports the graph (the search's Optuna with
# it). Submitted from features/load.py directly, the idle workers of the six-job
# autoscaling scenario (tests/cluster/test_autoscaling.py) kept their last task's
# arguments pinned in the object store, so the autoscaler never removed their nodes.
# Not a reference cycle (a gc.collect() every 5 s in the workers freed nothing);
# importing optuna in the load stage's module was enough. The cause is not found yet.
def _load(context: JobContext, features_root: Location) -> FeatureFrame:
    return load_features(context, features_root)


def _plan(context: JobContext, features_root: Location) -> FeaturePlan:
    return plan_features(context, features_root)


def launch(
    context: JobContext,
    settings: PipelineSettings,
    callbacks: JobCallbacks | None = None,
    placement: Placement | None = None,
) -> PipelineRun:
    """Submit the job's stages as chained Ray tasks and return their refs at once.

    Every task runs in ``placement``, the bundles the orchestrator reserved for the job
    (``pipeline.resources``): the stages in the stage bundle, fan-out tasks one per CPU
    of its bundles, Ray Train's workers in a placement group nested in it. Without one
    (no service) tasks go wherever Ray puts them.

    With HPO a ``search`` stage runs between preprocess and train, and train refits the
    best trial; ``callbacks`` then hear of every trial. With ``distributed`` the train
    stage only coordinates (no CPU): Ray Train's workers train (``pipeline.distributed.ray_train``),
    and unless a search or a backtest needs every row in one place, the features are built
    per series bucket (``partitioned_stage``).
    A per-series job's train stage fans out over the series (``per_series_stage``).
    A job that promotes its model scores the champion on its test rows (``compare``)
    before registering; one with ``refit_on_all_rows`` then refits its model on every row
    (``final_refit``), in the train stage's bundle.
    """
    config = context.config
    placed = placement or Placement.anywhere()

    def submit(stage: Stage, fn: Callable[..., Any], *args: Any, cpus: int = 1) -> ObjectRef[Any]:
        output, report = _remote_stage.options(
            name=f"{stage}:{context.job_id}",
            max_retries=settings.stage_max_retries,
            **placed.stage_options(cpus),
        ).remote(stage, fn, *args)
        outputs.append(output)
        reports.append(report)
        return cast(ObjectRef[Any], output)

    outputs: list[ObjectRef[Any]] = []
    reports: list[ObjectRef[StageReport]] = []
    features = settings.features_root
    if config.partitioned:
        planned = submit(Stage.LOAD_FEATURES, _plan, context, features)
        data = submit(
            Stage.PREPROCESS,
            partitioned_stage,
            context,
            planned,
            features,
            placed,
            callbacks,
            cpus=0,
        )
    else:
        frame = submit(Stage.LOAD_FEATURES, _load, context, features)
        data = submit(Stage.PREPROCESS, preprocess, frame, config)
    cpus = TASK_CPUS if config.enable_hpo else config.train_cpus  # the stage bundle's
    nested = placed.nested_resource
    if config.enable_hpo:
        preprocessed = reports[-1]
        found = submit(
            Stage.SEARCH,
            search_stage,
            context,
            [data],
            preprocessed,
            settings.studies_root,
            placed,
            callbacks,
            cpus=0,
        )
        if config.distributed is not None:  # Ray Train's workers hold the CPUs
            model = submit(
                Stage.TRAIN, retrain_best_distributed, data, found, config, nested, cpus=0
            )
        else:  # in the stage bundle, which holds one trial's CPUs
            model = submit(Stage.TRAIN, retrain_best, data, found, config, cpus, cpus=cpus)
    elif config.per_series:
        model = submit(Stage.TRAIN, per_series_stage, context, [data], placed, callbacks, cpus=0)
    else:
        stop = callbacks.is_cancelled if callbacks is not None else None
        live = callbacks.record_live_metrics if callbacks is not None else None
        if config.distributed is not None:
            model = submit(Stage.TRAIN, train_distributed, data, config, stop, live, nested, cpus=0)
        else:
            model = submit(Stage.TRAIN, train, data, config, cpus, stop, live, cpus=cpus)
    backtest = None
    if config.backtest is not None:
        backtest = submit(
            Stage.BACKTEST, backtest_stage, context, [data], model, placed, callbacks, cpus=0
        )
    evaluation = submit(Stage.EVALUATE, evaluate, model, data, context.model_type, config)
    comparison = None
    if config.promote_champion:
        champion = callbacks.champion if callbacks is not None else None
        comparison = submit(
            Stage.COMPARE, compare_with_champion, context, data, evaluation, features, champion
        )
    if config.refit_on_all_rows:
        model = submit(Stage.FINAL_REFIT, refit_on_all_rows, model, data, config, cpus, cpus=cpus)
    claim = callbacks.claim_version if callbacks is not None else None
    saving = (context, model, data, evaluation, backtest, settings.artifacts_root, claim)
    submit(Stage.REGISTER, register, *saving, comparison)
    return PipelineRun(outputs, reports)
