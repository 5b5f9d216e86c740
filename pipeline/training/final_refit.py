"""The final refit: a model's boosters fitted once more on every row, its test part
included, after the test part has scored it and the champion was compared with it.

A job's model is refitted on training + validation rows, and its test part (the most
recent rows) is what it is scored on, so it never sees them. A model that serves the days
after its data ends forecasts best from the newest rows: Amazon Forecast trains its final
predictor on the whole dataset once backtesting has scored it, and mlforecast fits on
everything before its forecasts. Asked for by ``refit_on_all_rows``. The registered
model's test metrics stay those of the model before this refit (the only honest ones
there are), whose boosters are kept beside it (``scored``): a later job is compared with
those on the rows neither was fitted on, recipe against recipe, as the refitted one saw
every row such a job could be judged on. Its quantiles keep their calibration on the
validation part, and the served intervals follow their misses from the first row it was
not fitted on (``lineage.out_of_sample_from``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData
from pipeline.training.blend import Blend, Member
from pipeline.training.boosters import booster_on, grown_rounds
from pipeline.training.fitting import booster_params, trained_params
from pipeline.training.train import TrainedModel

logger = logging.getLogger(__name__)


def refit_on_all_rows(
    model: TrainedModel, data: PreparedData, config: TrainingConfig, num_threads: int
) -> TrainedModel:
    """``model`` with every booster (point and quantile members) refitted on every row, its
    rounds grown with the rows added to those they were found on (``grown_rounds``)."""
    validation, test = data.validation.unlabelled(), data.test.unlabelled()
    X = np.vstack([data.train.X, validation.X, test.X])
    y = np.concatenate([data.train.y, validation.y, test.y])
    if model.level is not None:  # its boosters forecast the target relative to a level
        y = y - model.level.of(X)
    fitted_rows = data.train_rows + (len(validation.y) if config.refit != "none" else 0)
    ceiling = booster_params(config.lightgbm_params(), 1)[1]

    def refitted(members: Sequence[Member]) -> tuple[Member, ...]:
        out = []
        for member in members:
            rounds = grown_rounds(member.rounds, fitted_rows, len(y) - fitted_rows, ceiling)
            params = {**trained_params(member.booster), "num_threads": num_threads}
            out.append(
                replace(member, booster=booster_on(data, X, y, params, rounds), rounds=rounds)
            )
        return tuple(out)

    members = refitted(model.members)
    logger.info(
        "refitted on every row (%d: training + validation + test, %d more than the rounds "
        "were found on): %s",
        len(y),
        len(y) - fitted_rows,
        ", ".join(f"{m.objective} {m.rounds} rounds" for m in members),
    )
    scored = Blend(model.members, model.quantile_members, model.calibration, model.level)
    quantile_members = refitted(model.quantile_members)
    return replace(model, members=members, quantile_members=quantile_members, scored=scored)
