"""escalation that climbs: how far up the area tree a report's escalation has gone

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``reports.escalation_level``: 0 before the first escalation; then how many areas above the
report's own the last escalation reached (1: the parent area, 2: the one above, ...). Reports
escalated before this revision (``escalated_at`` set) count as level 1 and stop there, as
they did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False)
        )
    # Escalated under the old rule (once, to the parent): level 1, and not due again.
    op.execute(
        "UPDATE reports SET escalation_level = 1, escalate_at = NULL WHERE escalated_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("escalation_level")
