"""The search coordinator without Ray: trials run in this process through the same protocol."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest

from domain.errors import PipelineError, TrainingStopped
from domain.jobs import ExperimentStatus
from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData, preprocess
from pipeline.search.hpo import journal_storage, search
from pipeline.search.members import DEFAULT_TRIAL, NUMBER, default_member, trial_objective
from pipeline.search.pruning import EMPTY, PruningHistory
from pipeline.search.runner import TrialPreempted
from pipeline.search.trials import run_trial
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import retrain_best, search_plans


class Done:
    """A finished trial's handle (hashable by identity, like an ObjectRef)."""

    def __init__(self, outcome: TrialReport | Exception) -> None:
        self.outcome = outcome


class InProcessTrials:
    """Runs each trial when it is submitted; ``wait`` hands the finished ones back."""

    def __init__(self, data: PreparedData, config: TrainingConfig) -> None:
        self.data = data
        self.config = config
        self.started: list[int] = []
        self.params: list[dict[str, Any]] = []
        self.reports: list[TrialReport] = []

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> Any:
        self.started.append(number)
        self.params.append(params)
        try:
            report = run_trial(self.data, self.config, number, params, completed)
        except Exception as exc:
            return Done(exc)
        self.reports.append(report)
        return Done(report)

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        return list(pending)

    def result(self, handle: Done) -> TrialReport:
        if isinstance(handle.outcome, Exception):
            raise handle.outcome
        return handle.outcome

    def cancel(self, pending: list[Any]) -> None:
        pass


