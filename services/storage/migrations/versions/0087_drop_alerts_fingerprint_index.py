"""drop ix_alerts_fingerprint: its one column leads ix_alerts_fingerprint_status, which serves the same lookups

Why: every stored alert updated both, and ingest's per-row cost on SQLite is index maintenance
(six indexes on alerts); the firing lookups use the partial unique index uq_alerts_firing_fingerprint.

Revision ID: 0087
Revises: 0086
Create Date: 2026-12-01 14:40:00
"""

from alembic import op

revision = '0087'
down_revision = '0086'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_fingerprint')


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_fingerprint', ['fingerprint'], unique=False)
