"""Deploying process definitions: versions, start roles, refused bundles and the spec cache."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import DefinitionError, Engine, FixedClock, Forbidden
from engine.models import Deployment, DeploymentFile, ProcessVersion
from tests.builders import BPMN_HEADER, bpmn, flow, user_task

STAFF = "指挥办工作人员"
DIRECTOR = "指挥办主任"
CHINESE = re.compile(r"[\u4e00-\u9fff]")

Deploy = Callable[..., Any]


def form(title: str = "填报表单") -> str:
    return json.dumps(
        {
            "title": title,
            "type": "object",
            "properties": {"note": {"type": "string", "title": "说明"}},
        },
        ensure_ascii=False,
    )


def process(
    key: str, form_file: str = "form.json", task_name: str = "填报", lane: str = STAFF
) -> str:
    """start → one user task (in `lane`, showing `form_file`) → end."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("fill", task_name, "f1", "f2", form=form_file)
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "fill")
        + flow("f2", "fill", "end")
    )
    return bpmn(key, body, lanes={lane: ["start", "fill", "end"]}, name=f"{key}流程")


def two_processes(**changes: str) -> dict[str, str]:
    files = {
        "a.bpmn": process("proc_a", "form_a.json"),
        "b.bpmn": process("proc_b", "form_b.json"),
        "form_a.json": form("甲表"),
        "form_b.json": form("乙表"),
    }
    files.update(changes)
    return files


def versions(results: list[Any]) -> dict[str, tuple[int, bool]]:
    return {r.key: (r.version, r.created) for r in results}


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.read_session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Deployment, DeploymentFile, ProcessVersion)
        }


@pytest.fixture
def staff(engine: Engine) -> str:
    engine.add_user("staff", "pass1234", roles=[STAFF])
    return "staff"


def only_task(engine: Engine, user: str, instance_id: int) -> dict[str, Any]:
    items = [t for t in engine.tasks(user)["items"] if t["instance_id"] == instance_id]
    assert len(items) == 1
    return items[0]


# ------------------------------------------------------------------ versions
def test_deploying_a_folder_creates_version_one_of_each_process(
    engine: Engine, deploy: Deploy
) -> None:
    results = deploy(two_processes())

    assert versions(results) == {"proc_a": (1, True), "proc_b": (1, True)}
    listed = {p["key"]: p["version"] for p in engine.processes()}
    assert listed == {"proc_a": 1, "proc_b": 1}


def test_deploying_the_same_content_again_creates_no_version(
    engine: Engine, deploy: Deploy
) -> None:
    deploy(two_processes())
    before = row_counts(engine)

    again = deploy(two_processes())

    assert versions(again) == {"proc_a": (1, False), "proc_b": (1, False)}
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "change",
    [
        {"a.bpmn": process("proc_a", "form_a.json", task_name="重新填报")},
        {"form_a.json": form("甲表（修订）")},
    ],
    ids=["bpmn-changed", "form-changed"],
)
def test_changing_one_process_creates_version_two_of_that_process_only(
    engine: Engine, deploy: Deploy, change: dict[str, str]
) -> None:
    deploy(two_processes())

    results = deploy(two_processes(**change))

    assert versions(results) == {"proc_a": (2, True), "proc_b": (1, False)}
    assert {p["key"]: p["version"] for p in engine.processes()} == {"proc_a": 2, "proc_b": 1}


def test_running_instances_keep_their_version_and_its_form(
    engine: Engine, deploy: Deploy, staff: str
) -> None:
    deploy(two_processes())
    old = engine.start("proc_a", user=staff)
    deploy(two_processes(**{"form_a.json": form("甲表（修订）")}))
    new = engine.start("proc_a", user=staff)

    assert (old["version"], new["version"]) == (1, 2)
    assert engine.instance(old["id"])["version"] == 1
    old_task = only_task(engine, staff, old["id"])
    new_task = only_task(engine, staff, new["id"])
    assert engine.task(old_task["id"])["form"]["title"] == "甲表"
    assert engine.task(new_task["id"])["form"]["title"] == "甲表（修订）"

    engine.complete(old_task["id"], {"note": "按旧版办结"}, user=staff)
    assert engine.instance(old["id"])["status"] == "completed"
    assert engine.instance(new["id"])["status"] == "running"


