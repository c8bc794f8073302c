"""incident search and time filter use indexes: a trigram index on the searched text (PostgreSQL), opened_at

Why: the console searches a substring of title, summary, root cause, service and node. A B-tree
cannot serve ``%term%``; PostgreSQL's pg_trgm GIN index can, on the very expression
``services.incidents.service.search_text`` builds (the planner matches the expression, so the two
must stay identical). Where pg_trgm cannot be installed (a managed server without the right) the
index is skipped and search scans, as before. SQLite has no trigram index; at 10k incidents its
scan of one concatenated column is measured in bench/results/console.md.

Revision ID: 0080
Revises: 0041
Create Date: 2026-12-01 00:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0080'
down_revision = '0060'
branch_labels = None
depends_on = None

SEARCH_EXPR = ("(coalesce(title, '') || ' ' || coalesce(summary, '') || ' ' || coalesce(root_cause, '') || ' ' || "
               "coalesce(service, '') || ' ' || coalesce(node, ''))")


def _trigram_available(bind) -> bool:
    if bind.dialect.name != "postgresql":
        return False
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        return False
    try:
        with bind.begin_nested():  # a refused CREATE EXTENSION must not abort the migration's transaction
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_opened_at'), ['opened_at'], unique=False)
    bind = op.get_bind()
    if _trigram_available(bind):
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_incidents_search_trgm ON incidents USING gin ({SEARCH_EXPR} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_search_trgm")
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_opened_at'))
