"""WhatsApp buttons: the Content API resources made for them, by the hash of their body

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

A new table only; nothing existing changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_contents",
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("content_sid", sa.String(length=34), nullable=True),
        sa.Column("refused", sa.String(length=255), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("body_hash", name=op.f("pk_whatsapp_contents")),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_contents")
