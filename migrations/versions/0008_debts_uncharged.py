"""debts: an index of what each operator is owed and not yet paid for

The settler sums an operator's uncharged debts at each settlement: one ticket may pay for
up to TICKET_MAX_EV_FEE_MULTIPLE times all of them, so small jobs are paid together.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_debts_uncharged', 'debts', ['payee'], unique=False,
                    postgresql_where=sa.text("status = 'owed' AND NOT charged"))


def downgrade() -> None:
    op.drop_index('ix_debts_uncharged', table_name='debts', postgresql_where=sa.text("status = 'owed' AND NOT charged"))
