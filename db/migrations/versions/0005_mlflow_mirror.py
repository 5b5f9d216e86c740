"""what the MLflow mirror has written

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_mlflow_mirror",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("mirrored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ai_mlflow_mirror")
