"""Feature sets as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
    operation: str = Field(
        "import",
        description="How the version was made: `import` (an upload), `append` (rows added to "
        "the previous version) or `compaction` (the previous version's rows in fewer files).",
    )
    previous_version: str | None = Field(
        None, description="The version an append or a compaction was made on."
    )
    appended_rows: int | None = Field(None, description="The rows an append added.")
    replaced_rows: int | None = Field(
        None, description="The previous version's rows an append replaced (on_conflict=replace)."
    )


class FeatureSetsPublic(BaseModel):
    feature_sets: list[FeatureSetPublic]


class LabelledWindowPublic(BaseModel):
    """An incident: rows from ``start`` to ``end`` (inclusive) are anomalous."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    series: str | None = Field(None, description="Its series; none: every series.")


class LabelledWindows(BaseModel):
    """A set's labelled anomaly windows; an anomaly job on a set without an ``is_anomaly``
    column is scored against them."""

    model_config = ConfigDict(extra="forbid")

    windows: list[LabelledWindowPublic] = Field(max_length=100_000)
