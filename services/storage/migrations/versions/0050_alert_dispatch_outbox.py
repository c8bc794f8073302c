"""alerts are the dispatch outbox: a claim lease for the dispatcher and a partial index of undispatched rows

Revision ID: 0050
Revises: 0041
Create Date: 2026-12-01 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0050'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatch_claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_alerts_undispatched', 'alerts', ['id'], unique=False,
                    sqlite_where=sa.text('dispatched = 0'), postgresql_where=sa.text('dispatched = false'))


def downgrade() -> None:
    op.drop_index('ix_alerts_undispatched', table_name='alerts')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('dispatch_claimed_until')
