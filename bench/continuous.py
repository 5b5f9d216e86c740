"""A model's life replayed day by day through the service: append a day, forecast the next,
score what arrived, and let a retrain strategy act.

A real series (``shared/data/hourly_electricity.csv``, 2012-2014 hourly; ``--series``) is
cut at ``--start``: the rows before it train the first champion (the default job). Then,
for each of ``--days`` days, on a service of its own (local Ray, SQLite, 2 CPUs), each
strategy on its own copy of the set:

1. batch-forecasts the day ahead (24 steps) with its ``champion``;
2. appends the day's actuals (``POST /feature-sets/{name}/rows``);
3. lets monitoring score the forecast (``GET /ai/models/{id}/monitoring``);
4. acts:

   - ``never``: keeps the first champion;
   - ``nightly``: trains a default job on everything so far and makes it champion;
   - ``policy``: the service's retrain policy (a drifted scored forecast, or 7 days the
     champion and its last retrain never saw; a 3-day cooldown), warm from the champion,
     promoted only on the same evidence.

It prints each strategy's served day-ahead MAE (every forecast scored by the service's
monitoring) and its training seconds (the jobs' run times), and checks the goals: the
policy's MAE <= the better of ``never`` and ``nightly`` with <= 1/3 of ``nightly``'s
training seconds; no promotion the same-window comparison showed worse. ``--shift``
multiplies every actual from halfway by 1 + shift (a level shift) and reports, for the
policy, the days until the champion's status was ``drifted``, the day its retrain fired,
and the live MAE after it over the new champion's test MAE.

    .venv/bin/python -m bench.continuous [--days 60] [--shift 0.2] [--final-refit] [--search N]
        [--strategies never,nightly,policy]

``--final-refit`` makes every job of every strategy (the first champion's too) a
``refit_on_all_rows`` job: the served models have seen every row before their training
ended. ``--search N`` makes every job a search of N trials (a policy's warm retrain skips
it); each strategy's line then says what its later jobs cost beside its first.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from actors.settings import OrchestratorSettings
from db.database import Database
from db.keys import ApiKeyStore
from domain.auth import Role
from domain.clock import utcnow
from pipeline.settings import PipelineSettings
from serve_app.service import RunningService, ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

SERIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "hourly_electricity.csv"
API_PORT = 8793
TENANT = "replay"
HORIZON = 24
POLICY = {
    "rules": {"drift_evaluations": 1, "new_days": 7},
    "cooldown": "P3D",
    "max_per_day": 1,
    "warm_start": True,
}


@dataclass
class Replay:
    strategy: str
    feature_set: str
    model_name: str
    champion: str = ""
    served: list[tuple[str, str]] = field(default_factory=list)  # (model, forecast)
    jobs: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    promoted: list[int] = field(default_factory=list)


class Service:
    """The service's API as the replay uses it."""

    def __init__(self, running: RunningService, http: httpx.AsyncClient) -> None:
        self.running = running
        self.http = http

    async def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def upload(self, name: str, rows: pd.DataFrame) -> None:
        params = {"timestamp_column": "timestamp", "target_column": "load"}
        await self.ok("PUT", f"/ai/training/feature-sets/{name}", params=params, content=_csv(rows))

    async def append(self, name: str, rows: pd.DataFrame, everything: pd.DataFrame) -> None:
        """Add a day's rows as a new version: appended, or with ``--reupload`` the set
        uploaded whole again (``everything``: every row so far)."""
        if REUPLOAD:
            await self.upload(name, everything)
        else:
            await self.ok("POST", f"/ai/training/feature-sets/{name}/rows", content=_csv(rows))

    async def train(self, replay: Replay, **config: Any) -> dict[str, Any]:
        job = await self.ok("POST", "/ai/training/jobs/start", json=job_body(replay, **config))
        return await self.finished(job["job_id"])

    async def finished(self, job_id: str) -> dict[str, Any]:
        while True:
            job: dict[str, Any] = await self.ok("GET", f"/ai/training/jobs/{job_id}")
            if job["status"] in ("completed", "failed", "cancelled"):
                if job["status"] != "completed":
                    raise RuntimeError(f"job {job_id} {job['status']}: {job['error_message']}")
                return job
            await asyncio.sleep(0.2)

    async def forecast(self, model_id: str, feature_set: str) -> str:
        body = {"feature_set": feature_set, "horizon": HORIZON}
        started = await self.ok("POST", f"/ai/models/{model_id}/forecasts", json=body)
        while True:
            page = await self.ok("GET", f"/ai/models/forecasts/{started['forecast_id']}")
            status = page["forecast"]["status"]
            if status == "completed":
                return str(started["forecast_id"])
            if status == "failed":
                raise RuntimeError(page["forecast"]["error"])
            await asyncio.sleep(0.1)

    async def champion(self, replay: Replay) -> str:
        alias = await self.ok("GET", f"/ai/models/{TENANT}/{replay.model_name}@champion")
        return str(alias["model_id"])


