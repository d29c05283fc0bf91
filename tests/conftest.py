"""Shared fixtures.

A fresh database per test (a SQLite file, or PostgreSQL when DATABASE_URL says so; with the
schema already in it when the test uses `engine`), an engine on a fixed clock, and a helper to
deploy inline BPMN.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import office  # noqa: F401 — registers the office's service-task handlers
from engine import Engine, FixedClock, scenarios
from engine.workdays import BEIJING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PG_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = PG_URL.startswith("postgres")
START = datetime(2026, 12, 1, 9, 0, tzinfo=BEIJING)  # a Tuesday, a working day


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives Chromium (uses the `browser` fixture, directly or through another) is
    marked `browser`, so `make check` can leave it out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """A database nobody else uses: a new SQLite file, or a new PostgreSQL database."""
    if not ON_POSTGRES:
        yield f"sqlite:///{folder / 'duban.db'}"
        return
    base = make_url(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        if PG_URL.startswith("postgresql://")
        else PG_URL
    )
    name = f"duban_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def schema_template() -> Iterator[scenarios.TemplateDatabase]:
    """Every table, created once per worker: an `engine` test starts on a copy of it (one file
    copy, or one CREATE DATABASE … TEMPLATE) instead of creating the schema itself."""
    template = scenarios.TemplateDatabase(PG_URL if ON_POSTGRES else None, _nothing, Engine)
    yield template
    template.close()


def _nothing(_engine: object) -> None:
    """The schema template holds the tables and nothing else."""


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's own database: empty (for `duban init`, migrations), or, when the test uses
    the `engine` fixture, a copy of the schema template, which `engine` then opens."""
    if "engine" in request.fixturenames:
        template: scenarios.TemplateDatabase = request.getfixturevalue("schema_template")
        with template.copy() as url:
            yield url
        return
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def engine(db_url: str, clock: FixedClock) -> Iterator[Engine]:
    eng = Engine(db_url, clock=clock)
    eng.create_schema()  # only checks, when db_url copied the template (a module may override it)
    yield eng
    eng.db.dispose()


@pytest.fixture
def deploy(engine: Engine, tmp_path: Path):
    """deploy({"name.bpmn": xml, "form.json": "{...}"}) → the deploy results."""
    counter = iter(range(1000))

    def _deploy(files: dict[str, str], by: str | None = None):
        folder = tmp_path / f"bundle{next(counter)}"
        folder.mkdir()
        for name, content in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        return engine.deploy(folder, by=by)

    return _deploy


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    """Debian's Chromium driven by Playwright, one per browser-test module (tests/browser.py)."""
    from tests.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def county_template() -> Iterator[scenarios.TemplateDatabase]:
    """The demo county's directory and every process of processes/, prepared once per worker
    (hashing 75 passwords and parsing every process costs seconds)."""
    from tests.county import load_county

    template = scenarios.TemplateDatabase(PG_URL if ON_POSTGRES else None, load_county, Engine)
    yield template
    template.close()


@pytest.fixture
def county_engine(
    county_template: scenarios.TemplateDatabase, clock: FixedClock
) -> Iterator[Engine]:
    """An engine on a fresh copy of the demo county (password `demo`), no instances yet."""
    with county_template.copy() as url:
        eng = Engine(url, clock=clock)
        yield eng
        eng.db.dispose()
