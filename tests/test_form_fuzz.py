"""Bad submissions against every form of processes/: undeclared keys, names of script helpers,
wrong types and huge values are refused (422) every time, and nothing is written.

Two levels: every form file through the engine's acceptance rule (hypothesis draws the bad
part), and every open step of the demo county in flight through the JSON API, after which the
database must be exactly as before."""

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine import Engine, InvalidData, forms
from engine.models import Event, HumanTask, HumanTaskCandidate, ProcessInstance, User
from tests.county import token
from webui import create_app
from webui.demo import _in_flight

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
FORM_FILES = sorted(PROCESSES.glob("forms/**/*.json"))
TYPE_MISFITS = {
    "string": [12, True, ["a"], {"a": 1}],
    "integer": ["十", 1.5, [1], {"n": 1}],
    "number": ["十", [1.5], True],
    "boolean": ["是", 1, []],
    "array": ["a", 1, {"a": 1}],
    "object": ["a", 1, [1]],
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _writable(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: p for k, p in forms.declared_fields(schema).items() if not p.get("readOnly")}


def _typed(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, prop["type"])
        for name, prop in _writable(schema).items()
        if isinstance(prop.get("type"), str) and prop["type"] in TYPE_MISFITS
    ]


def bad_submissions(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A submission with at least one thing wrong, and perhaps a few harmless extras."""
    declared = set(forms.declared_fields(schema))
    writable = sorted(_writable(schema))
    undeclared = st.text(min_size=1, max_size=30).filter(lambda k: k not in declared)
    wrong: list[st.SearchStrategy[dict[str, Any]]] = [
        st.dictionaries(undeclared, st.integers() | st.text(max_size=5), min_size=1, max_size=3),
        st.sampled_from(sorted(forms.RESERVED_NAMES)).map(lambda k: {k: "2099-01-01"}),
    ]
    typed = _typed(schema)
    if typed:
        wrong.append(
            st.sampled_from(typed).flatmap(
                lambda nt: st.sampled_from(TYPE_MISFITS[nt[1]]).map(lambda v: {nt[0]: v})
            )
        )
    if writable:
        huge = st.sampled_from(
            [
                "长" * (forms.MAX_TEXT + 1),
                2**60,
                -(2**60),
                math.nan,
                math.inf,
                _nested(forms.MAX_DEPTH + 2),
                list(range(forms.MAX_ITEMS + 1)),
                "a\x00b",
                "\ud800",
            ]
        )
        wrong.append(st.tuples(st.sampled_from(writable), huge).map(lambda kv: {kv[0]: kv[1]}))
    return st.one_of(wrong)


def _nested(depth: int) -> Any:
    value: Any = "底"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: str(p.relative_to(PROCESSES)))
def test_every_form_refuses_every_bad_submission(path: Path) -> None:
    schema = _load(path)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bad_submissions(schema))
    def refused(submission: dict[str, Any]) -> None:
        with pytest.raises(InvalidData) as caught:
            forms.accept(schema, submission, stored={})
        assert caught.value.errors and caught.value.message

    refused()


# ------------------------------------------------------------------ through the API
def _fingerprint(engine: Engine) -> tuple[Any, ...]:
    """Everything a refused submission could have changed."""
    with engine.read_session() as session:
        instances = session.execute(
            select(
                ProcessInstance.id,
                ProcessInstance.revision,
                ProcessInstance.status,
                ProcessInstance.state,
            ).order_by(ProcessInstance.id)
        ).all()
        tasks = session.execute(
            select(HumanTask.id, HumanTask.state, HumanTask.assignee_id).order_by(HumanTask.id)
        ).all()
        events = session.scalar(select(func.count()).select_from(Event))
    digest = hashlib.sha256(repr(instances).encode()).hexdigest()
    return digest, tuple(tasks), events


def _someone_who_may_act(engine: Engine, row: HumanTask) -> str:
    with engine.read_session() as session:
        user_id = row.assignee_id or session.scalar(
            select(HumanTaskCandidate.user_id).where(HumanTaskCandidate.task_id == row.id)
        )
        return session.get(User, user_id).username


def _mutations(schema: dict[str, Any] | None, rng: random.Random) -> list[dict[str, Any]]:
    if schema is None:
        return [{"anything": 1}, {"now": "x"}]
    declared = set(forms.declared_fields(schema))
    writable = sorted(_writable(schema))
    found = [
        {f"unknown_{rng.randrange(10**6)}": "x"},
        {rng.choice(sorted(forms.RESERVED_NAMES)): "2099-01-01"},
        {"lead_unit": "nyncj"} if "lead_unit" not in declared else {"deadline_": "x"},
    ]
    for name, kind in _typed(schema)[:3]:
        found.append({name: rng.choice(TYPE_MISFITS[kind])})
    if writable:
        found.append({rng.choice(writable): "长" * (forms.MAX_TEXT + 1)})
        found.append({rng.choice(writable): 2**60})
    return found


def test_bad_submissions_to_every_open_step_of_the_demo_change_nothing(
    county_engine: Engine,
) -> None:
    engine = county_engine
    for line in _in_flight(engine, PROCESSES / "demo.yaml"):
        assert "失败" not in line, line
    client = create_app({"TESTING": True, "SECRET_KEY": "fuzz"}, engine=engine).test_client()
    with engine.read_session() as session:
        open_rows = list(
            session.scalars(
                select(HumanTask).where(HumanTask.state == "open", HumanTask.kind == "task")
            )
        )
        session.expunge_all()
    assert len(open_rows) >= 5, "the demo leaves several steps open"
    actors = {row.id: _someone_who_may_act(engine, row) for row in open_rows}
    auth = {user: token(client, user) for user in set(actors.values())}  # sign-ins are audited
    before = _fingerprint(engine)
    rng = random.Random(20261203)
    tried = 0
    for row in open_rows:
        user = actors[row.id]
        schema = engine.task(row.id, user).get("form")
        for submission in _mutations(schema, rng):
            response = client.post(
                f"/api/v1/tasks/{row.id}/complete", json={"data": submission}, headers=auth[user]
            )
            body = response.get_json()
            assert response.status_code == 422, (row.name, submission, body)
            assert body["error"] == "invalid_data" and body["errors"], body
            tried += 1
    assert tried >= 30
    assert _fingerprint(engine) == before
