"""the desk: sign-in links and browser sessions, "via" on report events, indexes for its lists

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The desk's list (newest first), its officer filter and its numbers' time ranges.
INDEXES = (
    (
        "ix_reports_desk_list",
        [
            "created_at",
            "id",
            "area_id",
            "status",
            "category",
            "urgent",
            "assignee_id",
            "latitude",
            "longitude",
        ],
    ),
    ("ix_reports_assignee_created", ["assignee_id", "created_at"]),
    ("ix_reports_claimed_at", ["claimed_at", "area_id", "created_at", "assignee_id"]),
    ("ix_reports_closed_at", ["closed_at", "status", "area_id", "created_at", "assignee_id"]),
    ("ix_reports_escalated_at", ["escalated_at", "area_id"]),
    ("ix_reports_status_escalate_at", ["status", "escalate_at", "area_id"]),
)


def upgrade() -> None:
    op.create_table(
        "desk_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_desk_logins_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_logins")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_desk_logins_token_hash")),
    )
    op.create_index("ix_desk_logins_contact_id", "desk_logins", ["contact_id"], unique=False)
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_desk_sessions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_desk_sessions_token_hash")),
    )
    op.create_index("ix_desk_sessions_contact_id", "desk_sessions", ["contact_id"], unique=False)
    with op.batch_alter_table("report_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(length=16), nullable=True))
    for name, columns in INDEXES:
        op.create_index(name, "reports", columns, unique=False)


def downgrade() -> None:
    for name, _columns in INDEXES:
        op.drop_index(name, table_name="reports")
    with op.batch_alter_table("report_events", schema=None) as batch_op:
        batch_op.drop_column("via")
    op.drop_index("ix_desk_sessions_contact_id", table_name="desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_index("ix_desk_logins_contact_id", table_name="desk_logins")
    op.drop_table("desk_logins")
