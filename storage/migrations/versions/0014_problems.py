"""problem-oriented policing, SARA (issue 20): problems, their reports, notes, actions, trail,
and the suggestions ktn-bot proposes

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("pillar", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=160), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("response_started_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("closing_note", sa.Text(), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        _fk("problems", "area_id", "areas", "RESTRICT"),
        _fk("problems", "created_by_id", "contacts", "SET NULL"),
        _fk("problems", "merged_into_id", "problems", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    op.create_index("ix_problems_area_stage", "problems", ["area_id", "stage"], unique=False)
    op.create_table(
        "problem_reports",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("added_at", TZ, nullable=False),
        _fk("problem_reports", "report_id", "reports", "CASCADE"),
        _fk("problem_reports", "problem_id", "problems", "CASCADE"),
        _fk("problem_reports", "added_by_id", "contacts", "SET NULL"),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_problem_reports")),
    )
    op.create_index(
        "ix_problem_reports_problem_id", "problem_reports", ["problem_id"], unique=False
    )
    op.create_table(
        "problem_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        _fk("problem_notes", "problem_id", "problems", "CASCADE"),
        _fk("problem_notes", "author_id", "contacts", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_notes")),
    )
    op.create_index(
        op.f("ix_problem_notes_problem_id"), "problem_notes", ["problem_id"], unique=False
    )
    op.create_table(
        "problem_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("remind_at", TZ, nullable=False),
        sa.Column("reminded_at", TZ, nullable=True),
        sa.Column("done_at", TZ, nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        _fk("problem_actions", "problem_id", "problems", "CASCADE"),
        _fk("problem_actions", "owner_id", "contacts", "SET NULL"),
        _fk("problem_actions", "done_by_id", "contacts", "SET NULL"),
        _fk("problem_actions", "created_by_id", "contacts", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_actions")),
    )
    op.create_index(
        op.f("ix_problem_actions_problem_id"), "problem_actions", ["problem_id"], unique=False
    )
    op.create_index(
        "ix_problem_actions_remind",
        "problem_actions",
        ["done_at", "reminded_at", "remind_at"],
        unique=False,
    )
    op.create_index("ix_problem_actions_owner_id", "problem_actions", ["owner_id"], unique=False)
    op.create_table(
        "problem_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        _fk("problem_events", "problem_id", "problems", "CASCADE"),
        _fk("problem_events", "actor_id", "contacts", "SET NULL"),
        _fk("problem_events", "report_id", "reports", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_events")),
    )
    op.create_index(
        op.f("ix_problem_events_problem_id"), "problem_events", ["problem_id"], unique=False
    )
    op.create_table(
        "problem_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("report_ids", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        _fk("problem_suggestions", "area_id", "areas", "CASCADE"),
        _fk("problem_suggestions", "decided_by_id", "contacts", "SET NULL"),
        _fk("problem_suggestions", "problem_id", "problems", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_suggestions")),
        sa.UniqueConstraint(
            "area_id",
            "category",
            "fingerprint",
            name=op.f("uq_problem_suggestions_area_id_category_fingerprint"),
        ),
    )
    op.create_index(
        "ix_problem_suggestions_area_state",
        "problem_suggestions",
        ["area_id", "state"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_problem_suggestions_area_state", table_name="problem_suggestions")
    op.drop_table("problem_suggestions")
    op.drop_index(op.f("ix_problem_events_problem_id"), table_name="problem_events")
    op.drop_table("problem_events")
    op.drop_index("ix_problem_actions_owner_id", table_name="problem_actions")
    op.drop_index("ix_problem_actions_remind", table_name="problem_actions")
    op.drop_index(op.f("ix_problem_actions_problem_id"), table_name="problem_actions")
    op.drop_table("problem_actions")
    op.drop_index(op.f("ix_problem_notes_problem_id"), table_name="problem_notes")
    op.drop_table("problem_notes")
    op.drop_index("ix_problem_reports_problem_id", table_name="problem_reports")
    op.drop_table("problem_reports")
    op.drop_index("ix_problems_area_stage", table_name="problems")
    op.drop_table("problems")
