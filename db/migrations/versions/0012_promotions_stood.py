"""a rollback rule's watch that found nothing against a promotion: a 'stood' decision

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BEFORE = "decision IN ('promoted', 'kept', 'rolled_back')"
AFTER = "decision IN ('promoted', 'kept', 'rolled_back', 'stood')"


def upgrade() -> None:
    with op.batch_alter_table("ai_promotions") as table:
        table.drop_constraint("ck_promotions_decision", type_="check")
        table.create_check_constraint("ck_promotions_decision", AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM ai_promotions WHERE decision = 'stood'")
    with op.batch_alter_table("ai_promotions") as table:
        table.drop_constraint("ck_promotions_decision", type_="check")
        table.create_check_constraint("ck_promotions_decision", BEFORE)
