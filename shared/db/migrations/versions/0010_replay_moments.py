"""speed: replay cycles numbered as they are claimed (replay_moments), and the pooled forecast
of a market moment found by index

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replay_moments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("data_dir", sa.Text(), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_moments")),
    )
    with op.batch_alter_table("replay_moments", schema=None) as batch_op:
        batch_op.create_index("ix_replay_moments_moment", ["data_dir", "as_of"], unique=False)
    # The cycles already stored: each replay's distinct moments, numbered in as_of order
    # (shared.db.moments.renumber does the same for a database written around the ORM).
    op.execute(
        "INSERT INTO replay_moments (data_dir, as_of, number) "
        "SELECT DISTINCT data_dir, as_of, "
        "dense_rank() OVER (PARTITION BY data_dir ORDER BY as_of) "
        "FROM cycles WHERE mode = 'replay'"
    )
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forecasts_moment", ["target", "horizon_hours", "made_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("forecasts", schema=None) as batch_op:
        batch_op.drop_index("ix_forecasts_moment")
    with op.batch_alter_table("replay_moments", schema=None) as batch_op:
        batch_op.drop_index("ix_replay_moments_moment")
    op.drop_table("replay_moments")
