"""The load stage: a job's feature set read from the store, or planned in parts."""

from __future__ import annotations

import logging

from pipeline.context import JobContext
from pipeline.features.partitions import FeaturePlan, feature_plan
from pipeline.stages import PIPELINE_LOGGER
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureFrame, FeatureStore


def load_features(context: JobContext, features_root: Location) -> FeatureFrame:
    store = FeatureStore(features_root, context.tenant_id)
    frame = store.load(context.config.feature_set, context.config.end_date)
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
    planned = feature_plan(FeatureStore(features_root, context.tenant_id), context.config)
    logging.getLogger(f"{PIPELINE_LOGGER}.features").info(
        "%d rows of %s version %s in %d part(s), built in parallel",
        planned.rows,
        planned.schema.name,
        planned.schema.pinned_version,
        len(planned.parts),
    )
    return planned
