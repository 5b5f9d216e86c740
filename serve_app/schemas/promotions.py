"""Decisions on a model's ``champion`` alias as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from db.records import PromotionRecord
from domain.promotions import Decision
from serve_app.schemas.paging import PagePublic


class PromotionPublic(BaseModel):
    """One decision: a job's model promoted or kept, a rollback, or a promotion that
    stood through its rollback rule's watch (``stood``), with its evidence."""

    promotion_id: str
    tenant_id: str
    model_name: str
    decision: Decision
    challenger_id: str = Field(
        description="The version decided about (for a rollback: the one rolled back; for "
        "'stood': the one whose promotion stands)."
    )
    champion_id: str | None = Field(
        description="The champion it was compared with (for a rollback: the one restored)."
    )
    job_id: str | None = Field(
        description="The job whose completion decided (None: a rollback; for 'stood': the "
        "promoting job)."
    )
    reason: str
    decided_at: datetime
    metric: str | None = Field(None, description="What was compared: mae, wql or coverage_error.")
    challenger_score: float | None = None
    champion_score: float | None = None
    confidence: float | None = Field(
        None,
        description="1 - p of a one-sided Wilcoxon signed-rank test over the daily scores "
        "that the challenger is better by the margin.",
    )
    window_start: str | None = Field(None, description="The first row both forecast (UTC).")
    window_end: str | None = Field(None, description="The last row both forecast (UTC).")
    evidence: dict[str, Any] = Field(
        description="Everything the decision was taken on: the policy (metric, margin, "
        "min_confidence), both scores, the period, the paired test and the daily scores "
        "(up to 100 days); a rollback rule's live scores under 'live'."
    )

    @classmethod
    def of(cls, record: PromotionRecord) -> PromotionPublic:
        evidence = dict(record.evidence)
        window = evidence.get("window") or {}
        test = evidence.get("paired_test") or {}
        return cls(
            promotion_id=record.promotion_id,
            tenant_id=record.tenant_id,
            model_name=record.model_name,
            decision=record.decision,
            challenger_id=record.challenger_id,
            champion_id=record.champion_id,
            job_id=record.job_id,
            reason=record.reason,
            decided_at=record.decided_at,
            metric=evidence.get("metric"),
            challenger_score=evidence.get("challenger_score"),
            champion_score=evidence.get("champion_score"),
            confidence=test.get("confidence"),
            window_start=window.get("start"),
            window_end=window.get("end"),
            evidence=evidence,
        )


class PromotionsPublic(PagePublic):
    promotions: list[PromotionPublic]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        pattern=r"^[^\x00]*$",
        description="Why (stored with the decision); any text but a NUL.",
    )
