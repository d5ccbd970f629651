"""an index of one person's outbox rows (erasing them read the whole outbox three times)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_contact_id", "outbox", ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_contact_id", table_name="outbox")
