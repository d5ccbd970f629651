"""the desk's free-text search over an index (issue 19): SQLite FTS5, PostgreSQL pg_trgm

SQLite: ``report_search``, an FTS5 table over the reports' ticket, description and address
(external content: the words are indexed, the text stays in ``reports``), kept in step by three
triggers and filled from the existing reports here. PostgreSQL: a trigram GIN index on the
same three texts, so ``ILIKE '%word%'`` reads the index instead of every row; when the
``pg_trgm`` extension cannot be created (no rights), the migration still succeeds without the
index and the desk's search reads every row as before (storage.desk logs it once).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

# What is searched: the same three columns as storage.desk.conditions, never a reporter's name or
# number. The PostgreSQL expression must stay identical to storage.desk.SEARCH_TEXT_SQL (the
# planner uses the index only for the very same expression).
_PG_TEXT = "(ticket || ' ' || description || ' ' || coalesce(address_text, ''))"

_SQLITE_UP = [
    """CREATE VIRTUAL TABLE report_search USING fts5(
        ticket, description, address_text, content='reports', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    # its words, for spelling a typed prefix out into whole words (storage.desk.plan_search)
    "CREATE VIRTUAL TABLE report_search_terms USING fts5vocab(report_search, 'row')",
    # external content: the index is told the old text to remove and the new text to add
    """CREATE TRIGGER reports_search_insert AFTER INSERT ON reports BEGIN
        INSERT INTO report_search(rowid, ticket, description, address_text)
        VALUES (new.id, new.ticket, new.description, new.address_text);
    END""",
    """CREATE TRIGGER reports_search_delete AFTER DELETE ON reports BEGIN
        INSERT INTO report_search(report_search, rowid, ticket, description, address_text)
        VALUES ('delete', old.id, old.ticket, old.description, old.address_text);
    END""",
    """CREATE TRIGGER reports_search_update
    AFTER UPDATE OF ticket, description, address_text ON reports BEGIN
        INSERT INTO report_search(report_search, rowid, ticket, description, address_text)
        VALUES ('delete', old.id, old.ticket, old.description, old.address_text);
        INSERT INTO report_search(rowid, ticket, description, address_text)
        VALUES (new.id, new.ticket, new.description, new.address_text);
    END""",
    # the reports already there, then one merged index (faster to read than many segments)
    "INSERT INTO report_search(report_search) VALUES ('rebuild')",
    "INSERT INTO report_search(report_search) VALUES ('optimize')",
]


def _pg_trigram_available(bind: sa.engine.Connection) -> bool:
    """Create pg_trgm if it is missing; False when this role may not (a savepoint keeps the
    migration's transaction usable after the refusal)."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning(
            "pg_trgm unavailable (%s): the desk's free-text search reads every row",
            type(error).__name__,
        )
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
    elif bind.dialect.name == "postgresql" and _pg_trigram_available(bind):
        op.execute(
            f"CREATE INDEX ix_reports_search_trgm ON reports USING gin ({_PG_TEXT} gin_trgm_ops)"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS reports_search_{name}")
        op.execute("DROP TABLE IF EXISTS report_search_terms")
        op.execute("DROP TABLE IF EXISTS report_search")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_reports_search_trgm")  # pg_trgm stays: shared
