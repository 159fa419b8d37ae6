"""payments: settlements, tickets, redemptions, deposits, credits, chain cursors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:29:23.584767
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_cursors',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('deposits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tx_hash', 'log_index')
    )
    op.create_index(op.f('ix_deposits_sender'), 'deposits', ['sender'], unique=False)
    op.create_table('payment_credits',
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('credit', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.PrimaryKeyConstraint('sender', 'recipient')
    )
    op.create_table('settlements',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('fee', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('ev', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('credit_after', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_index(op.f('ix_settlements_recipient'), 'settlements', ['recipient'], unique=False)
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('ticket_hash', sa.String(length=66), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('sender_nonce', sa.BigInteger(), nullable=False),
    sa.Column('recipient_rand_hash', sa.String(length=66), nullable=False),
    sa.Column('face_value', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('win_prob', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('ev', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('sig', sa.String(length=132), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rejection', sa.String(length=64), nullable=True),
    sa.Column('winning', sa.Boolean(), nullable=True),
    sa.Column('redemption_tx', sa.String(length=66), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['settlements.job_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_hash')
    )
    op.create_index(op.f('ix_tickets_job_id'), 'tickets', ['job_id'], unique=False)
    op.create_index('ix_tickets_recipient_rand_hash', 'tickets', ['recipient', 'recipient_rand_hash'], unique=False)
    op.create_index(op.f('ix_tickets_status'), 'tickets', ['status'], unique=False)
    op.create_table('redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_hash', sa.String(length=66), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('face_value', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('sender_nonce', sa.Numeric(precision=78, scale=0), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_hash')
    )
    op.create_index(op.f('ix_redemptions_recipient'), 'redemptions', ['recipient'], unique=False)
    op.create_index(op.f('ix_redemptions_ticket_id'), 'redemptions', ['ticket_id'], unique=False)
    op.create_index(op.f('ix_redemptions_tx_hash'), 'redemptions', ['tx_hash'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_redemptions_tx_hash'), table_name='redemptions')
    op.drop_index(op.f('ix_redemptions_ticket_id'), table_name='redemptions')
    op.drop_index(op.f('ix_redemptions_recipient'), table_name='redemptions')
    op.drop_table('redemptions')
    op.drop_index(op.f('ix_tickets_status'), table_name='tickets')
    op.drop_index('ix_tickets_recipient_rand_hash', table_name='tickets')
    op.drop_index(op.f('ix_tickets_job_id'), table_name='tickets')
    op.drop_table('tickets')
    op.drop_index(op.f('ix_settlements_recipient'), table_name='settlements')
    op.drop_table('settlements')
    op.drop_table('payment_credits')
    op.drop_index(op.f('ix_deposits_sender'), table_name='deposits')
    op.drop_table('deposits')
    op.drop_table('chain_cursors')
