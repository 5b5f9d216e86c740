"""The Parquet feature store: feature sets as immutable versions, their schemas, streamed
imports of uploaded files, and the demo sets."""
