"""send slots: deployment-wide rate limits shared by several workers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_slots")),
    )
    op.create_index("ix_send_slots_scope_until", "send_slots", ["scope", "until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_send_slots_scope_until", table_name="send_slots")
    op.drop_table("send_slots")
