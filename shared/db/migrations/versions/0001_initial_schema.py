"""initial schema

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cycles',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('data_dir', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('snapshot', sa.JSON(), nullable=True),
    sa.Column('features', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cycles')),
    sa.UniqueConstraint('cycle_key', name=op.f('uq_cycles_cycle_key'))
    )
    op.create_table('notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_posted_at'), ['posted_at'], unique=False)

    op.create_table('abstentions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cycle_key'], ['cycles.cycle_key'], name=op.f('fk_abstentions_cycle_key_cycles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_abstentions')),
    sa.UniqueConstraint('cycle_key', 'source', name=op.f('uq_abstentions_cycle_key'))
    )
    with op.batch_alter_table('abstentions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_abstentions_cycle_key'), ['cycle_key'], unique=False)

    op.create_table('dispatches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('cycle_number', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body_md', sa.Text(), nullable=False),
    sa.Column('debate', sa.String(length=32), nullable=False),
    sa.Column('conviction', sa.Float(), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('abstained', sa.Boolean(), nullable=False),
    sa.Column('abstention', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_key'], ['cycles.cycle_key'], name=op.f('fk_dispatches_cycle_key_cycles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatches')),
    sa.UniqueConstraint('cycle_key', name=op.f('uq_dispatches_cycle_key'))
    )
    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispatches_as_of'), ['as_of'], unique=False)

    op.create_table('mind_outputs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('mind', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stance', sa.String(length=16), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_key'], ['cycles.cycle_key'], name=op.f('fk_mind_outputs_cycle_key_cycles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mind_outputs')),
    sa.UniqueConstraint('cycle_key', 'mind', name=op.f('uq_mind_outputs_cycle_key'))
    )
    with op.batch_alter_table('mind_outputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mind_outputs_cycle_key'), ['cycle_key'], unique=False)

    op.create_table('predictions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cycle_key', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('horizon_hours', sa.Integer(), nullable=False),
    sa.Column('reference_price', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('matures_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('regime', sa.String(length=16), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('asset_class', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settle_price', sa.Float(), nullable=True),
    sa.Column('realized_move_pct', sa.Float(), nullable=True),
    sa.Column('settle_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['cycle_key'], ['cycles.cycle_key'], name=op.f('fk_predictions_cycle_key_cycles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    sa.UniqueConstraint('cycle_key', 'source', name=op.f('uq_predictions_cycle_key'))
    )
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictions_cycle_key'), ['cycle_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictions_matures_at'), ['matures_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictions_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictions_status'))
        batch_op.drop_index(batch_op.f('ix_predictions_matures_at'))
        batch_op.drop_index(batch_op.f('ix_predictions_cycle_key'))

    op.drop_table('predictions')
    with op.batch_alter_table('mind_outputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mind_outputs_cycle_key'))

    op.drop_table('mind_outputs')
    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispatches_as_of'))

    op.drop_table('dispatches')
    with op.batch_alter_table('abstentions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_abstentions_cycle_key'))

    op.drop_table('abstentions')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notes_posted_at'))

    op.drop_table('notes')
    op.drop_table('cycles')
