"""Anomaly flags on real labelled series: the service against ADTK and PyOD (issue 38).

For each set of ``bench/data/anomaly`` (``timestamp,value,is_anomaly``), every detector
trains on the first ``--cut`` of its rows (15 %) and flags every later row:

- the service: the first rows are uploaded through its own upload as a feature set (the
  ``is_anomaly`` column as its labels), an anomaly job is submitted over HTTP
  (``model_type: "anomaly"``, ``horizon: 1``, otherwise the defaults), and every later row
  is scored by ``POST /ai/models/{id}/predict`` in chunks, each chunk sent with the rows
  before it as history (up to the request's row limit); a row's flag is its ``anomaly``;
- ADTK's ``AutoregressionAD`` and PyOD's ``IForest`` at their defaults
  (``bench/anomaly_peers.py``, run in ``.venv-bench``).

All three are scored on exactly the same rows by the same rules
(``pipeline.scoring.labelled.label_scores``): event-wise precision, recall and F1 (a
labelled window found by any flag in it, a run of flags right when it touches a window),
point-wise F1, NAB's standard-profile score and false alarms per week (detections touching
no window, per week of unlabelled rows at the sets' assigned cadence).

Run: ``make bench-anomaly`` (``python -m bench.anomaly [--sets a,b] [--cut 0.15]``);
``--held-back`` scores the held-back set alone (bench/data/anomaly/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from actors.settings import OrchestratorSettings
from bench.service_client import Service as ForecastService
from db.settings import DatabaseSettings
from pipeline.scoring.labelled import label_scores, runs
from pipeline.settings import PipelineSettings
from serve_app.schemas.models import MAX_PREDICT_ROWS
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

DATA = Path(__file__).parent / "data" / "anomaly"
ROOT = Path(__file__).parent.parent
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
#: Chosen before any tuning; scored only with --held-back (bench/data/anomaly/README.md).
HELD_BACK = "mitdb_ecg"
API_PORT = 8767
WORKERS = 2
TENANT = "bench"
POLL_SECONDS = 1.0
JOB_TIMEOUT = 1800
#: Rows scored per predict request; the rest of the request is the history before them.
CHUNK_ROWS = 2_000


@dataclass
class LabelledSet:
    name: str
    data: pd.DataFrame  # timestamp, value, is_anomaly
    cut: int  # the first scored row

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(self.data["timestamp"].diff().median())

    @property
    def labels(self) -> np.ndarray:
        return self.data["is_anomaly"].to_numpy(dtype=bool)[self.cut :]


@dataclass
class Detection:
    detector: str
    flags: np.ndarray  # one per scored row
    seconds: float
    predict_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


def load_set(name: str, cut: float) -> LabelledSet:
    data = pd.read_csv(DATA / f"{name}.csv", parse_dates=["timestamp"])
    steps = data["timestamp"].diff().iloc[1:]
    if steps.nunique() != 1:
        raise ValueError(f"{name}: timestamps must step evenly")
    return LabelledSet(name, data, int(len(data) * cut))


def set_names() -> list[str]:
    return sorted(path.stem for path in DATA.glob("*.csv"))


# ----------------------------------------------------------------------------- service


class Service(ForecastService):
    """The service over HTTP: the upload, the anomaly job and its predictions."""

    async def upload_labelled(self, labelled: LabelledSet) -> str:
        name = f"anomaly_{labelled.name}"
        train = labelled.data.iloc[: labelled.cut]
        response = await self.client.put(
            f"/ai/training/feature-sets/{name}",
            params={"timestamp_column": "timestamp", "target_column": "value"},
            content=train.to_csv(index=False).encode(),
        )
        if response.status_code >= 300:
            raise RuntimeError(f"upload: {response.status_code} {response.text[:1000]}")
        return name

    async def flags(self, model_id: str, labelled: LabelledSet) -> tuple[np.ndarray, int]:
        """Each scored row's ``anomaly`` flag, and how many scored rows got no answer
        (counted as not flagged)."""
        data = labelled.data
        stamps = data["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        flagged: dict[str, bool] = {}
        for first in range(labelled.cut, len(data), CHUNK_ROWS):
            last = min(first + CHUNK_ROWS, len(data))
            history = max(0, last - MAX_PREDICT_ROWS)
            rows = [
                {"timestamp": stamps.iloc[i], "value": float(data["value"].iloc[i])}
                for i in range(history, last)
            ]
            response = await self.client.post(f"/ai/models/{model_id}/predict", json={"rows": rows})
            if response.status_code != 200:
                raise RuntimeError(f"predict: {response.status_code} {response.text[:500]}")
            new = set(stamps.iloc[first:last])  # earlier rows are history, flagged already
            for p in response.json()["predictions"]:
                stamp = pd.Timestamp(p["timestamp"]).strftime("%Y-%m-%dT%H:%M:%S")
                if p["anomaly"] is not None and stamp in new:
                    flagged[stamp] = bool(p["anomaly"])
        scored = stamps.iloc[labelled.cut :]
        missing = int((~scored.isin(flagged.keys())).sum())
        return np.array([flagged.get(s, False) for s in scored], dtype=bool), missing


async def service_detection(service: Service, labelled: LabelledSet) -> Detection:
    feature_set = await service.upload_labelled(labelled)
    config = {"feature_set": feature_set, "target_variable": "value", "horizon": 1}
    job, seconds = await service.run(config, f"{labelled.name}-anomaly", "anomaly")
    started = time.perf_counter()
    flags, missing = await service.flags(job["model_id"], labelled)
    predict_seconds = time.perf_counter() - started
    notes = [
        f"model {job['model_id']}; job created {job['created_at']}, started "
        f"{job['started_at']}, completed {job['completed_at']}"
    ]
    metrics = job.get("metrics") or {}
    kept = {k: v for k, v in metrics.items() if "event" in k or "anomaly" in k}
    if kept:
        notes.append(f"the job's own test-part metrics: {json.dumps(kept)}")
    if missing:
        notes.append(f"{missing} scored rows without a prediction (not flagged)")
    return Detection("service", flags, seconds, predict_seconds, notes)


async def service_run(api_url: str, labelled_sets: list[LabelledSet]) -> list[Detection]:
    async with httpx.AsyncClient(base_url=api_url, timeout=600) as client:
        service = Service(client)
        # Warm the workers, as a running service is: a small job on the demo set.
        warm_up = {
            "feature_set": "anomaly_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 20},
        }
        await service.run(warm_up, "warm-up")
        return [await service_detection(service, s) for s in labelled_sets]


def service_detections(labelled_sets: list[LabelledSet]) -> list[Detection]:
    """The service's flags on each set, from a service of its own (local Ray, SQLite)."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-anomaly-"))
    try:
        pipeline = PipelineSettings(data_dir=data_dir)
        database_url = DatabaseSettings(data_dir=data_dir).url
        asyncio.run(prepare_storage(database_url, pipeline))
        config = ServiceConfig(
            database_url=database_url,
            pipeline=pipeline,
            orchestrator=OrchestratorSettings(),
            api=ApiSettings(port=API_PORT, max_upload_mb=64),
        )
        connect(None, num_cpus=WORKERS)
        running = start(config)
        try:
            return asyncio.run(service_run(running.api_url, labelled_sets))
        finally:
            stop(running)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- peers


