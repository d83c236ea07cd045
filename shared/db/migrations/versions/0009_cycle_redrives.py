"""fleet: a stuck cycle's re-drives (how many, when last), so the sweep re-drives it a bounded
number of times and then closes it

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redrives", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("redriven_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.drop_column("redriven_at")
        batch_op.drop_column("redrives")
