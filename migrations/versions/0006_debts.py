"""debts: what each succeeded job owes, written with its success; params by rand hash;
refusals of params; block hashes the watcher read up to (reorgs)

Settlements become debts: each one paid, its params kept by their rand hash, and the
tickets keyed to the debt. Succeeded jobs that were never settled before this migration
have no debt (who was owed was not recorded).

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('debts',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('payee', sa.String(length=42), nullable=False),
    sa.Column('fee', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('charged', sa.Boolean(), nullable=False),
    sa.Column('params', JSON, nullable=True),
    sa.Column('refusal', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('owed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_index(op.f('ix_debts_payee'), 'debts', ['payee'], unique=False)
    op.create_index('ix_debts_unpaid', 'debts', ['next_attempt_at', 'owed_at'], unique=False,
                    postgresql_where=sa.text("status <> 'paid'"))
    op.create_table('ticket_params',
    sa.Column('recipient_rand_hash', sa.String(length=66), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('expiration_block', sa.BigInteger(), nullable=False),
    sa.Column('creation_round', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['debts.job_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('recipient_rand_hash')
    )
    op.create_index(op.f('ix_ticket_params_job_id'), 'ticket_params', ['job_id'], unique=False)
    op.create_table('ticket_refusals',
    sa.Column('payee', sa.String(length=42), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('payee', 'reason')
    )
    op.create_table('chain_blocks',
    sa.Column('cursor', sa.String(length=128), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('cursor', 'number')
    )
    op.execute("""
        INSERT INTO debts (job_id, payee, fee, status, charged, attempts, next_attempt_at, owed_at, settled_at)
        SELECT job_id, recipient, fee, 'paid', true, 0, created_at, created_at, created_at FROM settlements
    """)
    op.execute("""
        INSERT INTO ticket_params (recipient_rand_hash, job_id, recipient, params, expiration_block,
                                   creation_round, created_at)
        SELECT params->>'recipient_rand_hash', job_id, recipient, params,
               (params->>'expiration_block')::bigint, coalesce((params->>'creation_round')::bigint, 0),
               created_at
        FROM settlements ON CONFLICT DO NOTHING
    """)
    op.drop_constraint('tickets_job_id_fkey', 'tickets', type_='foreignkey')
    op.create_foreign_key('tickets_job_id_fkey', 'tickets', 'debts', ['job_id'], ['job_id'], ondelete='CASCADE')
    op.drop_index(op.f('ix_settlements_recipient'), table_name='settlements')
    op.drop_table('settlements')


def downgrade() -> None:
    op.create_table('settlements',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('recipient', sa.String(length=42), nullable=False),
    sa.Column('fee', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('ev', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('credit_after', sa.Numeric(precision=96, scale=18), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_index(op.f('ix_settlements_recipient'), 'settlements', ['recipient'], unique=False)
    # Each debt that has tickets, with its first params; the credit after is not known.
    op.execute("""
        INSERT INTO settlements (job_id, sender, recipient, fee, ev, credit_after, params, created_at)
        SELECT d.job_id, t.sender, d.payee, d.fee, sum(t.ev), 0,
               (SELECT p.params FROM ticket_params p WHERE p.job_id = d.job_id ORDER BY p.created_at LIMIT 1),
               d.owed_at
        FROM debts d JOIN tickets t ON t.job_id = d.job_id
        GROUP BY d.job_id, t.sender, d.payee, d.fee, d.owed_at
    """)
    op.execute("DELETE FROM tickets WHERE job_id NOT IN (SELECT job_id FROM settlements)")
    op.drop_constraint('tickets_job_id_fkey', 'tickets', type_='foreignkey')
    op.create_foreign_key('tickets_job_id_fkey', 'tickets', 'settlements', ['job_id'], ['job_id'],
                          ondelete='CASCADE')
    op.drop_table('chain_blocks')
    op.drop_table('ticket_refusals')
    op.drop_index(op.f('ix_ticket_params_job_id'), table_name='ticket_params')
    op.drop_table('ticket_params')
    op.drop_index('ix_debts_unpaid', table_name='debts')
    op.drop_index(op.f('ix_debts_payee'), table_name='debts')
    op.drop_table('debts')
