"""One Chinese name per code (webui/labels.py): every audit event kind the engine records is in
engine.audit.EVENT_KINDS and has a label, every instance status and task state has a label, and
a status reads the same on every page (suspended is 已挂起, never 已暂停)."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine, acting, attachments, audit, boxes, console, instance_views, migration
from engine.console_commands import BULK_ACTIONS
from engine.models import HumanTask
from tests.test_console import ADMIN, HANDLER, two_steps
from webui import create_app, labels

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
WEBUI = ROOT / "webui"
RECORDERS = {"record", "record_task"}  # engine/audit.py's functions that write an event row


# ------------------------------------------------------------- the kinds the engine records
def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _enclosing(tree: ast.Module, target: ast.AST) -> ast.FunctionDef | None:
    """The innermost function around `target`."""
    found = None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(inner is target for inner in ast.walk(node))
            and (found is None or any(inner is node for inner in ast.walk(found)))
        ):
            found = node
    return found


def _calls_to(tree: ast.Module, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == name) or (
                isinstance(func, ast.Attribute) and func.attr == name
            ):
                yield node


def _argument(call: ast.Call, function: ast.FunctionDef, parameter: str) -> ast.expr | None:
    """What `call` passes to `function`'s `parameter` (its default when it passes nothing)."""
    for keyword in call.keywords:
        if keyword.arg == parameter:
            return keyword.value
    positional = [a.arg for a in function.args.posonlyargs + function.args.args]
    if parameter in positional:
        index = positional.index(parameter)
        if positional[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            index -= 1
        if index < len(call.args):
            return call.args[index]
        defaults = function.args.defaults
        offset = len(positional) - len(defaults)
        if positional.index(parameter) >= offset:
            return defaults[positional.index(parameter) - offset]
    return None


def _kinds(
    tree: ast.Module, expr: ast.expr, where: ast.AST, depth: int = 0
) -> tuple[set[str], list[str]]:
    """The strings `expr` (an argument at `where`) can be: (kinds, what could not be resolved)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}, []
    if isinstance(expr, ast.IfExp):
        kinds, unresolved = _kinds(tree, expr.body, where, depth)
        more, missed = _kinds(tree, expr.orelse, where, depth)
        return kinds | more, unresolved + missed
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
        # a module-level table: {"transfer": "task_transferred", …}[kind]
        for node in tree.body:
            if (
                isinstance(node, ast.Assign | ast.AnnAssign)
                and isinstance(node.value, ast.Dict)
                and any(
                    isinstance(t, ast.Name) and t.id == expr.value.id
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                )
            ):
                kinds, unresolved = set(), []
                for value in node.value.values:
                    more, missed = _kinds(tree, value, where, depth)
                    kinds, unresolved = kinds | more, unresolved + missed
                return kinds, unresolved
    if isinstance(expr, ast.Name) and depth < 5:
        # a recording helper's parameter: what its callers in the module pass
        function = _enclosing(tree, where)
        parameters = (
            {
                a.arg
                for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs
            }
            if function
            else set()
        )
        if function is not None and expr.id in parameters:
            calls = list(_calls_to(tree, function.name))
            kinds, unresolved = set(), []
            for call in calls:
                argument = _argument(call, function, expr.id)
                if argument is None:
                    unresolved.append(f"{function.name}(…) at line {call.lineno}")
                    continue
                more, missed = _kinds(tree, argument, call, depth + 1)
                kinds, unresolved = kinds | more, unresolved + missed
            if calls:
                return kinds, unresolved
    return set(), [f"{ast.unparse(expr)} at line {getattr(where, 'lineno', '?')}"]


def recorded_kinds() -> tuple[set[str], list[str]]:
    """Every kind engine/ passes to audit.record / audit.record_task, and what the scan could
    not follow (a kind computed some new way)."""
    kinds: set[str] = set()
    unresolved: list[str] = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path == ENGINE / "audit.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in RECORDERS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                continue
            kind = next((k.value for k in node.keywords if k.arg == "kind"), None)
            if kind is None:
                kind = node.args[1] if len(node.args) > 1 else None
            if kind is None:
                unresolved.append(f"{path.name}:{node.lineno}: no kind")
                continue
            more, missed = _kinds(tree, kind, node)
            kinds |= more
            unresolved += [f"{path.name}: {m}" for m in missed]
    return kinds, unresolved


def test_the_scan_follows_literals_helpers_and_tables() -> None:
    kinds, _unresolved = recorded_kinds()
    assert {
        "document_rendered",  # a literal
        "instance_suspended",  # through Engine._set_status's parameter
        "user_changed",  # through administration._record_changes
        "task_transferred",  # through operations._HANDOVER_EVENTS[kind]
        "task_escalated",  # one side of a conditional
        "task_urged",
    } <= kinds


def test_every_kind_the_engine_records_is_listed_in_event_kinds() -> None:
    kinds, unresolved = recorded_kinds()
    assert not unresolved, f"kinds the scan could not follow: {unresolved}"
    assert kinds - audit.EVENT_KINDS == set(), "recorded but not in audit.EVENT_KINDS"
    assert audit.EVENT_KINDS - kinds == set(), "in audit.EVENT_KINDS but never recorded"


def test_only_engine_audit_writes_event_rows() -> None:
    """Another way of writing an event (Event(...) elsewhere) would escape the scan above."""
    writers = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted(ENGINE.rglob("*.py"))
        if path != ENGINE / "audit.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "Event"
    ]
    assert writers == []


# ------------------------------------------------------------------------ every code has a name
def test_every_event_kind_has_a_chinese_label() -> None:
    missing = sorted(audit.EVENT_KINDS - labels.EVENTS.keys())
    assert missing == []
    for kind in audit.EVENT_KINDS:
        assert re.search(r"[\u4e00-\u9fff]", labels.EVENTS[kind]), kind


def instance_statuses() -> set[str]:
    return {
        *instance_views.STATUSES,
        *console.CONSOLE_STATUSES,
        *migration.MOVABLE_STATUSES,
        *acting.STATUS_REFUSALS,
    }


def task_states() -> set[str]:
    """The human task states: the model's default, the engine's lists of them, and the ones the
    model's comment names (`# open | waiting (…) | completed | …`)."""
    source = (ENGINE / "models" / "instances.py").read_text(encoding="utf-8")
    documented = re.search(
        r'state: Mapped\[str\] = mapped_column\(String\(20\), default="open"\)'
        r"\n\s*# ([^\n]+)",
        source,
    )
    assert documented, "the comment under HumanTask.state moved"
    named = {part.split()[0] for part in documented.group(1).split("|")}
    return {
        HumanTask.__table__.c.state.default.arg,
        *acting._CLOSED,
        *boxes.DONE_STATES,
        *attachments.OPEN_STATES,
        *named,
    }


def test_every_status_and_task_state_has_a_chinese_label() -> None:
    assert {"running", "suspended", "error", "completed", "terminated"} <= instance_statuses()
    assert {"open", "waiting", "completed", "returned", "withdrawn", "cancelled"} <= task_states()
    assert sorted(instance_statuses() - labels.INSTANCE_STATUSES.keys()) == []
    assert sorted(task_states() - labels.TASK_STATES.keys()) == []


def test_opinion_kinds_and_lights_have_labels() -> None:
    assert {"approve", "return", "reject", "complete", "transfer", "delegate", "resolve"} <= set(
        labels.OPINIONS
    )
    assert {"add_signers", "sign", "withdraw", "cc", "reassign"} <= set(labels.OPINIONS)
    assert labels.LIGHTS == {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}


# ------------------------------------------------------------------- one word per status
def test_suspended_is_one_word_everywhere() -> None:
    word = labels.INSTANCE_STATUSES["suspended"]
    assert word == "已挂起"
    assert BULK_ACTIONS["suspend"][1] in word  # the console's action is 挂起
    assert word in acting.STATUS_REFUSALS["suspended"]  # the engine's refusal says so too
    assert BULK_ACTIONS["suspend"][1] in labels.EVENTS["instance_suspended"]


def test_no_page_says_paused() -> None:
    """暂停 is not a word the pages use for a status: not in a template, script or module."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(WEBUI.rglob("*"))
        if path.suffix in (".py", ".html", ".js")
        and "node_modules" not in path.parts
        and "暂停" in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []


def test_label_tables_live_only_in_webui_labels() -> None:
    """No module or template keeps its own copy of a table: a Chinese label of a status, event
    or light appears as a dict value only in webui/labels.py."""
    codes = {**labels.INSTANCE_STATUSES, **labels.EVENTS, **labels.LIGHTS}
    keys = "|".join(map(re.escape, codes))
    pattern = re.compile(rf"""["']({keys})["']\s*:\s*["'][\u4e00-\u9fff]""")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(1)}"
        for path in sorted(WEBUI.rglob("*"))
        if path.suffix in (".py", ".html") and path != WEBUI / "labels.py"
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# ---------------------------------------------------------------------------- on the pages
@pytest.fixture
def app(engine: Engine, deploy):
    engine.add_unit("农业农村局", code="agri")
    engine.add_user("alice", "pass1234", name="张三", roles=[HANDLER], unit="农业农村局")
    engine.add_user("admin", "pass1234", name="管理员", roles=[ADMIN])
    deploy({"report.bpmn": two_steps()})
    return create_app(
        {"TESTING": True, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False}, engine=engine
    )


def signed_in(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": "pass1234"})
    assert response.status_code == 302
    return client


def test_the_filters_name_every_code(app) -> None:
    filters = app.jinja_env.filters
    for kind in audit.EVENT_KINDS:
        assert filters["event"](kind) == labels.EVENTS[kind]
    for status in instance_statuses():
        assert filters["status"](status) == labels.INSTANCE_STATUSES[status]
    for state in task_states():
        assert filters["task_state"](state) == labels.TASK_STATES[state]
    assert filters["light_name"]("red") == "红灯"
    assert filters["opinion_kind"]("approve") == "同意"
    assert filters["status"](None) == "" and filters["event"]("new_kind") == "new_kind"


def test_a_suspended_instance_reads_the_same_on_every_page(app, engine: Engine) -> None:
    instance_id = engine.start("report", {"unit": "agri"}, user="alice")["id"]
    engine.suspend(instance_id, user="admin", reason="核对数据")
    with engine.write_session() as session, session.begin():  # one event of every kind
        for kind in sorted(audit.EVENT_KINDS):
            audit.record(session, kind, engine.clock.now(), instance_id=instance_id)
    admin = signed_in(app, "admin")

    page = admin.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert "已挂起" in page and "挂起流程" in page and "暂停" not in page
    history = page[page.index("办理记录") :]
    for kind in audit.EVENT_KINDS:
        assert f"<strong>{kind}</strong>" not in history, kind
        assert f"<strong>{labels.EVENTS[kind]}</strong>" in history, kind
    assert "document_rendered" not in history and "生成文书" in history

    errors = admin.get("/console/errors?status=suspended").get_data(as_text=True)
    assert "没有已挂起" not in errors and "已挂起" in errors and "暂停" not in errors
    audit_page = admin.get(f"/console/audit?instance_id={instance_id}").get_data(as_text=True)
    assert "挂起流程" in audit_page and "生成文书" in audit_page and "暂停" not in audit_page
    health = admin.get("/console/health").get_data(as_text=True)
    assert "已挂起实例" in health
