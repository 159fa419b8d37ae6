"""scheduling: priority, deadline, idempotency, webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:25:15.830647
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('priority', sa.String(length=8), nullable=False,
                                    server_default='normal'))
    op.add_column('jobs', sa.Column('deadline', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('idempotency_key', sa.String(length=200), nullable=True))
    op.add_column('jobs', sa.Column('request_hash', sa.String(length=64), nullable=True))
    op.add_column('jobs', sa.Column('webhook_url', sa.Text(), nullable=True))
    op.add_column('jobs', sa.Column('webhook_events', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    op.add_column('jobs', sa.Column('ran_on', sa.Text(), nullable=True))
    op.create_index('ix_jobs_key_status', 'jobs', ['api_key_id', 'status'], unique=False)
    op.create_unique_constraint('uq_jobs_idempotency', 'jobs', ['api_key_id', 'idempotency_key'])


def downgrade() -> None:
    op.drop_constraint('uq_jobs_idempotency', 'jobs', type_='unique')
    op.drop_index('ix_jobs_key_status', table_name='jobs')
    op.drop_column('jobs', 'ran_on')
    op.drop_column('jobs', 'webhook_events')
    op.drop_column('jobs', 'webhook_url')
    op.drop_column('jobs', 'request_hash')
    op.drop_column('jobs', 'idempotency_key')
    op.drop_column('jobs', 'deadline')
    op.drop_column('jobs', 'priority')
