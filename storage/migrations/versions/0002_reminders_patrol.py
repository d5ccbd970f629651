"""reminders: health template key; patrol confirmations per member and shift

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=32), nullable=True))
    op.create_table(
        "patrol_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["patrol_members.id"],
            name=op.f("fk_patrol_confirmations_member_id_patrol_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["patrol_shifts.id"],
            name=op.f("fk_patrol_confirmations_shift_id_patrol_shifts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_confirmations")),
        sa.UniqueConstraint(
            "shift_id", "member_id", name=op.f("uq_patrol_confirmations_shift_id_member_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("patrol_confirmations")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_column("template")
