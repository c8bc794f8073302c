"""shared state: mitigation events, the causal model registry and beat schedule state

State that more than one process reads moves from local files (./var) into the database.
Existing CSV events can be loaded with `aiops causal import-events FILE`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:50:29.038300
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('beat_schedule_state',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=200), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('total_run_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_beat_schedule_state'))
    )
    op.create_table('causal_models',
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('artifact', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_causal_models')),
    sa.UniqueConstraint('version', name=op.f('uq_causal_models_version'))
    )
    op.create_table('mitigation_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('node_id', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('row', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mitigation_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_mitigation_events_event_id'))
    )
    with op.batch_alter_table('mitigation_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mitigation_events_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mitigation_events_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('causal_model_pointers',
    sa.Column('slot', sa.String(length=32), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['version'], ['causal_models.version'], name=op.f('fk_causal_model_pointers_version_causal_models')),
    sa.PrimaryKeyConstraint('slot', name=op.f('pk_causal_model_pointers'))
    )


def downgrade() -> None:
    op.drop_table('causal_model_pointers')
    with op.batch_alter_table('mitigation_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mitigation_events_occurred_at'))
        batch_op.drop_index(batch_op.f('ix_mitigation_events_node_id'))

    op.drop_table('mitigation_events')
    op.drop_table('causal_models')
    op.drop_table('beat_schedule_state')
