"""the MLflow mirror's ledger holds every alias key: tenant (128) : model (128) @ alias (64)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_mlflow_mirror") as table:
        table.alter_column("key", existing_type=sa.String(length=300), type_=sa.String(length=400))


def downgrade() -> None:
    op.execute("DELETE FROM ai_mlflow_mirror WHERE length(key) > 300")  # mirrored again
    with op.batch_alter_table("ai_mlflow_mirror") as table:
        table.alter_column("key", existing_type=sa.String(length=400), type_=sa.String(length=300))
