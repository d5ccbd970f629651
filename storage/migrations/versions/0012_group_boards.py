"""the live report board of a group in a surge (issue 18): boards and the reports on them

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_boards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("bot", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_row", sa.Integer(), nullable=True),
        sa.Column("edit_row", sa.Integer(), nullable=True),
        sa.Column("next_edit_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["areas.id"],
            name=op.f("fk_group_boards_area_id_areas"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_row"],
            ["outbox.id"],
            name=op.f("fk_group_boards_message_row_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["edit_row"],
            ["outbox.id"],
            name=op.f("fk_group_boards_edit_row_outbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_boards")),
    )
    op.create_index(
        "ix_group_boards_chat", "group_boards", ["channel", "chat_id", "closed_at"], unique=False
    )
    op.create_table(
        "board_reports",
        sa.Column("board_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["board_id"],
            ["group_boards.id"],
            name=op.f("fk_board_reports_board_id_group_boards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_board_reports_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("board_id", "report_id", name=op.f("pk_board_reports")),
    )
    op.create_index("ix_board_reports_report_id", "board_reports", ["report_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_board_reports_report_id", table_name="board_reports")
    op.drop_table("board_reports")
    op.drop_index("ix_group_boards_chat", table_name="group_boards")
    op.drop_table("group_boards")
