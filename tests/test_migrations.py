"""The Alembic migrations build exactly the schema the models describe, and can be undone."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from engine.db import make_engine
from engine.models import Base
from webui.cli import ROOT


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    return config


def test_head_matches_models(db_url: str) -> None:
    command.upgrade(_config(db_url), "head")
    db = make_engine(db_url)
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    config = _config(db_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    db = make_engine(db_url)
    assert set(inspect(db).get_table_names()) <= {"alembic_version"}
    db.dispose()
    command.upgrade(config, "head")
    db = make_engine(db_url)
    assert "human_task" in inspect(db).get_table_names()
    db.dispose()
