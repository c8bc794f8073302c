"""console sessions: the console's cookie holds a random session id, the database its hash and token

Why: the cookie held the API token itself, so a copied cookie was a bearer token for the API until
the token was revoked. A session row (hashed id, expiry, ended at logout) lives in the database so
every API process sees the same sessions.

Revision ID: 0085
Revises: 0080
Create Date: 2026-12-01 03:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0085'
down_revision = '0080'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_console_sessions_token_id_api_tokens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
        sa.UniqueConstraint('session_hash', name=op.f('uq_console_sessions_session_hash')),
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_token_id'), ['token_id'], unique=False)


def downgrade() -> None:
    op.drop_table('console_sessions')
