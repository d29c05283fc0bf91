"""The OpenAPI document matches the API's routes exactly, and schemathesis, fuzzing every
documented operation as a signed-in user of the demo county, finds no 5xx and no response that
breaks the document."""

import re
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from engine import Engine, FixedClock
from tests.conftest import START, fresh_database
from webui import create_app
from webui.api.openapi import document
from webui.demo import load_demo

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"get", "post", "put", "patch", "delete"}


def _resolve(item: dict) -> dict:
    ref = item.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return document()["components"]["pathItems"][name]
    return item


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in _resolve(item)
        if method in METHODS
    }


def _routed(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        routes |= {(m, path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(tmp_path) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    routed, documented = _routed(app), _documented()
    assert routed - documented == set(), "routes missing from openapi"
    assert documented - routed == set(), "documented operations that do not exist"


def test_every_operation_names_its_refusals() -> None:
    for path, item in document()["paths"].items():
        for method, operation in _resolve(item).items():
            if method not in METHODS or operation.get("security") == []:
                continue
            assert "401" in operation["responses"], f"{method} {path} lacks 401"


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    with fresh_database(folder) as url:
        engine = Engine(url, clock=FixedClock(START))
        engine.create_schema()
        for _line in load_demo(engine, ROOT / "processes", "demo"):
            pass
        app = create_app({"TESTING": True, "SECRET_KEY": "fuzz"}, engine=engine)
        yield app
        engine.db.dispose()


@pytest.fixture(scope="module")
def staff_token(demo_app) -> str:
    response = demo_app.test_client().post(
        "/api/v1/auth/token", json={"username": "staff", "password": "demo"}
    )
    return response.get_json()["token"]


SCHEMA = schemathesis.openapi.from_dict(document())
# Texts never hold NUL: every request is refused 400 at the edge if one does (webui/inputs.py,
# stated in the document's description), so schema-valid data means no NUL.
SCHEMA.config.generation.update(allow_x00=False)
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}
SKIPPED = {"DELETE /auth/token"}  # would sign the fuzzing user out
# Ids whose meaning depends on another field (instance or task ids, by `action`): a
# schema-valid id can still be wrong, and is refused with 422 before anything runs.
BUSINESS_RULES = {"POST /console/bulk"}


@pytest.mark.parametrize("label", sorted(set(OPERATIONS) - SKIPPED))
def test_fuzzed_requests_get_documented_answers(label, demo_app, staff_token) -> None:
    SCHEMA.app = demo_app
    operation = OPERATIONS[label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def answer_as_documented(case) -> None:
        case.call_and_validate(
            app=demo_app,
            headers={"Authorization": f"Bearer {staff_token}"},
            excluded_checks=[positive_data_acceptance] if label in BUSINESS_RULES else [],
        )

    answer_as_documented()
