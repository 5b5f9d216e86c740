"""The model registry: registered versions and their aliases.

A model is inserted by its job's completion (``add_model``, in that transaction).

An alias (``champion``, ``staging``, ...) names one version of a tenant's model, as in
MLflow 2.9+. A job registered with ``promote`` moves ``champion`` to its model only if it
beat the champion on the same rows (``db.promotions``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.database import Database
from db.models import Experiment, ModelAlias, RegisteredModel, TrainingJob
from db.paging import paginate
from db.records import ModelFilters, ModelRecord, NewModel, Page
from domain.clock import utcnow
from domain.errors import AliasNotFound, ModelNotFound
from domain.jobs import JobStatus, ModelType
from domain.names import model_id

CHAMPION = "champion"


class ModelRegistry:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def search(self, filters: ModelFilters, page: int, page_size: int) -> Page[ModelRecord]:
        """One page (1-based) of matching models, newest first, and the match count."""
        conditions = _conditions(filters)
        query = (
            select(RegisteredModel)
            .where(*conditions)
            .order_by(RegisteredModel.created_at.desc(), RegisteredModel.model_id)
        )
        async with self._database.transaction() as session:
            found = await paginate(session, query, page, page_size)
            return found.with_items(await _with_aliases(session, found.items))

    async def get(self, model_id: str) -> ModelRecord:
        """Raises: ModelNotFound: no model has that id."""
        async with self._database.transaction() as session:
            row = await session.get(RegisteredModel, model_id)
            if row is None:
                raise ModelNotFound(model_id)
            [record] = await _with_aliases(session, [row])
            return record

    async def of_job(self, job_id: str) -> list[ModelRecord]:
        """The models a job registered (zero or one)."""
        query = select(RegisteredModel).where(RegisteredModel.job_id == job_id)
        async with self._database.transaction() as session:
            return await _with_aliases(session, (await session.scalars(query)).all())

    async def versions(self, tenant_id: str, model_name: str) -> set[str]:
        """The versions of a model registered so far."""
        query = select(RegisteredModel.version).where(
            RegisteredModel.tenant_id == tenant_id, RegisteredModel.model_name == model_name
        )
        async with self._database.transaction() as session:
            return set((await session.scalars(query)).all())

    async def model_types(self, tenant_id: str, model_name: str) -> set[ModelType]:
        """The types a model name has: its registered versions' and those of its jobs
        queued or running, which will register versions of it."""
        registered = select(RegisteredModel.model_type).where(
            RegisteredModel.tenant_id == tenant_id, RegisteredModel.model_name == model_name
        )
        coming = select(TrainingJob.model_type).where(
            TrainingJob.tenant_id == tenant_id,
            TrainingJob.model_name == model_name,
            TrainingJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        )
        async with self._database.transaction() as session:
            found = await session.scalars(registered.distinct().union(coming.distinct()))
            return {ModelType(value) for value in found.all()}

    async def resolve(self, tenant_id: str, model_name: str, alias: str) -> ModelRecord:
        """The version an alias points at.

        Raises:
            AliasNotFound: the model has no such alias.
        """
        query = select(ModelAlias.model_id).where(
            ModelAlias.tenant_id == tenant_id,
            ModelAlias.model_name == model_name,
            ModelAlias.alias == alias,
        )
        async with self._database.transaction() as session:
            target = (await session.execute(query)).scalar_one_or_none()
        if target is None:
            raise AliasNotFound(f"{tenant_id}/{model_name}", alias)
        return await self.get(target)

    async def set_alias(
        self, tenant_id: str, model_name: str, alias: str, version: str
    ) -> ModelRecord:
        """Point ``alias`` at ``version`` (moving it if it points elsewhere).

        Raises:
            ModelNotFound: the model has no such version.
        """
        key = model_id(tenant_id, model_name, version)
        async with self._database.transaction() as session:
            if await session.get(RegisteredModel, key) is None:
                raise ModelNotFound(key)
            await point_alias(session, tenant_id, model_name, alias, key)
        return await self.get(key)

    async def delete_alias(self, tenant_id: str, model_name: str, alias: str) -> None:
        """Raises: AliasNotFound: the model has no such alias."""
        statement = delete(ModelAlias).where(
            ModelAlias.tenant_id == tenant_id,
            ModelAlias.model_name == model_name,
            ModelAlias.alias == alias,
        )
        async with self._database.transaction() as session:
            result = await session.execute(statement)
        if not getattr(result, "rowcount", 0):
            raise AliasNotFound(f"{tenant_id}/{model_name}", alias)


async def add_model(
    session: AsyncSession, job: TrainingJob, model: NewModel, experiment_id: str | None
) -> None:
    """Insert ``model`` as registered by ``job`` (when the job was last updated), from the
    experiment ``experiment_id``, in ``session``'s transaction: the job's completion."""
    session.add(
        RegisteredModel(
            model_id=model.model_id,
            tenant_id=model.tenant_id,
            model_name=model.model_name,
            model_type=model.model_type.value,
            version=model.version,
            job_id=job.job_id,
            experiment_id=experiment_id,
            feature_set=model.feature_set,
            feature_set_version=model.feature_set_version,
            artifact_uri=model.artifact_uri,
            metrics=dict(model.metrics),
            params=dict(model.params),
            features=list(model.features),
            feature_importance=(
                dict(model.feature_importance) if model.feature_importance else None
            ),
            created_at=job.updated_at,
        )
    )
    job.model_id = model.model_id
    if experiment_id is not None:
        experiment = await session.get(Experiment, experiment_id)
        if experiment is not None:
            experiment.model_id = model.model_id


async def point_alias(
    session: AsyncSession, tenant_id: str, model_name: str, alias: str, model_id: str
) -> None:
    """Point ``alias`` at ``model_id`` in ``session``'s transaction: one upsert, so two
    requests creating the same alias at once make one alias (the later one's)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ModelAlias).values(
        tenant_id=tenant_id,
        model_name=model_name,
        alias=alias,
        model_id=model_id,
        updated_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ModelAlias.tenant_id, ModelAlias.model_name, ModelAlias.alias],
            set_={
                "model_id": statement.excluded.model_id,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


def _conditions(filters: ModelFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.tenant_id is not None:
        conditions.append(RegisteredModel.tenant_id == filters.tenant_id)
    if filters.model_name is not None:
        conditions.append(RegisteredModel.model_name == filters.model_name)
    if filters.model_type is not None:
        conditions.append(RegisteredModel.model_type == filters.model_type.value)
    return conditions


async def _with_aliases(
    session: AsyncSession, rows: Sequence[RegisteredModel]
) -> list[ModelRecord]:
    aliases: dict[str, list[str]] = {r.model_id: [] for r in rows}
    if rows:
        query = (
            select(ModelAlias.model_id, ModelAlias.alias)
            .where(ModelAlias.model_id.in_(list(aliases)))
            .order_by(ModelAlias.alias)
        )
        for model_id, alias in (await session.execute(query)).all():
            aliases[model_id].append(alias)
    return [_model_record(r, aliases[r.model_id]) for r in rows]


def _model_record(row: RegisteredModel, aliases: Sequence[str] = ()) -> ModelRecord:
    return ModelRecord(
        model_id=row.model_id,
        tenant_id=row.tenant_id,
        model_name=row.model_name,
        model_type=ModelType(row.model_type),
        version=row.version,
        job_id=row.job_id,
        experiment_id=row.experiment_id,
        feature_set=row.feature_set,
        feature_set_version=row.feature_set_version,
        artifact_uri=row.artifact_uri,
        metrics=row.metrics,
        params=row.params,
        features=row.features,
        feature_importance=row.feature_importance,
        created_at=row.created_at,
        aliases=tuple(aliases),
    )