def job_body(replay: Replay, **config: Any) -> dict[str, Any]:
    """A default job on the replay's set (with ``--final-refit``, refitted on every row)."""
    refit = {"refit_on_all_rows": True} if FINAL_REFIT else {}
    search = {"enable_hpo": True, "n_trials": SEARCH_TRIALS} if SEARCH_TRIALS else {}
    return {
        "tenant_id": TENANT,
        "model_type": "forecast",
        "model_name": replay.model_name,
        "config": {
            "feature_set": replay.feature_set,
            "target_variable": "load",
            **refit,
            **search,
            **config,
        },
    }


async def replay_strategy(
    service: Service, replay: Replay, series: pd.DataFrame, start: datetime, days: int, shift: float
) -> None:
    history = series[series["timestamp"] < start]
    known = history
    await service.upload(replay.feature_set, history)
    first = await service.train(replay, promote_champion=True)
    replay.jobs.append(first["job_id"])
    replay.champion = first["model_id"]
    if replay.strategy == "policy":
        job = job_body(replay)
        await service.ok("POST", "/ai/training/retrain-policies", json={"job": job, **POLICY})
    for day in range(days):
        begins = start + timedelta(days=day)
        forecast_id = await service.forecast(replay.champion, replay.feature_set)
        replay.served.append((replay.champion, forecast_id))
        actuals = series[
            (series["timestamp"] >= begins) & (series["timestamp"] < begins + timedelta(days=1))
        ]
        if shift and day >= days // 2:
            actuals = actuals.assign(load=actuals["load"] * (1 + shift))
        known = pd.concat([known, actuals], ignore_index=True)
        await service.append(replay.feature_set, actuals, known)
        await service.running.orchestrator.monitor.remote()
        status = await service.ok("GET", f"/ai/models/{replay.champion}/monitoring")
        replay.statuses.append((status["status"] or {}).get("status", "none"))
        await act(service, replay, day, begins + timedelta(days=1))


async def act(service: Service, replay: Replay, day: int, now: datetime) -> None:
    if replay.strategy == "nightly":
        job = await service.train(replay)
        replay.jobs.append(job["job_id"])
        alias = f"/ai/models/{TENANT}/{replay.model_name}/aliases/champion"
        await service.ok("PUT", alias, json={"version": job["model_id"].rsplit(":", 1)[1]})
        replay.champion = job["model_id"]
    elif replay.strategy == "policy":
        started: list[str] = await service.running.orchestrator.check_policies.remote(now)
        for job_id in started:
            replay.fired.append(day)
            replay.jobs.append(job_id)
            await service.finished(job_id)
        champion = await service.champion(replay)
        if champion != replay.champion:
            replay.promoted.append(day)
            replay.champion = champion


async def served_mae(service: Service, replay: Replay) -> tuple[float, list[float]]:
    maes = []
    for model_id, forecast_id in replay.served:
        scored = await service.ok("GET", f"/ai/models/{model_id}/monitoring/{forecast_id}")
        maes.append(float(scored["metrics"]["mae"]))
    return sum(maes) / len(maes), maes


async def training_seconds(service: Service, replay: Replay) -> list[float]:
    """Each job's run time, the first champion's first."""
    seconds = []
    for job_id in replay.jobs:
        job = await service.ok("GET", f"/ai/training/jobs/{job_id}")
        started, ended = (datetime.fromisoformat(job[k]) for k in ("started_at", "completed_at"))
        seconds.append((ended - started).total_seconds())
    return seconds


async def worse_promotions(service: Service, replay: Replay) -> int:
    """Promotions whose stored same-window comparison shows the challenger worse."""
    found = await service.ok("GET", f"/ai/models/{TENANT}/{replay.model_name}/promotions")
    worse = 0
    for decision in found["promotions"]:
        evidence = decision.get("evidence") or {}
        challenger, champion = evidence.get("challenger_score"), evidence.get("champion_score")
        if decision["decision"] == "promoted" and challenger is not None and champion is not None:
            worse += float(challenger) > float(champion)
    return worse


