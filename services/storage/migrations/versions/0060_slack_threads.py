"""slack threads: the parent message (channel, ts) of each incident's Slack thread

Revision ID: 0060
Revises: 0041
Create Date: 2026-12-01 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0060'
down_revision = '0050'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slack_threads',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=200), nullable=False),
        sa.Column('channel_id', sa.String(length=64), nullable=False),
        sa.Column('ts', sa.String(length=32), nullable=False),
        sa.Column('last_event_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_threads')),
        sa.UniqueConstraint('incident_id', 'channel', name=op.f('uq_slack_threads_incident_id')),
    )


def downgrade() -> None:
    op.drop_table('slack_threads')