def peer_detections(labelled: LabelledSet) -> list[Detection]:
    """ADTK's and PyOD's flags from ``bench/anomaly_peers.py`` in the benchmark venv."""
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} is missing: run `make .venv-bench/.installed`")
    completed = subprocess.run(
        [
            str(BENCH_PYTHON),
            "-m",
            "bench.anomaly_peers",
            str(DATA / f"{labelled.name}.csv"),
            str(labelled.cut),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.anomaly_peers failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout)
    return [
        Detection(name, np.array(peer["flags"], dtype=bool), peer["seconds"], None, [peer["notes"]])
        for name, peer in (("ADTK AR", result["adtk"]), ("PyOD IForest", result["pyod"]))
    ]


# ----------------------------------------------------------------------------- report


def scores(labelled: LabelledSet, detection: Detection) -> dict[str, float]:
    if len(detection.flags) != len(labelled.labels):
        raise RuntimeError(f"{detection.detector}: flags for {len(detection.flags)} rows")
    result = label_scores(detection.flags, labelled.labels, labelled.step)
    result["flags"] = int(detection.flags.sum())
    result["events"] = len(runs(detection.flags))
    return result


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def report(
    labelled_sets: list[LabelledSet], detections: dict[str, list[Detection]], cut: float
) -> None:
    print()
    print(f"Trained on the first {cut:.0%} of each set's rows, every later row scored.")
    print()
    print(
        "| set | detector | event P | event R | event F1 | point F1 | NAB | false alarms "
        "/ week | flags | events | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for labelled in labelled_sets:
        f1s = {}
        for detection in detections[labelled.name]:
            s = scores(labelled, detection)
            f1s[detection.detector] = s.get("event_f1", 0.0)
            seconds = f"{detection.seconds:.1f}"
            if detection.predict_seconds is not None:
                seconds += f" + {detection.predict_seconds:.1f} predict"
            print(
                f"| {labelled.name} | {detection.detector} | {fmt(s.get('event_precision'))} "
                f"| {fmt(s.get('event_recall'))} | {fmt(s.get('event_f1'))} "
                f"| {fmt(s.get('point_f1'))} | {fmt(s.get('nab_score'), 1)} "
                f"| {fmt(s.get('false_alarms_per_week'), 2)} | {s['flags']} | {s['events']} "
                f"| {seconds} |"
            )
        peer = max(v for k, v in f1s.items() if k != "service")
        ratio = f1s["service"] / peer if peer > 0 else math.nan
        ratios.append((labelled, peer, f1s["service"], ratio))
    print()
    for labelled, peer, service, ratio in ratios:
        windows = len(runs(labelled.labels))
        print(
            f"{labelled.name}: {len(labelled.data)} rows, {labelled.cut} trained, "
            f"{len(labelled.labels)} scored, {windows} labelled window(s) scored; "
            f"service event F1 / better peer's: {fmt(service)} / {fmt(peer)} = {fmt(ratio)}"
        )
    print()
    for labelled in labelled_sets:
        for detection in detections[labelled.name]:
            for note in detection.notes:
                print(f"  {labelled.name} {detection.detector}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        help=f"comma-separated names among {', '.join(set_names())} "
        f"(default: all but the held-back {HELD_BACK})",
    )
    parser.add_argument("--cut", type=float, default=0.15, help="share of rows that train")
    parser.add_argument(
        "--held-back", action="store_true", help=f"score only the held-back set ({HELD_BACK})"
    )
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.WARNING)
    if args.held_back:
        names = [HELD_BACK]
    elif args.sets:
        names = args.sets.split(",")
    else:
        names = [n for n in set_names() if n != HELD_BACK]
    labelled_sets = [load_set(name, args.cut) for name in names]
    detections: dict[str, list[Detection]] = {s.name: peer_detections(s) for s in labelled_sets}
    for labelled, detection in zip(labelled_sets, service_detections(labelled_sets), strict=True):
        detections[labelled.name].insert(0, detection)
    report(labelled_sets, detections, args.cut)


if __name__ == "__main__":
    main()