# --------------------------------------------------------------- start roles
def test_start_roles_default_to_the_lane_of_the_start_event(
    engine: Engine, deploy: Deploy, staff: str
) -> None:
    engine.add_user("director", "pass1234", roles=[DIRECTOR])
    deploy({"a.bpmn": process("proc_a"), "form.json": form()})

    assert [p["key"] for p in engine.processes(staff)] == ["proc_a"]
    assert engine.processes("director") == []
    assert engine.start("proc_a", user=staff)["status"] == "running"
    with pytest.raises(Forbidden) as refused:
        engine.start("proc_a", user="director")
    assert CHINESE.search(refused.value.message)


def test_duban_toml_overrides_the_start_roles(engine: Engine, deploy: Deploy, staff: str) -> None:
    engine.add_user("director", "pass1234", roles=[DIRECTOR])
    deploy(
        {
            "a.bpmn": process("proc_a"),
            "b.bpmn": process("proc_b"),
            "form.json": form(),
            "duban.toml": f'[process.proc_a]\nstart_roles = ["{DIRECTOR}"]\n',
        }
    )

    assert [p["key"] for p in engine.processes("director")] == ["proc_a"]
    assert [p["key"] for p in engine.processes(staff)] == ["proc_b"]
    assert engine.start("proc_a", user="director")["status"] == "running"
    with pytest.raises(Forbidden):
        engine.start("proc_a", user=staff)


def test_editing_start_roles_in_duban_toml_deploys_a_new_version(
    engine: Engine, deploy: Deploy, staff: str
) -> None:
    engine.add_user("director", "pass1234", roles=[DIRECTOR])
    files = {"a.bpmn": process("proc_a"), "form.json": form()}
    deploy(files)
    both = f'[process.proc_a]\nstart_roles = ["{STAFF}", "{DIRECTOR}"]\n'

    assert versions(deploy({**files, "duban.toml": both})) == {"proc_a": (2, True)}
    assert versions(deploy({**files, "duban.toml": both})) == {"proc_a": (2, False)}

    assert [p["key"] for p in engine.processes("director")] == ["proc_a"]
    assert engine.start("proc_a", user="director")["version"] == 2
    assert versions(deploy(files)) == {"proc_a": (3, True)}  # section removed: back to the lane
    assert engine.processes("director") == []


# ------------------------------------------------------------ bad definitions
def _xml(body: str) -> str:
    return f"{BPMN_HEADER}{body}</bpmn:definitions>"


def xxe(where: str) -> str:
    """A BPMN that tries to pull /etc/passwd in through an external entity."""
    name, doc = (
        ("&e;", "")
        if where == "attribute"
        else ("xxe", "<bpmn:documentation>&e;</bpmn:documentation>")
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
        + BPMN_HEADER.split("\n", 1)[1]
        + f'<bpmn:process id="xxe" name="{name}" isExecutable="true">{doc}'
        '<bpmn:startEvent id="start"/></bpmn:process></bpmn:definitions>'
    )


NO_START = bpmn(
    "no_start",
    user_task("fill", "填报", "f0", "f1")
    + '<bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "fill", "end"),
)

UNKNOWN_CALL = bpmn(
    "caller",
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:callActivity id="call_child" name="调用子流程" calledElement="no_such_process">'
    "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>"
    '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "start", "call_child")
    + flow("f2", "call_child", "end"),
)

NO_CONDITION = bpmn(
    "gateway",
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:exclusiveGateway id="gw" default="f_yes"><bpmn:incoming>f1</bpmn:incoming>'
    "<bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_bare</bpmn:outgoing>"
    "</bpmn:exclusiveGateway>"
    '<bpmn:endEvent id="end"><bpmn:incoming>f_yes</bpmn:incoming>'
    "<bpmn:incoming>f_bare</bpmn:incoming></bpmn:endEvent>"
    + flow("f1", "start", "gw")
    + flow("f_yes", "gw", "end")
    + flow("f_bare", "gw", "end"),
)

