"""model reply cache and spend ledger

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_replies',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reply', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_model_replies'))
    )
    op.create_table('model_spend',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('request_key', sa.String(length=64), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('dollars', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_spend'))
    )
    with op.batch_alter_table('model_spend', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_spend_cycle_key'), ['cycle_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_spend_day'), ['day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_spend', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_spend_day'))
        batch_op.drop_index(batch_op.f('ix_model_spend_cycle_key'))

    op.drop_table('model_spend')
    op.drop_table('model_replies')
