"""the media store: stored files by content hash, their references, Telegram's file ids

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Files attached before this revision keep what they had (``report_media.file_ref``: a Telegram
file_id or a path under ``data_dir/media``); ``store_ref`` stays NULL for them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_blobs",
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("holds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_media_blobs")),
    )
    op.create_index("ix_media_blobs_touched_at", "media_blobs", ["touched_at"], unique=False)
    op.create_table(
        "media_file_ids",
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("bot", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ref"],
            ["media_blobs.ref"],
            name=op.f("fk_media_file_ids_ref_media_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ref", "channel", "bot", "kind", name=op.f("pk_media_file_ids")),
    )
    with op.batch_alter_table("report_media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_ref", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_media_store_ref"), ["store_ref"], unique=False)
    op.create_index("ix_broadcasts_media_ref", "broadcasts", ["media_ref"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_broadcasts_media_ref", table_name="broadcasts")
    with op.batch_alter_table("report_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_media_store_ref"))
        batch_op.drop_column("size")
        batch_op.drop_column("store_ref")
    op.drop_table("media_file_ids")
    op.drop_index("ix_media_blobs_touched_at", table_name="media_blobs")
    op.drop_table("media_blobs")
