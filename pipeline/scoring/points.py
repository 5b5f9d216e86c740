"""Point forecasts scored against what happened."""

from __future__ import annotations

import numpy as np


def validation_scores(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """A model's out-of-sample scores on the validation part, as its experiment keeps them
    (``best_mae``, ``best_rmse``)."""
    errors = actual - forecast
    return {
        "best_mae": float(np.mean(np.abs(errors))),
        "best_rmse": float(np.sqrt(np.mean(errors**2))),
    }
