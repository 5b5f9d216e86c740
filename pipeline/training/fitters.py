"""Who trains a model's boosters: the requests (one booster each), the fitters that run
them (in this process, or across Ray Train workers: ``pipeline.distributed.ray_train``),
and how a time budget is shared between their fits."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from pipeline.config import RefitMethod
from pipeline.features.preprocess import PreparedData, PreparedFeatures
from pipeline.training.callbacks import Callback, StopAt
from pipeline.training.fitting import BinnedData, Binning, Fitted, fit_and_refit

logger = logging.getLogger(__name__)

Data_contra = TypeVar("Data_contra", bound=PreparedFeatures, contravariant=True)


@dataclass(frozen=True)
class FitRequest:
    """One booster to train: ``params`` early-stopped after ``early_stopping_rounds``
    (0: all its rounds), then refitted on training + validation rows."""

    params: dict[str, Any]
    early_stopping_rounds: int
    #: Seconds the early-stopped fit may take (its share of a time budget), if limited.
    seconds: float | None = None
    #: How the fit takes in the validation rows, and the most rounds its refit may grow to
    #: (``pipeline.training.fitting.refitted``).
    refit: RefitMethod = "full"
    max_rounds: int | None = None


class Fitter(Protocol[Data_contra]):
    """Trains boosters: in this process (``InProcessFitter``) or across Ray Train
    workers (``pipeline.distributed.ray_train``)."""

    def __call__(self, data: Data_contra, requests: Sequence[FitRequest]) -> list[Fitted]: ...

    @property
    def local_threads(self) -> int | None:
        """Threads this process holds for more fits (None: the boosters train elsewhere)."""
        ...


@dataclass(frozen=True)
class InProcessFitter:
    """Each request fitted, then refitted, in this process on ``num_threads`` threads."""

    num_threads: int
    callbacks: Sequence[Callback] = ()

    @property
    def local_threads(self) -> int | None:
        return self.num_threads

    def __call__(self, data: PreparedData, requests: Sequence[FitRequest]) -> list[Fitted]:
        """The requests in turn, on the data binned once for them all (per binning)."""
        binned: dict[Binning, BinnedData] = {}
        fitted = []
        for request in requests:
            callbacks = list(self.callbacks)
            if request.seconds is not None:
                callbacks.append(StopAt(time.monotonic() + request.seconds))
            params, stopping = request.params, request.early_stopping_rounds
            fitted.append(
                fit_and_refit(
                    data,
                    params,
                    stopping,
                    self.num_threads,
                    callbacks,
                    binned,
                    request.refit,
                    request.max_rounds,
                )
            )
        return fitted


#: How long a member's refit on training + validation rows takes, and its refits at the
#: calibration's later origins, per second of its early-stopped fit: the largest ratios
#: seen on the real hourly, household and traffic sets, so that a plan does not overrun
#: its budget.
REFIT_COST = 1.0
ROLLING_REFITS_COST = 2.9


def budget_plan(
    requests: Sequence[FitRequest],
    budget: float,
    refit: RefitMethod,
    rolling: bool,
    fitter: Fitter[Any],
) -> list[FitRequest]:
    """The requests with each early-stopped fit's share of ``budget`` seconds: the fits,
    their refits (unless ``refit`` is ``none``) and refits at the calibration's rolling
    origins split it evenly."""
    if fitter.local_threads is None:
        logger.info("time budget %.0f s: not applied to data-parallel training", budget)
        return list(requests)
    refits = REFIT_COST if refit == "full" else 0.0
    per_fit = 1 + refits + (ROLLING_REFITS_COST if rolling else 0.0)
    seconds = budget / (per_fit * len(requests))
    after = [
        *(["their refits"] if refits else []),
        *(["refits at the calibration's rolling origins"] if rolling else []),
    ]
    logger.info(
        "time budget %.1f s: %d early-stopped fit(s) of up to %.1f s each%s",
        budget,
        len(requests),
        seconds,
        f", then {' and '.join(after)}" if after else "",
    )
    return [replace(r, seconds=seconds) if r.early_stopping_rounds else r for r in requests]
