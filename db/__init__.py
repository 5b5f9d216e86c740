"""Persistence: engine and sessions from one URL, tables, migrations and the storage contract."""
