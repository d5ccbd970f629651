"""the report lifecycle: merged reports (duplicate_of_id) and closure photos (purpose)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

New statuses ("duplicate", "reopened") fit the existing ``reports.status`` column; existing
files are the reports' own (``purpose`` = "report").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_reports_duplicate_of_id_reports"),
            "reports",
            ["duplicate_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("report_media", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="report", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("report_media", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_reports_duplicate_of_id_reports"), type_="foreignkey"
        )
        batch_op.drop_column("duplicate_of_id")
