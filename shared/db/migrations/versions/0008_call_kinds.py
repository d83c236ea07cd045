"""calls: kinds (direction, threshold, range), the naive baseline, and a call's own identity

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="direction", nullable=False)
        )
        batch_op.add_column(sa.Column("range_pct", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("naive_probability", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("call_key", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_predictions_call_key"), ["call_key"])


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_predictions_call_key"), type_="unique")
        batch_op.drop_column("call_key")
        batch_op.drop_column("naive_probability")
        batch_op.drop_column("range_pct")
        batch_op.drop_column("kind")
