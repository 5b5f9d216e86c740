"""Promotion decisions on both backends: taken at the job's completion on the comparison
the job made, stored with their evidence, listed, and rolled back."""

from __future__ import annotations

import asyncio

import pytest

from db.jobs import JobStore
from db.promotions import PromotionStore
from db.records import NewModel
from db.registry import CHAMPION, ModelRegistry
from domain.errors import ModelNotFound
from domain.events import JobEvent
from domain.jobs import JobStatus
from domain.promotions import NO_CHAMPION, Comparison, Decision, NothingToRollBack
from tests.db.factories import new_job, new_model
from tests.db.test_registry import register

V1, V2, V3, V4 = (f"20260101.00000{i}" for i in range(1, 5))


@pytest.fixture
def promotions(store: JobStore) -> PromotionStore:
    return PromotionStore(store.database)


def model(version: str, comparison: Comparison | None = None, **fields: object) -> NewModel:
    return new_model(version, promote=True, comparison=comparison, **fields)


def beats(champion: str, better: bool = True) -> Comparison:
    """A comparison with ``champion`` that the challenger won (or lost)."""
    evidence = {"metric": "mae", "challenger_score": 1.0, "champion_score": 2.0}
    reason = "beats" if better else "does not beat"
    return Comparison(f"tenant-a:load_forecast:{champion}", better, reason, evidence)


async def champion_version(store: JobStore) -> str:
    found = await ModelRegistry(store.database).resolve("tenant-a", "load_forecast", CHAMPION)
    return found.version


async def test_a_challenger_is_promoted_only_on_its_comparison_and_each_decision_is_kept(
    store: JobStore, promotions: PromotionStore
) -> None:
    first = await register(store, model(V1, Comparison(None, True, NO_CHAMPION)))
    assert await champion_version(store) == V1
    worse = await register(store, model(V2, beats(V1, better=False), metrics={"mae": 0.1}))
    assert await champion_version(store) == V1, "its own lower test MAE does not count"
    [line] = [log for log in await store.tail_logs(worse, 10) if log.stage == "register"]
    assert line.message.startswith(f"{CHAMPION} stays tenant-a:load_forecast:{V1}")
    await register(store, new_model(V3, comparison=beats(V1)))
    assert await champion_version(store) == V1, "a job without the flag never promotes"
    await register(store, model(V4, beats(V1)))
    assert await champion_version(store) == V4

    page = await promotions.list("tenant-a", "load_forecast", 1, 10)
    assert page.total == 3
    newest, kept, promoted = page.items
    assert [r.decision for r in page.items] == [Decision.PROMOTED, Decision.KEPT, Decision.PROMOTED]
    assert (promoted.job_id, promoted.champion_id, promoted.reason) == (first, None, NO_CHAMPION)
    assert (kept.job_id, kept.champion_id) == (worse, f"tenant-a:load_forecast:{V1}")
    assert kept.reason == "does not beat"
    assert newest.evidence == {"metric": "mae", "challenger_score": 1.0, "champion_score": 2.0}
    second = await promotions.list("tenant-a", "load_forecast", 2, 2)
    assert [r.promotion_id for r in second.items] == [promoted.promotion_id]


async def test_no_promotion_on_stale_or_missing_evidence(
    store: JobStore, promotions: PromotionStore
) -> None:
    await register(store, model(V1))  # no champion: promoted without a comparison
    await register(store, model(V2, Comparison(None, True, NO_CHAMPION)))
    await register(store, model(V3))
    assert await champion_version(store) == V1
    missing, stale, _ = (await promotions.list("tenant-a", "load_forecast", 1, 10)).items
    assert stale.decision is Decision.KEPT
    assert "changed from none to tenant-a:load_forecast:" in stale.reason
    assert stale.evidence["compared_with"] is None
    assert missing.decision is Decision.KEPT
    assert missing.reason == "the model was not compared with the champion"

    await ModelRegistry(store.database).set_alias("tenant-a", "load_forecast", CHAMPION, V3)
    await register(store, model(V4, beats(V1)))  # compared with V1; V3 is champion now
    assert await champion_version(store) == V3
    [latest, *_] = (await promotions.list("tenant-a", "load_forecast", 1, 1)).items
    assert "no promotion on stale evidence" in latest.reason


