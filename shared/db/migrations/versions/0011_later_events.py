"""speed: the events after a moment found by index (a cycle behind the record subtracts them
from the aggregates instead of reading every stored call)

Revision ID: 0011
Revises: 0010
"""

from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = (
    ("predictions", "made_at"),
    ("predictions", "settled_at"),
    ("forecasts", "settled_at"),
    ("abstentions", "made_at"),
)


def upgrade() -> None:
    for table, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_{column}", [column], unique=False)


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_{column}")
