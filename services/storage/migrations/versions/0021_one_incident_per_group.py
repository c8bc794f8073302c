"""one current incident per group and one firing alert per fingerprint, enforced by the database

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

OPEN = "('open', 'diagnosing', 'mitigating', 'awaiting_approval', 'verifying')"


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_group_key', sa.String(length=300), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_incidents_open_group_key'), ['open_group_key'])
    # the newest open incident of each group becomes its current one
    op.execute(f"""
        UPDATE incidents SET open_group_key = group_key
        WHERE id IN (SELECT max(id) FROM incidents WHERE status IN {OPEN} GROUP BY group_key)
    """)
    # duplicates made before the rule: older firing copies of a fingerprint are folded away as resolved
    op.execute("""
        UPDATE alerts SET status = 'resolved'
        WHERE status = 'firing' AND id NOT IN (SELECT max(id) FROM alerts WHERE status = 'firing' GROUP BY fingerprint)
    """)
    op.create_index('uq_alerts_firing_fingerprint', 'alerts', ['fingerprint'], unique=True,
                    sqlite_where=sa.text("status = 'firing'"), postgresql_where=sa.text("status = 'firing'"))


def downgrade() -> None:
    op.drop_index('uq_alerts_firing_fingerprint', table_name='alerts')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_incidents_open_group_key'), type_='unique')
        batch_op.drop_column('open_group_key')