async def test_rollbacks_undo_promotions_newest_first(
    store: JobStore, promotions: PromotionStore
) -> None:
    with pytest.raises(ModelNotFound):
        await promotions.rollback("tenant-a", "load_forecast")
    await register(store, model(V1, Comparison(None, True, NO_CHAMPION)))
    with pytest.raises(NothingToRollBack, match="no champion before it"):
        await promotions.rollback("tenant-a", "load_forecast")
    await register(store, model(V2, beats(V1)))
    await register(store, model(V3, beats(V2, better=False)))
    await register(store, model(V4, beats(V2)))
    assert await champion_version(store) == V4

    back = await promotions.rollback("tenant-a", "load_forecast", "live MAE fell")
    assert await champion_version(store) == V2
    assert back.decision is Decision.ROLLED_BACK
    assert back.challenger_id == f"tenant-a:load_forecast:{V4}"
    assert back.champion_id == f"tenant-a:load_forecast:{V2}"
    assert (back.job_id, back.reason) == (None, "live MAE fell")

    registry = ModelRegistry(store.database)
    await registry.set_alias("tenant-a", "load_forecast", CHAMPION, V3)
    with pytest.raises(NothingToRollBack, match="moved by hand"):
        await promotions.rollback("tenant-a", "load_forecast")
    await registry.set_alias("tenant-a", "load_forecast", CHAMPION, V2)
    await promotions.rollback("tenant-a", "load_forecast")
    assert await champion_version(store) == V1
    with pytest.raises(NothingToRollBack, match="no champion before it"):
        await promotions.rollback("tenant-a", "load_forecast")
    listed = (await promotions.list("tenant-a", "load_forecast", 1, 10)).items
    assert [r.decision for r in listed[:2]] == [Decision.ROLLED_BACK] * 2
    with pytest.raises(ModelNotFound):
        await promotions.list("tenant-b", "load_forecast", 1, 10)


async def test_the_latest_change_and_the_versions_rolled_back_from(
    store: JobStore, promotions: PromotionStore
) -> None:
    assert await promotions.latest_change("tenant-a", "load_forecast") is None
    await register(store, model(V1, Comparison(None, True, NO_CHAMPION)))
    await register(store, model(V2, beats(V1)))
    await register(store, model(V3, beats(V2, better=False)))  # kept: no change
    latest = await promotions.latest_change("tenant-a", "load_forecast")
    assert latest is not None
    assert (latest.decision, latest.challenger_id) == (
        Decision.PROMOTED,
        f"tenant-a:load_forecast:{V2}",
    )
    assert await promotions.rolled_back_from("tenant-a", "load_forecast") == set()

    with pytest.raises(NothingToRollBack, match="no longer the latest"):
        await promotions.rollback("tenant-a", "load_forecast", "x", undoing="another")
    back = await promotions.rollback(
        "tenant-a", "load_forecast", "worse live", undoing=latest.promotion_id, evidence={"a": 1}
    )
    assert back.evidence["undoes"] == latest.promotion_id
    assert back.evidence["a"] == 1
    changed = await promotions.latest_change("tenant-a", "load_forecast")
    assert changed is not None
    assert changed.decision is Decision.ROLLED_BACK
    assert await promotions.rolled_back_from("tenant-a", "load_forecast") == {
        f"tenant-a:load_forecast:{V2}"
    }


