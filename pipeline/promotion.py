"""What a job that promotes its model configures (``PromotionPolicy``), and the champion
its compare stage is told about (``ChampionRef``). Judged in ``domain.promotions``."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from domain.promotions import PromotionMetric


class PromotionPolicy(BaseModel):
    """When a job's model replaces the champion: both forecast the same rows (the job's
    test part after the champion's own test start), scored by ``metric`` over the
    period and per day."""

    model_config = ConfigDict(extra="forbid")

    metric: PromotionMetric = Field(
        "mae",
        description="'mae' (point forecasts), 'wql' (weighted quantile loss over the "
        "quantiles both models have) or 'coverage_error' (|share inside - nominal| of the "
        "central intervals both have, averaged). Lower is better for each.",
    )
    margin: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="How much better the challenger must be, relative: promoted only if "
        "its score < (1 - margin) x the champion's.",
    )
    min_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="How sure a one-sided Wilcoxon signed-rank test over the daily scores "
        "(1 - p) must be that the challenger is better by the margin; 0 only reports it.",
    )


@dataclass(frozen=True)
class ChampionRef:
    """The version a model's ``champion`` alias points at, and where its artifact is."""

    model_id: str
    artifact_uri: str
