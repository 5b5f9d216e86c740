"""Loading an MLflow model with ``mlflow.pyfunc.load_model`` in a fresh Python process, as a
user of the tracking server would, away from the project's own directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = """
import json, sys
import mlflow, pandas as pd
uri, tracking, rows, out = sys.argv[1:]
if tracking:
    mlflow.set_tracking_uri(tracking)
model = mlflow.pyfunc.load_model(uri)
model.predict(pd.read_parquet(rows)).to_parquet(out)
print(json.dumps({"pipeline": sys.modules["pipeline"].__file__}))
"""


def pyfunc_predict(
    model_uri: str, rows: pd.DataFrame, work: Path, tracking_uri: str = ""
) -> tuple[pd.DataFrame, Path]:
    """The model's predictions for ``rows``, and where the process found ``pipeline``."""
    rows.to_parquet(work / "rows.parquet")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, model_uri, tracking_uri, "rows.parquet", "out.parquet"],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return pd.read_parquet(work / "out.parquet"), Path(found["pipeline"])
