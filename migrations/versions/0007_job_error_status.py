"""jobs.error_status: the status a failure the request caused is answered with

A model can refuse a request only it can judge (a text with nothing its vocabulary can
speak); the job fails, and a synchronous client gets that 4xx rather than a 500.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('error_status', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'error_status')
