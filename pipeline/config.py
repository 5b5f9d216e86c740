"""What a user configures about one training run."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from domain.names import NAME_PATTERN
from pipeline.calendars import check_holiday_code
from pipeline.hyperparameters import (
    DEFAULT_HYPERPARAMETERS,
    DEFAULT_OBJECTIVES,
    DEFAULT_SEARCH_SPACE,
    KNOWN_HYPERPARAMETERS,
    HyperparameterSpec,
    HyperparameterValue,
    canonical,
    whole_if_integral,
)
from pipeline.promotion import PromotionPolicy

#: Forecast quantiles reported unless a job asks for others: P10, P50, P90.
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)

#: What each booster does with the validation part's rows once early stopping found its
#: rounds: ``full`` refits it on training + validation rows, its rounds grown with them up
#: to ``n_estimators``; ``none`` serves the early-stopped booster (a shorter train stage,
#: for a larger error: on some of the real load sets of bench/forecast.py much larger).
RefitMethod = Literal["full", "none"]

#: Ray Train workers of a job that trains data-parallel because its feature set is large.
AUTO_WORKERS = 2


class BacktestSpec(BaseModel):
    """Rolling-origin evaluation: ``windows`` forecasts of one horizon each over the most
    recent data, their origins ``step`` steps apart, each trained on what precedes it."""

    model_config = ConfigDict(extra="forbid")

    windows: int = Field(ge=1, le=100, description="Forecast origins to evaluate.")
    step: int | None = Field(
        None, ge=1, le=100_000, description="Steps between origins (default: the horizon)."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Windows at once, a CPU each (default: the cluster's CPUs when the job "
        "is submitted less what its training holds, at most the windows).",
    )


class DistributedSpec(BaseModel):
    """Data-parallel training on Ray Train: ``workers`` LightGBM processes, each holding a
    shard of the training rows (and ``n_workers`` CPUs, default 1)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(ge=1, le=256, description="Ray Train workers, one shard each.")


