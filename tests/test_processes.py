"""Every scenario of the office's processes (processes/*.scenarios.yaml) holds, as `duban check`
would say — on SQLite, and on PostgreSQL when DATABASE_URL points there."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine import Engine, scenarios

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
ALL = scenarios.discover(PROCESSES)


@pytest.fixture(scope="module")
def template() -> Iterator[scenarios.TemplateDatabase]:
    county = yaml.safe_load((PROCESSES / "county.yaml").read_text(encoding="utf-8"))
    url = os.environ.get("DATABASE_URL", "")
    database = scenarios.TemplateDatabase(
        url if url.startswith("postgres") else None,
        scenarios.prepare_with(PROCESSES, county, "check"),
        Engine,
    )
    yield database
    database.close()


@pytest.mark.parametrize("scenario", ALL, ids=[s.label for s in ALL])
def test_scenario(scenario: scenarios.Scenario, template: scenarios.TemplateDatabase) -> None:
    with template.copy() as url:
        outcome = scenarios.run(scenario, url, Engine)
    assert outcome.ok, scenarios.report_line(outcome)
