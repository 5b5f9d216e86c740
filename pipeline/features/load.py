"""The load stage: a job's feature set read from the store, or planned in parts."""

from __future__ import annotations

import logging
from dataclasses import replace

from domain.jobs import ModelType
from pipeline.context import JobContext
from pipeline.features.partitions import FeaturePlan, feature_plan
from pipeline.stages import PIPELINE_LOGGER
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureFrame, FeatureStore
from pipeline.store.windows import with_window_labels


def load_features(context: JobContext, features_root: Location) -> FeatureFrame:
    """The job's rows; an anomaly job's labelled from the set's uploaded windows where it
    has no label column."""
    store = FeatureStore(features_root, context.tenant_id)
    name = context.config.feature_set
    frame = store.load(name, context.config.end_date)
    if context.model_type is ModelType.ANOMALY:
        frame = with_window_labels(frame, store.windows(name))
    logging.getLogger(f"{PIPELINE_LOGGER}.features").info(
        "loaded %d rows of %s (%s .. %s)",
        len(frame.data),
        frame.schema.name,
        frame.schema.start,
        frame.schema.end,
    )
    return frame


def plan_features(context: JobContext, features_root: Location) -> FeaturePlan:
    """The load stage of a partitioned job: its features, parts and pinned version,
    from the set's key columns alone."""
    store = FeatureStore(features_root, context.tenant_id)
    planned = feature_plan(store, context.config)
    if context.model_type is ModelType.ANOMALY:  # labelled as ``load_features`` labels
        planned = replace(planned, windows=tuple(store.windows(context.config.feature_set)))
    logging.getLogger(f"{PIPELINE_LOGGER}.features").info(
        "%d rows of %s version %s in %d part(s), built in parallel",
        planned.rows,
        planned.schema.name,
        planned.schema.pinned_version,
        len(planned.parts),
    )
    return planned