class TrainingConfig(BaseModel):
    """The seed's ``TrainingConfig``: data window, target, horizon, splits and LightGBM knobs."""

    model_config = ConfigDict(extra="forbid")

    feature_set: str = Field(pattern=NAME_PATTERN)
    target_variable: str = Field(min_length=1, max_length=128)
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    horizon: int = Field(
        24, ge=1, le=24 * 14, description="Steps ahead to forecast (anomaly jobs: 1 unless set)."
    )
    enable_hpo: bool = Field(False, description="Search hyperparameters with Optuna.")
    validation_split: float = Field(0.2, gt=0, lt=0.9)
    test_split: float = Field(0.1, gt=0, lt=0.9)
    hyperparameters: dict[str, HyperparameterValue | HyperparameterSpec] = Field(
        default_factory=dict, description="Fixed LightGBM values, or search specs with HPO."
    )
    early_stopping_rounds: int = Field(50, ge=0, le=10_000, description="0 turns it off.")
    n_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="CPUs of the training task; with HPO, trials at once, and with "
        "per_series, chunks of series at once, a CPU each (those two default to the "
        "cluster's CPUs when the job is submitted).",
    )
    n_trials: int = Field(20, ge=1, le=1000, description="HPO: trials to run.")
    timeout_seconds: float | None = Field(None, gt=0, description="HPO: wall-clock budget.")
    pruning: bool = Field(True, description="HPO: stop poor trials early (median pruner).")
    alarms_per_week: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="Anomaly models: the alarms a week the threshold allows on normal data, "
        "per series, at the set's cadence (a run of exceedances counts once, as its alarms "
        "make one event; a model of 20 series at 0.5 raises about 10 a week). Unset: 0.5, "
        "or one alarm in 100 rows where that is rarer (steps longer than about 3.4 hours: "
        "daily data gets 0.07, where 0.5 a week would flag one day in 14).",
    )
    alarm_score: float | None = Field(
        None,
        gt=0,
        le=30,
        description="Anomaly models: the calibrated score (standard-normal units) past which "
        "a residual raises an alarm, instead of the one alarms_per_week sets.",
    )
    anomaly_threshold: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Ignored: the robust z of anomaly models before scores were calibrated "
        "(kept so that stored jobs and policies still load); see alarms_per_week.",
    )
    event_gap: int = Field(
        3,
        ge=1,
        le=10_000,
        description="Anomaly models: alarms at most this many steps apart are one event "
        "(1: consecutive ones; a hole in the data counts the steps it lasts).",
    )
    alarm_suppression: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="Anomaly models: steps after an event in which alarms are dropped as "
        "its echoes (default: a day of steps).",
    )
    holidays: str | None = Field(
        None,
        description="Public-holiday calendar for an is_holiday feature: a country code "
        "('FR') or country-subdivision ('AU-VIC') of the holidays package.",
        examples=["AU-VIC"],
    )
    quantiles: list[float] = Field(
        default_factory=lambda: list(DEFAULT_QUANTILES),
        max_length=19,
        description="Forecast quantiles, strictly increasing in (0, 1); [] for none.",
    )
    quantile_method: Literal["conformal", "quantile_boosters"] = Field(
        "conformal",
        description="How quantiles are made: 'conformal' adds the validation residuals' "
        "quantiles, scaled to each series and time of day, to the point forecast (no extra "
        "booster); 'quantile_boosters' trains a LightGBM quantile booster per bound of each "
        "central interval and conformalizes it (about twice the training time).",
    )
    refit: RefitMethod = Field(
        "full",
        description="What each booster does with the validation rows once early stopping "
        "found its rounds: 'full' refits it on training + validation rows, its rounds grown "
        "with them up to n_estimators; "
        "'none' serves the early-stopped booster (about half the training time, less "
        "accurate: it never sees the most recent rows).",
    )
    refit_on_all_rows: bool = Field(
        False,
        description="Once the test part scored the model, refit every booster on all rows, "
        "test part included, so the registered model has seen the newest data (its test "
        "metrics stay the scored model's); one more fit. Not with distributed or per_series.",
    )
    backtest: BacktestSpec | None = Field(
        None, description="Rolling-origin backtest over the most recent data."
    )
    distributed: DistributedSpec | None = Field(
        None,
        description="Train data-parallel on Ray Train (feature sets past the service's "
        "distributed_min_rows do by default, on 2 workers).",
    )
    per_series: bool = Field(
        False,
        description="Train one model per series of a multi-series set instead of one global "
        "model (no HPO, backtest or distributed).",
    )
    promote_champion: bool = Field(
        False,
        description="Move the model's 'champion' alias to this version if it beats the "
        "current champion on the same rows (its test part after the champion's), as "
        "'promotion' says (or at all, without a champion).",
    )
    promotion: PromotionPolicy | None = Field(
        None, description="How promote_champion judges (default: MAE, no margin)."
    )
    time_budget_s: float | None = Field(
        None,
        gt=0,
        le=7 * 24 * 3600,
        description="Seconds the train stage may take (as AutoGluon's time_limit): each "
        "early-stopped fit stops at its share, keeping its best round so far. Applies to "
        "training in one process (not data-parallel; not per series or with enable_hpo, "
        "which refuse it).",
    )

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(
        cls, values: dict[str, HyperparameterValue | HyperparameterSpec]
    ) -> dict[str, Any]:
        unknown = sorted(set(values) - KNOWN_HYPERPARAMETERS)
        if unknown:
            raise ValueError(
                f"unknown LightGBM parameter(s) {unknown}; known: {sorted(KNOWN_HYPERPARAMETERS)}"
            )
        return {name: whole_if_integral(name, value) for name, value in values.items()}

    @field_validator("holidays")
    @classmethod
    def _known_calendar(cls, code: str | None) -> str | None:
        return None if code is None else check_holiday_code(code)

    @field_validator("quantiles")
    @classmethod
    def _increasing_probabilities(cls, quantiles: list[float]) -> list[float]:
        outside = [q for q in quantiles if not 0 < q < 1]
        if outside:
            raise ValueError(f"quantiles must lie strictly between 0 and 1; got {outside}")
        if any(b <= a for a, b in pairwise(quantiles)):
            raise ValueError(f"quantiles must be strictly increasing; got {quantiles}")
        if len({f"{q:g}" for q in quantiles}) < len(quantiles):
            raise ValueError(f"quantiles must differ within 6 significant digits; got {quantiles}")
        return quantiles

    @field_validator("time_budget_s")
    @classmethod
    def _budget_for_one_model(cls, budget: float | None, info: ValidationInfo) -> float | None:
        if budget is not None and info.data.get("per_series"):
            raise ValueError(
                "time_budget_s with per_series is not supported (each series trains in its "
                "own task); drop one of them"
            )
        return budget

    @field_validator("per_series")
    @classmethod
    def _per_series_alone(cls, per_series: bool, info: ValidationInfo) -> bool:
        if per_series and info.data.get("enable_hpo"):
            raise ValueError(
                "per_series with enable_hpo is not supported (no search per series): search "
                "with one global model, then train per series with its hyperparameters"
            )
        if per_series and info.data.get("backtest") is not None:
            raise ValueError("per_series with a backtest is not supported; drop 'backtest'")
        if per_series and info.data.get("distributed") is not None:
            raise ValueError(
                "per_series with distributed is not supported: each series' model trains "
                "in one task of its own; drop 'distributed'"
            )
        return per_series

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        if self.validation_split + self.test_split >= 0.9:
            raise ValueError("validation_split + test_split must be below 0.9")
        specs = [k for k, v in self.hyperparameters.items() if isinstance(v, HyperparameterSpec)]
        if specs and not self.enable_hpo:
            raise ValueError(f"search specs for {specs} need enable_hpo: true")
        if self.refit_on_all_rows and (self.per_series or self.distributed is not None):
            raise ValueError(
                "refit_on_all_rows is not supported with per_series or distributed; drop one"
            )
        if self.promotion is not None and not self.promote_champion:
            raise ValueError("promotion needs promote_champion: true")
        metric, qs = self.promotion_policy.metric, self.quantiles
        if metric == "wql" and not qs:
            raise ValueError("promotion.metric 'wql' needs quantiles")
        central = any(abs(a + b - 1) < 1e-9 for a in qs for b in qs if a < b)
        if metric == "coverage_error" and not central:
            raise ValueError("promotion.metric 'coverage_error' needs quantiles q and 1 - q")
        return self

    @property
    def promotion_policy(self) -> PromotionPolicy:
        """The job's promotion policy, or the default one."""
        return self.promotion or PromotionPolicy()

    def lightgbm_params(self) -> dict[str, Any]:
        """The service's defaults overridden by the job's fixed hyperparameters (under
        the service's names: ``num_iterations`` replaces the default ``n_estimators``)."""
        fixed = {
            canonical(k): v
            for k, v in self.hyperparameters.items()
            if not isinstance(v, HyperparameterSpec)
        }
        return {**DEFAULT_HYPERPARAMETERS, **fixed}

    def search_space(self) -> dict[str, HyperparameterSpec]:
        """The job's search specs, or the default space when it gives none."""
        specs = {k: v for k, v in self.hyperparameters.items() if isinstance(v, HyperparameterSpec)}
        if specs:
            return specs
        space = {k: HyperparameterSpec.model_validate(v) for k, v in DEFAULT_SEARCH_SPACE.items()}
        fixed = {canonical(name) for name in self.hyperparameters}
        return {k: v for k, v in space.items() if k not in fixed}

    def objectives(self) -> tuple[str, ...]:
        """The objectives of the model's members: the job's own, else the default blend."""
        fixed = self.hyperparameters.get("objective")
        return (str(fixed),) if isinstance(fixed, str) else DEFAULT_OBJECTIVES

    def sized_for(self, rows: int, min_rows: int, cluster_cpus: int) -> TrainingConfig:
        """This config, data-parallel on ``AUTO_WORKERS`` workers when its feature set has
        ``min_rows`` rows or more, the job chose nothing itself (neither ``distributed``,
        ``per_series`` nor ``refit_on_all_rows``, which refits in one process) and the
        cluster holds them. A search or a backtest keeps every row in one process anyway
        (``partitioned``), and a time budget bounds local threads only: those jobs would
        pay for the workers and gain nothing, so they stay as they are."""
        workers = AUTO_WORKERS * self.train_cpus
        chose = self.distributed or self.per_series or self.refit_on_all_rows
        unsplit = self.enable_hpo or self.backtest is not None or self.time_budget_s is not None
        if unsplit:
            return self
        if chose or rows < min_rows or workers > cluster_cpus:
            return self
        return self.model_copy(update={"distributed": DistributedSpec(workers=AUTO_WORKERS)})

    def resolved_for(self, cluster_cpus: int) -> TrainingConfig:
        """This config with its fan-out widths fixed for a cluster of ``cluster_cpus``:
        a search's trials at once (at most ``n_trials``), a per-series job's chunks at
        once and a backtest's windows at once (beside the stage bundle, at most the
        windows), where the job left them to the service. Fixed when the job is
        submitted, so what it holds is known while it waits."""
        cpus = max(1, cluster_cpus)
        update: dict[str, Any] = {}
        if self.n_workers is None and self.distributed is None:
            if self.enable_hpo:
                update["n_workers"] = min(cpus, self.n_trials)
            elif self.per_series:
                update["n_workers"] = cpus
        if self.backtest is not None and self.backtest.workers is None:
            workers = self.distributed.workers if self.distributed is not None else 1
            stage = 1 if self.enable_hpo and not self.distributed else self.train_cpus * workers
            windows = min(max(1, cpus - stage), self.backtest.windows)
            update["backtest"] = self.backtest.model_copy(update={"workers": windows})
        return self.model_copy(update=update) if update else self

    @property
    def partitioned(self) -> bool:
        """Whether the job builds its features per series bucket and keeps its training
        rows in the object store (``pipeline.features.partitions``): a ``distributed`` job does,
        unless a search's trials or a backtest's windows need all its rows in one place."""
        return self.distributed is not None and not self.enable_hpo and self.backtest is None

    @property
    def backtest_step(self) -> int:
        return (self.backtest.step if self.backtest else None) or self.horizon

    @property
    def quantile_boosters(self) -> bool:
        """Whether the model's quantiles come from quantile boosters (else from residuals)."""
        return self.quantile_method == "quantile_boosters"

    @property
    def train_cpus(self) -> int:
        return self.n_workers or 1
