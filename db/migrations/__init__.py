"""Alembic migrations for the training service's schema."""
