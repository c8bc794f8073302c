"""change events and trace spans: deploys posted by CI/CD, a bounded window of OTLP spans per service

The integrator renumbers this at merge (it starts at 0030 on branch wt-fleet2).

Revision ID: 0030
Revises: 0022
Create Date: 2026-11-30 20:57:01.208578
"""

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('component', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('version', sa.String(length=200), nullable=True),
    sa.Column('environment', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_events')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_change_events_dedup_key'))
    )
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.create_index('ix_change_events_at_component', ['at', 'component'], unique=False)

    op.create_table('trace_spans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('span_id', sa.String(length=16), nullable=False),
    sa.Column('parent_span_id', sa.String(length=16), nullable=True),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=True),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.Integer(), nullable=False),
    sa.Column('peer', sa.String(length=200), nullable=True),
    sa.Column('start', sa.Float(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('error', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trace_spans')),
    sa.UniqueConstraint('trace_id', 'span_id', name='uq_trace_spans_trace_span')
    )
    with op.batch_alter_table('trace_spans', schema=None) as batch_op:
        batch_op.create_index('ix_trace_spans_service_start', ['service', 'start'], unique=False)
        batch_op.create_index('ix_trace_spans_start', ['start'], unique=False)
        batch_op.create_index('ix_trace_spans_trace_parent', ['trace_id', 'parent_span_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('trace_spans', schema=None) as batch_op:
        batch_op.drop_index('ix_trace_spans_trace_parent')
        batch_op.drop_index('ix_trace_spans_start')
        batch_op.drop_index('ix_trace_spans_service_start')

    op.drop_table('trace_spans')
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.drop_index('ix_change_events_at_component')

    op.drop_table('change_events')
