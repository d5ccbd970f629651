"""several Telegram bots: the bot each contact and each linked group is reached through

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Before this revision a deployment had one bot, "default": every Telegram contact and group
already known was reached through it, so they keep it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("contacts", "group_chats"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("bot", sa.String(length=32), nullable=True))
        op.execute(
            sa.text(f"UPDATE {table} SET bot = 'default' WHERE channel = 'telegram'")  # noqa: S608
        )


def downgrade() -> None:
    for table in ("group_chats", "contacts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("bot")
