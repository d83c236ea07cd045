"""The database models and the Alembic migrations describe the same schema."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import shared.brain.cache
import shared.brain.spending
import shared.db.aggregates
from shared.db.models import Base
from shared.db.session import MIGRATIONS, alembic_config, engine_for, migrate

# Every module that declares tables on Base must be imported before the comparison.
_TABLE_MODULES = (shared.brain.cache, shared.brain.spending, shared.db.aggregates)


def test_migrations_have_one_head() -> None:
    """The revisions form one chain: two engineers' migrations never fork the history."""
    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1


def test_models_match_the_migrated_schema(tmp_path: Path) -> None:
    """After upgrading to head, autogenerate finds no difference between database and models."""
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    migrate(url)
    assert alembic_config(url) is not None
    with engine_for(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
