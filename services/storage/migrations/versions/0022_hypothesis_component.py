"""a hypothesis names its component: the same fault on two components is two hypotheses

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hypotheses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('component', sa.String(length=300), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('component_kind', sa.String(length=32), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_hypotheses_incident_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_hypotheses_incident_id_component'),
                                          ['incident_id', 'component', 'root_cause'])


def downgrade() -> None:
    # rows that differ only by component cannot live under the old rule: keep the best-ranked one
    op.execute("""
        DELETE FROM hypotheses WHERE id NOT IN (
            SELECT min_id FROM (SELECT min(id) AS min_id FROM hypotheses GROUP BY incident_id, root_cause) AS keep)
    """)
    with op.batch_alter_table('hypotheses', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_hypotheses_incident_id_component'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_hypotheses_incident_id'), ['incident_id', 'root_cause'])
        batch_op.drop_column('component_kind')
        batch_op.drop_column('component')