async def test_a_promotion_found_to_stand_is_stored_once_and_moves_nothing(
    store: JobStore, promotions: PromotionStore
) -> None:
    await register(store, model(V1, Comparison(None, True, NO_CHAMPION)))
    await register(store, model(V2, beats(V1)))
    promoted = await promotions.latest_change("tenant-a", "load_forecast")
    assert promoted is not None
    assert not await promotions.stood(promoted)

    stood = await promotions.stand(promoted, "the promotion stands: x", evidence={"live": {}})
    assert stood is not None
    assert (stood.decision, stood.challenger_id, stood.champion_id, stood.job_id) == (
        Decision.STOOD,
        promoted.challenger_id,
        promoted.champion_id,
        promoted.job_id,
    )
    assert stood.evidence == {"stands": promoted.promotion_id, "live": {}}
    assert await promotions.stood(promoted)
    assert await promotions.stand(promoted, "again", evidence={}) is None
    # It moved nothing: the promotion is still the latest change, and can be undone.
    assert await promotions.latest_change("tenant-a", "load_forecast") == promoted
    listed = (await promotions.list("tenant-a", "load_forecast", 1, 10)).items
    assert [r.decision for r in listed] == [Decision.STOOD, Decision.PROMOTED, Decision.PROMOTED]
    back = await promotions.rollback("tenant-a", "load_forecast", undoing=promoted.promotion_id)
    assert back.champion_id == f"tenant-a:load_forecast:{V1}"
    # A later promotion of another version has not stood.
    await register(store, model(V3, beats(V1)))
    later = await promotions.latest_change("tenant-a", "load_forecast")
    assert later is not None
    assert not await promotions.stood(later)


async def test_two_first_champions_completing_together_promote_one(
    store: JobStore, promotions: PromotionStore
) -> None:
    """Neither sees a champion; the second to insert one keeps the first's, and its job
    completes."""
    for attempt in range(5):
        name = f"load_{attempt}"
        jobs = [await store.create_job(new_job(model_name=name)) for _ in range(2)]
        for job in jobs:
            await store.transition(job.job_id, JobEvent.START)
        first = Comparison(None, True, NO_CHAMPION)
        models = [model(v, first, model_name=name) for v in (V1, V2)]
        await asyncio.gather(
            *(
                store.transition(job.job_id, JobEvent.COMPLETE, model=m)
                for job, m in zip(jobs, models, strict=True)
            )
        )
        statuses = {(await store.get_job(job.job_id)).status for job in jobs}
        assert statuses == {JobStatus.COMPLETED}
        decisions = (await promotions.list("tenant-a", name, 1, 10)).items
        assert sorted(d.decision for d in decisions) == [Decision.KEPT, Decision.PROMOTED]
        [promoted] = [d for d in decisions if d.decision is Decision.PROMOTED]
        champion = await ModelRegistry(store.database).resolve("tenant-a", name, CHAMPION)
        assert champion.model_id == promoted.challenger_id
        [kept] = [d for d in decisions if d.decision is Decision.KEPT]
        assert kept.champion_id == promoted.challenger_id


async def test_rollbacks_asked_for_together_each_undo_a_promotion_of_their_own(
    store: JobStore, promotions: PromotionStore
) -> None:
    """Two at once (a double click, a rule and a person) never both undo the same one:
    the second undoes the next promotion, or is refused."""
    await register(store, model(V1, Comparison(None, True, NO_CHAMPION)))
    await register(store, model(V2, beats(V1)))
    await register(store, model(V3, beats(V2)))
    outcomes = await asyncio.gather(
        promotions.rollback("tenant-a", "load_forecast"),
        promotions.rollback("tenant-a", "load_forecast"),
        return_exceptions=True,
    )
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, NothingToRollBack) for o in refused), refused
    undone = [r.evidence["undoes"] for r in done]
    assert len(set(undone)) == len(undone) >= 1
    assert await champion_version(store) == (V2 if len(done) == 1 else V1)


async def test_aliases_created_together_are_one_alias(store: JobStore) -> None:
    await register(store, new_model(V1))
    await register(store, new_model(V2))
    registry = ModelRegistry(store.database)
    await asyncio.gather(
        *(registry.set_alias("tenant-a", "load_forecast", "staging", v) for v in (V1, V2, V1))
    )
    staged = await registry.resolve("tenant-a", "load_forecast", "staging")
    assert staged.version in (V1, V2)