def config(**overrides: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "enable_hpo": True,
            "hyperparameters": {"learning_rate": {"type": "float", "low": 0.05, "high": 0.3}},
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def data(demo_store: FeatureStore) -> PreparedData:
    return preprocess(demo_store.load("forecast_basic"), config())


def test_a_resumed_search_runs_only_the_missing_trials(data: PreparedData, tmp_path: Path) -> None:
    journal = tmp_path / "job.journal"
    reported: list[tuple[int, str]] = []

    def report(trial: TrialReport, progress: SearchProgress) -> None:
        reported.append((trial.number, trial.state))

    first = InProcessTrials(data, config(n_trials=3))
    result = search(config(n_trials=3), journal, "job", lambda: 1, first, report)
    assert first.started == [0, 1, 2]
    assert result.progress.finished == 3

    # The job is re-run with a larger budget (as after a restart): only two trials run.
    second = InProcessTrials(data, config(n_trials=5))
    resumed = search(config(n_trials=5), journal, "job", lambda: 2, second, report)
    assert second.started == [3, 4]
    assert [n for n, _ in reported] == [0, 1, 2, 0, 1, 2, 3, 4]  # the first three re-reported
    study = optuna.load_study(study_name="job", storage=journal_storage(journal))
    assert sorted(t.user_attrs[NUMBER] for t in study.trials) == [0, 1, 2, 3, 4]
    assert resumed.best_value == min(t.value for t in study.trials if t.value is not None)
    # The objective is not searched, and its best trial was the defaults' (trial 0): the
    # mean member is a plain job's; the median member takes the best trial's parameters
    # and finds its rounds by early stopping when retrained.
    assert resumed.best_trial == 0
    assert resumed.members["regression"] == default_member(config(n_trials=5), "regression")
    median_params, median_rounds = resumed.members["regression_l1"]
    assert median_params["learning_rate"] == resumed.best_params["learning_rate"]
    assert median_params["objective"] == "regression_l1"
    assert median_rounds is None


def test_a_search_starts_from_the_defaults_once_per_objective(
    data: PreparedData, tmp_path: Path
) -> None:
    """The default space searches the objective too; its first trials are a plain job's
    parameters with each objective, and each member is the best trial of its objective."""
    default_space = TrainingConfig.model_validate(
        {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "enable_hpo": True,
            "n_trials": 4,
            "hyperparameters": {"n_estimators": 60},
        }
    )
    trials = InProcessTrials(data, default_space)
    result = search(default_space, tmp_path / "j", "j", lambda: 1, trials, lambda *_: None)
    defaults = {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 1.0,
        "colsample_bytree": 0.8,
        "reg_lambda": 1e-3,  # LightGBM's 0, moved into the searched range
    }
    assert trials.params[:2] == [
        {**defaults, "objective": "regression"},
        {**defaults, "objective": "regression_l1"},
    ]
    assert set(result.members) == {"regression", "regression_l1"}
    for objective, member in result.members.items():
        member_params, rounds = member
        assert member_params["objective"] == objective
        # the best trial's parameters and rounds, or a plain job's member when it lost
        assert rounds is not None or member == default_member(default_space, objective)
    # The model averages those members with the ones a plain job trains (trials 0 and 1
    # completed): LightGBM's own defaults, early-stopped as a plain job's are.
    assert set(result.defaults) == {"regression", "regression_l1"}
    plans = search_plans(result)
    assert [(p.objective, p.label) for p in plans] == [
        ("regression", None),
        ("regression_l1", None),
        ("regression", "default_mean_"),
        ("regression_l1", "default_median_"),
    ]
    for plan in plans[2:]:
        assert plan.params == {**default_space.lightgbm_params(), "objective": plan.objective}
        assert "reg_lambda" not in plan.params  # LightGBM's 0, not the range's edge
        assert plan.rounds is None
    model = retrain_best(data, result, default_space, num_threads=1)
    assert [m.objective for m in model.members] == [p.objective for p in plans]
    assert {"l1", "median_l1", "default_mean_l1", "default_median_l1"} <= set(model.curve)


def test_the_default_trials_are_never_pruned(data: PreparedData, tmp_path: Path) -> None:
    """Every other trial of an objective is judged against its default trial, so the
    default trials get nothing to prune against, even with trials running beside them."""
    asked: dict[int, tuple[PruningHistory, list[Any]]] = {}

    class Recording(InProcessTrials):
        def submit(
            self, number: int, params: dict[str, Any], completed: PruningHistory, running: list[Any]
        ) -> Any:
            asked[number] = (completed, running)
            return super().submit(number, params, completed, running)

    searched = config(
        n_trials=4,
        hyperparameters={
            "num_leaves": {"type": "int", "low": 8, "high": 64},
            "objective": {"type": "categorical", "choices": ["regression", "regression_l1"]},
            "n_estimators": 60,
        },
    )
    search(searched, tmp_path / "j", "j", lambda: 2, Recording(data, searched), lambda *_: None)
    assert [len(asked[n][1]) for n in (0, 1)] == [0, 0]  # trial 1 started beside trial 0
    assert [asked[n][0] for n in (0, 1)] == [EMPTY, EMPTY]
    assert asked[2][0].completed == 1  # the others prune against their objective's trials
    assert asked[3][1]  # ... and the trials running beside them


def test_failing_trials_are_told_and_a_search_without_success_raises(
    data: PreparedData, tmp_path: Path
) -> None:
    count_objectives = {"type": "categorical", "choices": ["poisson", "gamma"]}
    broken = config(n_trials=2, hyperparameters={"objective": count_objectives})
    data = replace(data, train=replace(data.train, y=data.train.y - data.train.y.mean() - 1e3))
    progress: list[SearchProgress] = []
    with pytest.raises(PipelineError, match="every trial failed"):
        search(
            broken,
            tmp_path / "j",
            "j",
            lambda: 1,
            InProcessTrials(data, broken),
            lambda _, p: progress.append(p),
        )
    assert progress[-1].failed == 2
    assert progress[-1].best_value is None


def test_a_cancelled_search_stops_and_cancels_its_running_trials(
    data: PreparedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.search.hpo.STOP_CHECK_SECONDS", 0.0)
    cfg = config(n_trials=50, pruning=False)
    trials = InProcessTrials(data, cfg)
    cancelled: list[list[Any]] = []
    trials.cancel = cancelled.append  # type: ignore[method-assign,assignment]
    asked: list[int] = []

    def cancelled_on_the_third_check() -> bool:
        asked.append(1)
        return len(asked) >= 3

    with pytest.raises(TrainingStopped, match="cancelled"):
        search(
            cfg,
            tmp_path / "s.journal",
            "s",
            lambda: 2,
            trials,
            lambda *_: None,
            cancelled_on_the_third_check,
        )
    assert len(trials.started) < 50
    assert len(cancelled) == 1


def test_a_trial_prunes_against_peers_that_finish_while_it_trains(data: PreparedData) -> None:
    cfg = config(n_trials=20)  # the median pruner waits for 5 completed trials
    params = {"learning_rate": 0.05}
    alone = run_trial(data, cfg, 0, params)
    assert alone.state == "completed"  # with nothing to compare against it runs to the end

    better = {step: value / 10 for step, value in alone.intermediate.items()}
    peers = [
        TrialReport(
            n,
            ExperimentStatus.COMPLETED,
            min(better.values()),
            {"learning_rate": 0.2},
            100,
            [],
            0.1,
            None,
            better,
        )
        for n in range(1, 6)
    ]
    calls: list[int] = []

    def finished_peers() -> list[TrialReport]:
        calls.append(1)
        return peers if len(calls) == 2 else []  # they finish after its first report

    beside = run_trial(data, cfg, 0, params, finished_peers=finished_peers)
    assert beside.state == "pruned"
    assert len(calls) >= 2
    assert len(beside.intermediate) < len(alone.intermediate)


def test_a_trial_ignores_peers_that_failed_or_were_pruned(data: PreparedData) -> None:
    cfg = config(n_trials=20)
    alone = run_trial(data, cfg, 0, {"learning_rate": 0.05})
    better = {step: value / 10 for step, value in alone.intermediate.items()}
    peers = [
        TrialReport(n, state, 1.0, {"learning_rate": 0.2}, None, [], 0.1, None, better)
        for n, state in enumerate([ExperimentStatus.PRUNED, ExperimentStatus.FAILED] * 3, start=1)
    ]
    beside = run_trial(data, cfg, 0, {"learning_rate": 0.05}, finished_peers=lambda: peers)
    assert beside.state == "completed"
    assert beside.curve == alone.curve


def test_a_search_widens_when_more_trials_may_run_at_once(
    data: PreparedData, tmp_path: Path
) -> None:
    space = {"learning_rate": {"type": "float", "low": 0.05, "high": 0.3}}
    cfg = config(n_trials=8, pruning=False, hyperparameters=space | {"n_estimators": 10})
    trials = InProcessTrials(data, cfg)
    waited_on: list[int] = []
    wait = trials.wait

    def first_of(pending: list[Any], timeout: float) -> list[Any]:
        waited_on.append(len(pending))
        return wait(pending, timeout)[:1]  # one trial ends at a time

    trials.wait = first_of  # type: ignore[method-assign]
    allowed = iter([1, 1, 3])
    search(cfg, tmp_path / "w.journal", "w", lambda: next(allowed, 3), trials, lambda *_: None)
    assert waited_on[:3] == [1, 1, 3]
    assert max(waited_on) == 3


class PreemptedOnce(InProcessTrials):
    """Trial 1's first run loses its CPU to an urgent job; the slots shrink to one then."""

    def __init__(self, data: PreparedData, config: TrainingConfig) -> None:
        super().__init__(data, config)
        self.slots = 2

    def parallel(self) -> int:
        return self.slots

    def result(self, handle: Done) -> TrialReport:
        report = super().result(handle)
        if report.number == 1 and self.started.count(1) == 1:
            self.slots = 1
            raise TrialPreempted("its CPU was taken back for a more urgent job")
        return report


def test_a_preempted_trial_runs_again_as_it_was_and_is_reported_once(
    data: PreparedData, tmp_path: Path
) -> None:
    reported: list[int] = []
    trials = PreemptedOnce(data, config(n_trials=4))

    result = search(
        config(n_trials=4),
        tmp_path / "job.journal",
        "job",
        trials.parallel,
        trials,
        lambda trial, _: reported.append(trial.number),
    )

    assert trials.started.count(1) == 2
    first, again = (i for i, n in enumerate(trials.started) if n == 1)
    assert trials.params[first] == trials.params[again], "the same parameters run again"
    assert sorted(reported) == [0, 1, 2, 3]
    assert result.progress.finished == 4
    study = optuna.load_study(study_name="job", storage=journal_storage(tmp_path / "job.journal"))
    assert sorted(t.user_attrs[NUMBER] for t in study.trials) == [0, 1, 2, 3]


def test_a_trial_prunes_against_running_trials_of_its_own_objective_only(
    data: PreparedData, tmp_path: Path
) -> None:
    """Each objective is a member of the model: an L2 trial judged against L1 trials'
    validation L1 curves would be pruned for being another kind of model."""
    searched = config(
        n_trials=10,
        hyperparameters={
            "num_leaves": {"type": "int", "low": 8, "high": 64},
            "objective": {"type": "categorical", "choices": ["regression", "regression_l1"]},
            "n_estimators": 30,
        },
    )
    objective_of: dict[int, str] = {}
    asked: list[tuple[str, list[str]]] = []

    class OneAtATime(InProcessTrials):
        """Hands back one finished trial per wait, so the others keep running."""

        def submit(
            self, number: int, params: dict[str, Any], completed: PruningHistory, running: list[Any]
        ) -> Any:
            own = trial_objective(searched, params)
            asked.append((own, [objective_of[id(peer)] for peer in running]))
            handle = super().submit(number, params, completed, running)
            objective_of[id(handle)] = own
            return handle

        def wait(self, pending: list[Any], timeout: float) -> list[Any]:
            return list(pending[:1])

    search(searched, tmp_path / "j", "j", lambda: 3, OneAtATime(data, searched), lambda *_: None)
    assert {own for own, _ in asked} == {"regression", "regression_l1"}
    assert any(peers for _, peers in asked), "no trial ran beside another"
    assert all(peer == own for own, peers in asked for peer in peers), asked


def test_a_default_trial_starts_every_parameter_with_a_default_and_stays_the_baseline(
    data: PreparedData, tmp_path: Path
) -> None:
    """max_depth has no service default (LightGBM's -1 is), and a seed none at all: the
    default trial had taken a sampled max_depth, been no point of the starts, and the
    search had skipped the test against the defaults and their member."""
    searched = config(
        n_trials=3,
        hyperparameters={
            "max_depth": {"type": "int", "low": 3, "high": 12},
            "feature_fraction": {"type": "float", "low": 0.5, "high": 1.0},
            "seed": {"type": "int", "low": 1, "high": 1000},
            "n_estimators": 40,
        },
    )
    trials = InProcessTrials(data, searched)
    result = search(searched, tmp_path / "j", "j", lambda: 1, trials, lambda *_: None)
    first = trials.params[0]
    assert (first["max_depth"], first["feature_fraction"]) == (3, 0.8)  # -1 clipped; 0.8
    study = optuna.load_study(study_name="j", storage=journal_storage(tmp_path / "j"))
    assert [t.user_attrs.get(DEFAULT_TRIAL, False) for t in study.trials] == [True, False, False]
    assert set(result.defaults) == {"regression", "regression_l1"}


class LostAfterTwo(InProcessTrials):
    """The search is lost while its default trial (0) still runs and two others ended."""

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        ended = [h for h in pending if h.outcome.number != 0]
        if not ended and len(self.started) >= 3:
            raise RuntimeError("the orchestrator restarted")
        return ended


def test_a_resumed_search_runs_its_unfinished_default_trial_and_draws_anew(
    data: PreparedData, tmp_path: Path
) -> None:
    journal = tmp_path / "job.journal"
    lost = LostAfterTwo(data, config(n_trials=3))
    with pytest.raises(RuntimeError, match="restarted"):
        search(config(n_trials=3), journal, "job", lambda: 3, lost, lambda *_: None)
    study = optuna.load_study(study_name="job", storage=journal_storage(journal))
    assert sorted(t.user_attrs[NUMBER] for t in study.trials) == [1, 2]

    resumed = InProcessTrials(data, config(n_trials=5))
    result = search(config(n_trials=5), journal, "job", lambda: 1, resumed, lambda *_: None)
    assert resumed.params[0] == lost.params[0]  # the defaults, run this time
    assert not any(p in lost.params[1:3] for p in resumed.params[1:])  # no draw replayed
    assert "regression" in result.defaults
