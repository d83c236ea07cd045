"""learning: every cycle's pooled forecast, for the synthesis' recalibration

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_key", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("horizon_hours", sa.Integer(), nullable=False),
        sa.Column("reference_price", sa.Float(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("matures_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("raw_probability_up", sa.Float(), nullable=False),
        sa.Column("probability_up", sa.Float(), nullable=True),
        sa.Column("base_rate_up", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("went_up", sa.Boolean(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settle_price", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cycle_key"], ["cycles.cycle_key"], name=op.f("fk_forecasts_cycle_key_cycles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
        sa.UniqueConstraint("cycle_key", name=op.f("uq_forecasts_cycle_key")),
    )
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forecasts_matures_at"), ["matures_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_forecasts_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forecasts_status"))
        batch_op.drop_index(batch_op.f("ix_forecasts_matures_at"))
    op.drop_table("forecasts")
