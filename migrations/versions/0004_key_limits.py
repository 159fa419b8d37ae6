"""per-key rate limit and daily job quota

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))
    op.add_column('api_keys', sa.Column('daily_job_quota', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('api_keys', 'daily_job_quota')
    op.drop_column('api_keys', 'rate_limit_per_minute')
