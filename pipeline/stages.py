"""The stage harness: the stages of a job, and running one while capturing its log lines.

No Ray here: ``pipeline.graph`` runs ``run_stage`` as a Ray task, ``run_in_process`` calls
it directly, and the orchestrator reads the ``StageReport`` it returns.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

from domain.errors import PipelineError
from pipeline.summaries import StageSummary

T = TypeVar("T")

#: The logger whose records (and its children's) a stage captures.
PIPELINE_LOGGER = "pipeline"


class Stage(StrEnum):
    """A stage of the pipeline, in running order. The values are stored (the job's and its
    log lines' ``stage``) and shown by the API."""

    LOAD_FEATURES = "load_features"
    PREPROCESS = "preprocess"
    SEARCH = "search"
    TRAIN = "train"
    BACKTEST = "backtest"
    EVALUATE = "evaluate"
    COMPARE = "compare"  # with the champion, when the job promotes its model
    FINAL_REFIT = "final_refit"  # on every row, when the job asks (refit_on_all_rows)
    REGISTER = "register"

    @property
    def milestone(self) -> float:
        """The job's progress when this stage finishes (the seed's milestones)."""
        return _MILESTONES[self]


_MILESTONES = {
    Stage.LOAD_FEATURES: 0.2,
    Stage.PREPROCESS: 0.4,
    Stage.SEARCH: 0.65,
    Stage.TRAIN: 0.7,
    Stage.BACKTEST: 0.8,
    Stage.EVALUATE: 0.85,
    Stage.COMPARE: 0.9,
    Stage.FINAL_REFIT: 0.95,
    Stage.REGISTER: 1.0,
}


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    level: str
    stage: Stage
    message: str


@dataclass(frozen=True)
class StageReport:
    stage: Stage
    progress: float
    seconds: float
    logs: list[LogLine]
    #: What the stage's output says about itself (None for an output that says nothing).
    summary: StageSummary | None = None


@runtime_checkable
class Summarized(Protocol):
    """A stage output that summarizes itself for the stage's report."""

    def summary(self) -> StageSummary: ...


class StageFailed(PipelineError):
    """A stage raised; carries the stage's log lines and the traceback across processes."""

    def __init__(self, stage: Stage, message: str, logs: list[LogLine], trace: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.logs = logs
        self.trace = trace

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.stage, self.message, self.logs, self.trace))


class _Capture(logging.Handler):
    def __init__(self, stage: Stage) -> None:
        super().__init__(logging.INFO)
        self.stage = stage
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(
            LogLine(
                timestamp=datetime.fromtimestamp(record.created, UTC),
                level=record.levelname,
                stage=self.stage,
                message=record.getMessage(),
            )
        )


def run_stage(stage: Stage, fn: Callable[..., Any], *args: Any) -> tuple[Any, StageReport]:
    """Run one stage function, capturing its ``pipeline.*`` log lines into a report."""
    progress = stage.milestone
    capture = _Capture(stage)
    pipeline_logger = logging.getLogger(PIPELINE_LOGGER)
    pipeline_logger.addHandler(capture)
    pipeline_logger.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        output = fn(*args)
    except Exception as exc:
        message = (
            f"{stage} failed: {exc}"
            if isinstance(exc, PipelineError)
            else (f"{stage} failed: {type(exc).__name__}: {exc}")
        )
        raise StageFailed(stage, message, capture.lines, traceback.format_exc()) from None
    finally:
        pipeline_logger.removeHandler(capture)
    summary = output.summary() if isinstance(output, Summarized) else None
    report = StageReport(stage, progress, time.perf_counter() - started, capture.lines, summary)
    return output, report


def chunks(items: Sequence[T], size: int) -> list[tuple[T, ...]]:
    """``items`` in order, in pieces of at most ``size``: a coordinator's tasks."""
    return [tuple(items[start : start + size]) for start in range(0, len(items), size)]
