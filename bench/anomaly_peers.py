"""The anomaly benchmark's peers on one labelled series: ADTK's AutoregressionAD and PyOD's
IsolationForest, each fitted on the rows before the cut and flagging every later row.

Run by ``bench/anomaly.py`` in ``.venv-bench`` (``python -m bench.anomaly_peers CSV CUT``);
prints JSON: for each peer its flags on rows ``CUT..`` (0/1), its seconds (fit and detect)
and notes. Scoring is left to ``bench/anomaly.py``, which scores the service's flags by
the same rules.

Both peers run at their documented defaults, nothing tuned on labels:

- ADTK ``AutoregressionAD(n_steps=WINDOW, step_size=1, c=3.0)``: a linear regression of
  each value on the ``WINDOW`` values before it, fitted on the training rows; a row is
  anomalous when its residual is outside ``[Q1 - c IQR, Q3 + c IQR]`` of the training
  residuals. ``detect`` runs over the whole series (so the first scored rows have their
  lags) and only rows from the cut on are kept; a row ADTK leaves NaN is not flagged.
- PyOD ``IForest(random_state=0)`` (default contamination 0.1) on sliding windows of the
  last ``WINDOW`` values (each row's window ends at the row), fitted on the training rows'
  windows; ``predict`` labels each later row's window.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

#: Lags each peer sees: the same window for both, about 2.7 hours at the sets' 5-minute
#: convention (a fixed, untuned choice; ADTK's own examples use 14 lags).
WINDOW = 32


def adtk_flags(series: pd.Series, cut: int) -> dict[str, Any]:
    # ADTK 0.6.2 (2020) runs as is on pandas 2.3 and NumPy 2; it warns that pandas 3 will
    # refuse its NaN in a boolean Series (which is why the benchmark venv keeps pandas < 3).
    warnings.filterwarnings("ignore", category=FutureWarning, module="adtk")
    from adtk.detector import AutoregressionAD  # type: ignore[import-not-found,unused-ignore]

    started = time.perf_counter()
    detector = AutoregressionAD(n_steps=WINDOW, step_size=1, c=3.0)
    detector.fit(series.iloc[:cut])
    detected = detector.detect(series)
    seconds = time.perf_counter() - started
    later = detected.iloc[cut:]
    unknown = int(later.isna().sum())
    flags = later.astype(float).fillna(0.0).to_numpy() > 0
    return {
        "flags": flags.astype(int).tolist(),
        "seconds": seconds,
        "notes": f"AutoregressionAD(n_steps={WINDOW}, step_size=1, c=3.0); "
        f"{unknown} scored rows NaN (not flagged)",
    }


def windows(values: np.ndarray, width: int) -> np.ndarray:
    """Row ``i`` of the result is ``values[i : i + width]``: the window ending at row
    ``i + width - 1``."""
    return np.lib.stride_tricks.sliding_window_view(values, width)


def pyod_flags(series: pd.Series, cut: int) -> dict[str, Any]:
    from pyod.models.iforest import IForest  # type: ignore[import-not-found,unused-ignore]

    values = series.to_numpy(dtype=float)
    table = windows(values, WINDOW)  # table[j] ends at row j + WINDOW - 1
    started = time.perf_counter()
    detector = IForest(random_state=0)
    detector.fit(table[: cut - WINDOW + 1])  # windows ending before the cut
    predicted = detector.predict(table[cut - WINDOW + 1 :])  # windows ending at rows cut..
    seconds = time.perf_counter() - started
    return {
        "flags": np.asarray(predicted, dtype=int).tolist(),
        "seconds": seconds,
        "notes": f"IForest(random_state=0, contamination={detector.contamination}) "
        f"on windows of the last {WINDOW} values",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="a file of bench/data/anomaly (timestamp,value,is_anomaly)")
    parser.add_argument("cut", type=int, help="the first row scored; the rows before train")
    args = parser.parse_args()
    data = pd.read_csv(args.csv, parse_dates=["timestamp"])
    index = pd.DatetimeIndex(data["timestamp"], freq="infer")  # ADTK wants a DatetimeIndex
    series = pd.Series(data["value"].astype(float).to_numpy(), index=index)
    if not WINDOW < args.cut < len(series):
        sys.exit(f"cut {args.cut} outside ({WINDOW}, {len(series)})")
    result = {"adtk": adtk_flags(series, args.cut), "pyod": pyod_flags(series, args.cut)}
    for name, peer in result.items():
        if len(peer["flags"]) != len(series) - args.cut:
            sys.exit(f"{name} returned {len(peer['flags'])} flags for {len(series) - args.cut}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