BAD_BUNDLES = {
    "malformed-xml": (
        {"broken.bpmn": _xml('<bpmn:process id="p" isExecutable="true"><bpmn:startEvent>')},
        "broken.bpmn",
        None,
    ),
    "xxe": ({"xxe.bpmn": xxe("text")}, "xxe.bpmn", None),
    "no-start-event": ({"no_start.bpmn": NO_START}, "no_start.bpmn", "no_start"),
    "unknown-called-process": ({"caller.bpmn": UNKNOWN_CALL}, "caller.bpmn", "call_child"),
    "missing-form": ({"a.bpmn": process("proc_a", "missing.json")}, "a.bpmn", "fill"),
    "form-not-json": (
        {"a.bpmn": process("proc_a"), "form.json": "{title: 填报"},
        "form.json",
        None,
    ),
    "form-not-a-schema": (
        {"a.bpmn": process("proc_a"), "form.json": '{"type": 12}'},
        "form.json",
        None,
    ),
    "gateway-flow-without-condition": ({"gw.bpmn": NO_CONDITION}, "gw.bpmn", "f_bare"),
    "second-file-broken": (
        {"a.bpmn": process("proc_a"), "form.json": form(), "b.bpmn": NO_START},
        "b.bpmn",
        "no_start",
    ),
}


@pytest.mark.parametrize(
    ("files", "bad_file", "element"), BAD_BUNDLES.values(), ids=BAD_BUNDLES.keys()
)
def test_a_bad_bundle_is_refused_naming_file_and_element_and_nothing_is_stored(
    engine: Engine,
    deploy: Deploy,
    files: dict[str, str],
    bad_file: str,
    element: str | None,
) -> None:
    deploy({"ok.bpmn": process("already_there"), "form.json": form()})
    before = row_counts(engine)

    with pytest.raises(DefinitionError) as refused:
        deploy(files)

    error = refused.value
    assert error.file == bad_file
    if element is not None:
        assert error.element == element
    assert CHINESE.search(error.message), error.message
    assert row_counts(engine) == before
    assert [p["key"] for p in engine.processes()] == ["already_there"]


def test_a_bpmn_file_not_in_utf8_is_refused(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "gbk"
    folder.mkdir()
    xml = process("proc_a").replace('encoding="UTF-8"', 'encoding="GBK"')
    (folder / "a.bpmn").write_bytes(xml.encode("gbk"))
    (folder / "form.json").write_text(form(), encoding="utf-8")

    with pytest.raises(DefinitionError) as refused:
        engine.deploy(folder)

    assert refused.value.file == "a.bpmn"
    assert "UTF-8" in refused.value.message
    assert row_counts(engine) == {"deployment": 0, "deployment_file": 0, "process_version": 0}


@pytest.mark.parametrize("where", ["text", "attribute"])
def test_an_xxe_attempt_never_reads_the_file(engine: Engine, deploy: Deploy, where: str) -> None:
    secret = Path("/etc/passwd").read_text().splitlines()[0]

    with pytest.raises(DefinitionError) as refused:
        deploy({"xxe.bpmn": xxe(where)})

    assert secret not in json.dumps(refused.value.to_dict(), ensure_ascii=False)
    assert secret not in str(refused.value)
    with engine.read_session() as session:
        stored = session.scalars(select(DeploymentFile.content)).all()
    assert not any(secret in content for content in stored)


# ---------------------------------------------------------------- spec cache
def test_a_second_engine_rebuilds_the_spec_from_the_stored_files(
    engine: Engine, deploy: Deploy, staff: str, db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    deploy({"a.bpmn": process("proc_a"), "form.json": form("甲表")})
    started = engine.start("proc_a", {"note": "初稿"}, user=staff)
    # The folder is gone: the second engine can only use what the deployment stored.
    for file in tmp_path.rglob("*.bpmn"):
        file.unlink()

    other = Engine(db_url, clock=clock)
    try:
        task = only_task(other, staff, started["id"])
        assert other.task(task["id"])["form"]["title"] == "甲表"
        assert other.task(task["id"])["data"]["note"] == "初稿"
        other.complete(task["id"], {"note": "定稿"}, user=staff)
        detail = other.instance(started["id"])
    finally:
        other.db.dispose()

    assert detail["status"] == "completed"
    assert detail["data"]["note"] == "定稿"
    assert engine.instance(started["id"])["status"] == "completed"
