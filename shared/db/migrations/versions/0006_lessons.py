"""memory: a lesson per settled call, recalled by later cycles

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lessons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cycle_key", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("r5_cell", sa.Integer(), nullable=True),
        sa.Column("vol_cell", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_key"], ["cycles.cycle_key"], name=op.f("fk_lessons_cycle_key_cycles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
        sa.UniqueConstraint("cycle_key", "source", name=op.f("uq_lessons_cycle_key")),
    )
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lessons_cycle_key"), ["cycle_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_lessons_settled_at"), ["settled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lessons_settled_at"))
        batch_op.drop_index(batch_op.f("ix_lessons_cycle_key"))
    op.drop_table("lessons")
