"""Feature sets as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class FeatureSetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    timestamp_column: str
    target_column: str
    series_column: str | None
    label_column: str | None
    covariates: list[str]
    columns: list[str]
    rows: int
    start: datetime
    end: datetime
    created_at: datetime = Field(description="When the import of this version began.")
    published_at: datetime | None = Field(
        None,
        description="When this version became current (and its predecessor was superseded).",
    )
    version: str = Field(
        validation_alias="pinned_version",
        description="The immutable version; a job pins it and its model's lineage keeps it.",
    )


class FeatureSetsPublic(BaseModel):
    feature_sets: list[FeatureSetPublic]
