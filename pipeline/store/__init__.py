"""The Parquet feature store: feature sets as immutable versions, per tenant (``FeatureStore``),
appends and compactions that make a version from the one before, a set's labelled anomaly
windows, and the demo sets. How a version is written, read, published and retired is
``pipeline.versions``."""
