"""a registered model's global feature importance

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_models") as batch:
        batch.add_column(sa.Column("feature_importance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ai_models") as batch:
        batch.drop_column("feature_importance")
