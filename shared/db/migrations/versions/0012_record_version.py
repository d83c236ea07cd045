"""speed: desk_state.record_version, bumped by every write of the record's aggregates, so that a
process may keep the aggregates it read while the version is unchanged

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from shared.db.aggregates import fresh_record_version


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("desk_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("record_version", sa.BigInteger(), server_default="0", nullable=False)
        )
    # From a random start: a copy kept of another database's aggregates is never taken for
    # this one's.
    op.execute(
        sa.text("UPDATE desk_state SET record_version = :start").bindparams(
            start=fresh_record_version()
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("desk_state", schema=None) as batch_op:
        batch_op.drop_column("record_version")
