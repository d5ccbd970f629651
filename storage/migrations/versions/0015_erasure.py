"""personal data erased everywhere (issue 21): who was erased, as a keyed hash only; where a
channel still holds a report file's own copy (a Twilio media URL), so erasing deletes it there

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_contacts",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_erased_contacts")),
    )
    with op.batch_alter_table("report_media") as batch:
        batch.add_column(sa.Column("origin", sa.Text(), nullable=True))
    with op.batch_alter_table("media_blobs") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_media_blobs_owner_id_contacts"),
            "contacts",
            ["owner_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("media_blobs") as batch:
        batch.drop_constraint("fk_media_blobs_owner_id_contacts", type_="foreignkey")
        batch.drop_column("owner_id")
    with op.batch_alter_table("report_media") as batch:
        batch.drop_column("origin")
    op.drop_table("erased_contacts")
