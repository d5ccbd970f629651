"""personal data (UU PDP, issue 21): retention marks on reports and outbox rows, the access log;
an index of one chat's outbox rows (the board's check per alert read the whole outbox)

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("personal_purged_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_reports_personal_purged", "reports", ["personal_purged_at", "closed_at"], unique=False
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_outbox_purged_at_created_at", "outbox", ["purged_at", "created_at"], unique=False
    )
    op.create_index(
        "ix_outbox_chat_status",
        "outbox",
        ["chat_id", "channel", "status", "sent_at"],
        unique=False,
    )
    op.create_index("ix_report_events_created_at", "report_events", ["created_at"], unique=False)
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["contacts.id"],
            name=op.f("fk_access_log_actor_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_access_log_report_id_reports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_at", "access_log", ["at"], unique=False)
    op.create_index("ix_access_log_actor_id", "access_log", ["actor_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_access_log_actor_id", table_name="access_log")
    op.drop_index("ix_access_log_at", table_name="access_log")
    op.drop_table("access_log")
    op.drop_index("ix_report_events_created_at", table_name="report_events")
    op.drop_index("ix_outbox_chat_status", table_name="outbox")
    op.drop_index("ix_outbox_purged_at_created_at", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
    op.drop_index("ix_reports_personal_purged", table_name="reports")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("personal_purged_at")
