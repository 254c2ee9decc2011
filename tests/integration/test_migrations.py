"""Migrations: `upgrade head` yields exactly the models' schema; `downgrade base` empties it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import migrations
from migrations import render_item
from shared.database import normalize_url
from shared.models import Base


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    create: Callable[..., str] = request.getfixturevalue("create_pg_database")
    return create(empty=True)


def _diff(url: str) -> list[object]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "render_item": render_item}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_head_on_an_empty_database_yields_exactly_the_models_schema(
    empty_db_url: str,
) -> None:
    migrations.upgrade(empty_db_url)
    assert _diff(empty_db_url) == []
    assert _tables(empty_db_url) == {*Base.metadata.tables, "alembic_version"}


def test_downgrade_base_removes_every_table_and_upgrade_works_again(empty_db_url: str) -> None:
    migrations.upgrade(empty_db_url)
    migrations.downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) <= {"alembic_version"}
    migrations.upgrade(empty_db_url)
    assert _diff(empty_db_url) == []


def test_the_migration_history_has_a_single_head() -> None:
    assert len(migrations.current_heads()) == 1
