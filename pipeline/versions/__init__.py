"""A feature set's versions as files: the record that describes each version (``schema``)
and makes it visible and current (``publication``), its rows written from a table in
bounded memory (``importing``) and read back as one dataset (``parts``, ``scan``), and the
versions and files retention may delete (``retention``).

The room below ``pipeline.store``, whose ``FeatureStore`` composes these into imports,
appends, compactions and loads; nothing here knows the store, its tenants or its sets'
anomaly windows.
"""
