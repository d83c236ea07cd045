"""incremental record: scoreboard tallies, calibration bins, the desk's state in its own tables

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SUMS = ("calls", "hits", "misses", "inconclusive", "open", "abstentions", "withheld")
_FLOATS = ("squared", "log")
_RATED = ("rated",)
_RATED_FLOATS = ("rated_squared", "base_squared", "base_sum")


def upgrade() -> None:
    op.create_table(
        "score_tallies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("book", sa.String(length=16), nullable=False),
        sa.Column("cut", sa.String(length=255), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in _SUMS],
        *[sa.Column(name, sa.Float(), nullable=False) for name in _FLOATS],
        *[sa.Column(name, sa.Integer(), nullable=False) for name in _RATED],
        *[sa.Column(name, sa.Float(), nullable=False) for name in _RATED_FLOATS],
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_tallies")),
        sa.UniqueConstraint("book", "cut", name=op.f("uq_score_tallies_book")),
    )
    op.create_table(
        "score_cells",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("book", sa.String(length=16), nullable=False),
        sa.Column("cut", sa.String(length=255), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("stated", sa.Float(), nullable=False),
        sa.Column("hits", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_cells")),
        sa.UniqueConstraint("book", "cut", "bucket", name=op.f("uq_score_cells_book")),
    )
    op.create_table(
        "calibration_bins",
        sa.Column("bin", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("ups", sa.Integer(), nullable=False),
        sa.Column("base_logit_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bin", name=op.f("pk_calibration_bins")),
    )
    op.create_table(
        "desk_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_through", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_desk_state")),
    )
    op.create_table(
        "learned_rules",
        sa.Column("rule_id", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_learned_rules")),
    )
    op.create_table(
        "stories",
        sa.Column("story_key", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("story_key", name=op.f("pk_stories")),
    )
    op.create_table(
        "calibration_fits",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("fitted_as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_calibration_fits")),
    )
    # A database that already holds calls gets its aggregates built by the first reader
    # (shared.db.record.rebuild); an empty one starts with them built (empty).
    connection = op.get_bind()
    empty = all(
        connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
        for table in ("predictions", "abstentions", "forecasts")
    )
    desk = sa.table(
        "desk_state",
        sa.column("name", sa.String),
        sa.column("version", sa.Integer),
        sa.column("built", sa.Boolean),
    )
    op.bulk_insert(desk, [{"name": "desk", "version": 0, "built": empty}])
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lessons_recall",
            ["target", "regime", "r5_cell", "vol_cell", "settled_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.drop_index("ix_lessons_recall")
    for table in ("calibration_fits", "stories", "learned_rules", "desk_state",
                  "calibration_bins", "score_cells", "score_tallies"):
        op.drop_table(table)