async def run(args: argparse.Namespace, url: str, data_dir: Path) -> None:
    series = pd.read_csv(args.series, parse_dates=["timestamp"])
    series["timestamp"] = series["timestamp"].dt.tz_localize("UTC")
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    key = await _admin_key(url)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{API_PORT}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    ) as http:
        service = Service(RUNNING[0], http)
        results = {}
        for strategy in args.strategies.split(","):
            suffix = uuid.uuid4().hex[:6]
            replay = Replay(strategy, f"replay{suffix}", f"replay_{strategy}_{suffix}")
            began = time.perf_counter()
            await replay_strategy(service, replay, series, start, args.days, args.shift)
            mae, daily = await served_mae(service, replay)
            each = await training_seconds(service, replay)
            seconds = sum(each)
            worse = await worse_promotions(service, replay) if strategy == "policy" else 0
            results[strategy] = (mae, seconds, replay, daily, worse)
            print(
                f"{strategy:<8} served day-ahead MAE {mae:8.2f}  training {seconds:7.1f} s "
                f"({len(replay.jobs)} jobs)  replay {time.perf_counter() - began:6.0f} s"
            )
            if len(each) > 1:
                later = statistics.median(each[1:])
                print(
                    f"         first job {each[0]:.1f} s, later jobs' median {later:.1f} s "
                    f"({later / each[0]:.2f}x)"
                )
            if strategy == "policy":
                print(
                    f"         retrains fired on days {replay.fired}, promoted on {replay.promoted}"
                )
                print(f"         promotions the same-window comparison shows worse: {worse}")
                if args.shift:
                    report_shift(replay, daily, args.days, await _test_mae(service, replay))
        report_goals(results)


def report_shift(replay: Replay, daily: list[float], days: int, test_mae: float) -> None:
    half = days // 2
    drifted = next((d for d in range(half, days) if replay.statuses[d] == "drifted"), None)
    fired = next((d for d in replay.fired if d >= half), None)
    print(
        f"         shift from day {half}: status drifted on day {drifted} "
        f"({None if drifted is None else drifted - half + 1} day(s) of shifted actuals); "
        f"retrain fired on day {fired}"
    )
    promoted = next((d for d in replay.promoted if d >= half), None)
    if promoted is not None and promoted + 1 < days:
        after = daily[promoted + 1 :]
        live = sum(after) / len(after)
        print(
            f"         after its promotion (day {promoted}): live MAE {live:.2f} over "
            f"{len(after)} days, {live / test_mae:.3f}x the new champion's test MAE {test_mae:.2f}"
        )


def report_goals(results: dict[str, Any]) -> None:
    if not {"never", "nightly", "policy"} <= set(results):
        return
    never, nightly, policy = (results[s] for s in ("never", "nightly", "policy"))
    best = min(never[0], nightly[0])
    print(
        f"policy MAE / better of never and nightly: {policy[0] / best:.3f} (goal <= 1); "
        f"policy / nightly training seconds: {policy[1] / nightly[1]:.3f} (goal <= 0.333)"
    )


async def _test_mae(service: Service, replay: Replay) -> float:
    model = await service.ok("GET", f"/ai/models/{replay.champion}")
    return float(model["metrics"]["mae"])


async def _admin_key(url: str) -> str:
    database = Database.from_url(url)
    try:
        return (await ApiKeyStore(database).create("ops", Role.ADMIN, utcnow())).token
    finally:
        await database.close()


def _csv(rows: pd.DataFrame) -> bytes:
    text = io.StringIO()
    rows.to_csv(text, index=False)
    return text.getvalue().encode()


RUNNING: list[RunningService] = []
#: Days arrive as whole re-uploads instead of appends (``--reupload``).
REUPLOAD = False
#: Every job, the first champion's included, ends with a refit on every row.
FINAL_REFIT = False
#: Every job searches with this many trials (0: none); a policy's warm retrain does not.
SEARCH_TRIALS = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=SERIES)
    parser.add_argument("--start", default="2014-01-01")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--shift", type=float, default=0.0)
    parser.add_argument("--strategies", default="never,nightly,policy")
    parser.add_argument("--reupload", action="store_true", help="upload the set whole each day")
    parser.add_argument(
        "--final-refit", action="store_true", help="every job refits on all rows (every strategy)"
    )
    parser.add_argument(
        "--search", type=int, default=0, help="every job an HPO job of this many trials"
    )
    args = parser.parse_args()
    global REUPLOAD, FINAL_REFIT, SEARCH_TRIALS
    REUPLOAD, FINAL_REFIT, SEARCH_TRIALS = args.reupload, args.final_refit, args.search
    data_dir = Path(tempfile.mkdtemp(prefix="continuous-"))
    url = f"sqlite+aiosqlite:///{data_dir / 'training.db'}"
    try:
        asyncio.run(prepare_storage(url, PipelineSettings(data_dir=data_dir)))
        config = ServiceConfig(
            database_url=url,
            pipeline=PipelineSettings(data_dir=data_dir),
            orchestrator=OrchestratorSettings(monitor_seconds=24 * 3600),  # the replay scores
            api=ApiSettings(port=API_PORT, auth_enabled=True),
        )
        connect(None, num_cpus=2)
        RUNNING.append(start(config))
        try:
            asyncio.run(run(args, url, data_dir))
        finally:
            stop(RUNNING[0])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
