"""Tests for engine.sandbox: RestrictedPython script engine with a wall-time limit."""

import contextlib
import datetime
import re
import sys
import threading
import time
from pathlib import Path

import pytest
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.sandbox import (
    RestrictedScriptEnvironment,
    ScriptLimitError,
    ScriptSecurityError,
    ScriptTimeout,
    make_script_engine,
)

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def document(body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="defs" targetNamespace="http://example.org/test">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    {body}
  </bpmn:process>
</bpmn:definitions>"""


def script_process(script: str) -> str:
    return document(f"""
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script"/>
    <bpmn:scriptTask id="script"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="script" targetRef="end"/>
    <bpmn:endEvent id="end"/>""")


def gateway_process(condition: str) -> str:
    return document(f"""
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw" default="to_low"/>
    <bpmn:sequenceFlow id="to_high" sourceRef="gw" targetRef="high">
      <bpmn:conditionExpression>
        {escape(condition)}
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_low" sourceRef="gw" targetRef="low"/>
    <bpmn:endEvent id="high"/>
    <bpmn:endEvent id="low"/>""")


TIMER_PROCESS = document("""
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="deadline"/>
    <bpmn:intermediateCatchEvent id="deadline">
      <bpmn:timerEventDefinition><bpmn:timeDate>due_at(3)</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="deadline" targetRef="end"/>
    <bpmn:endEvent id="end"/>""")

SERVICE_PROCESS = document("""
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="svc"/>
    <bpmn:serviceTask id="svc">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="http/GetRequest" resultVariable="r">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="url" type="str" value="'http://example.org'"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="svc" targetRef="end"/>
    <bpmn:endEvent id="end"/>""")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def add_workdays(n: int) -> str:
    return f"+{n}wd"


def due_at(days: int) -> str:
    return f"2030-01-{days:02d}T09:30:00+00:00"


HELPERS = {"add_workdays": add_workdays, "due_at": due_at}


def start(xml: str, data: dict | None = None, time_limit: float = 1.0) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml.encode(), "x.bpmn")
    engine = make_script_engine(HELPERS, time_limit=time_limit)
    wf = BpmnWorkflow(parser.get_spec("p"), script_engine=engine)
    wf.get_next_task(state=TaskState.READY).data.update(data or {})
    return wf


def run_failing(xml: str, data: dict | None = None, time_limit: float = 1.0):
    wf = start(xml, data, time_limit)
    with pytest.raises(WorkflowTaskException) as info:
        wf.do_engine_steps()
    return wf, info.value


NORMAL_SCRIPT = """
order = {'items': [3, 4]}
order['items'].append(5)
order['status'] = 'open'
del order['status']
total = 0
for n in order['items']:
    total += n
counts = {'a': 1}
counts['a'] += 2
doubled = [n * 2 for n in order['items'] if n > 3]
pairs = list(zip(order['items'], doubled))
a, b = pairs[0]
average = round(sum(order['items']) / len(order['items']), 2)
title = 'ab'.upper() + f'-{total}'
due = add_workdays(3)
scratch = 1
del scratch
double = lambda x: x * 2
lazy = map(double, [1])
try:
    bad = int('x')
except ValueError:
    bad = None
"""


def test_normal_script_updates_task_data_and_serializes() -> None:
    wf = start(script_process(NORMAL_SCRIPT), {"keep": 1, "old": 2})
    wf.do_engine_steps()
    assert wf.is_completed()
    data = wf.last_task.data
    assert data["order"] == {"items": [3, 4, 5]}
    assert (data["total"], data["counts"], data["doubled"]) == (12, {"a": 3}, [8, 10])
    assert (data["a"], data["b"], data["average"]) == (3, 8, 4.0)
    assert (data["title"], data["due"], data["bad"], data["keep"]) == ("AB-12", "+3wd", None, 1)
    # Functions, iterators, helpers and builtins do not leak into the task data.
    for name in ("scratch", "double", "lazy", "add_workdays", "__builtins__", "_getattr_"):
        assert name not in data
    restored = SERIALIZER.deserialize_json(SERIALIZER.serialize_json(wf))
    assert restored.last_task.data["order"] == {"items": [3, 4, 5]}


def test_del_removes_key_from_task_data() -> None:
    wf = start(script_process("del old"), {"keep": 1, "old": 2})
    wf.do_engine_steps()
    assert wf.last_task.data == {"keep": 1}


@pytest.mark.parametrize(("amount", "branch"), [(500, "high"), (50, "low")])
def test_gateway_condition_picks_branch(amount: int, branch: str) -> None:
    wf = start(gateway_process("amount > 100 and add_workdays(1) == '+1wd'"), {"amount": amount})
    wf.do_engine_steps()
    assert wf.is_completed()
    reached = {t.task_spec.name for t in wf.get_tasks(state=TaskState.COMPLETED)}
    assert reached & {"high", "low"} == {branch}


def test_timer_expressions_are_evaluated() -> None:
    wf = start(TIMER_PROCESS)
    wf.do_engine_steps()
    [waiting] = wf.waiting_events()
    assert waiting.event_type == "DurationTimerEventDefinition"
    wf.get_next_task(spec_name="wait").internal_data["event_value"] = "2000-01-01T00:00:00+00:00"
    wf.refresh_timers()
    wf.do_engine_steps()
    [waiting] = wf.waiting_events()
    assert waiting.value == "2030-01-03T09:30:00+00:00"


def test_service_task_is_not_silently_allowed() -> None:
    wf, err = run_failing(SERVICE_PROCESS)
    assert "服务任务" in str(err) and "http/GetRequest" in str(err)
    assert wf.get_next_task(spec_name="svc").state == TaskState.ERROR


def test_task_data_shadowing_a_helper_is_refused() -> None:
    wf, err = run_failing(script_process("x = 1"), {"add_workdays": 5})
    assert "add_workdays" in str(err)
    assert wf.get_next_task(spec_name="script").state == TaskState.ERROR


def test_syntax_error_has_line_number() -> None:
    wf, err = run_failing(script_process("x = 1\ny = ("))
    assert "脚本语法错误" in str(err) and err.line_number == 2 and err.error_line == "y = ("
    assert wf.get_next_task(spec_name="script").state == TaskState.ERROR
    SERIALIZER.serialize_json(wf)


def test_error_with_non_string_argument_is_wrapped() -> None:
    # Spiff itself fails with TypeError on `"KeyError:" + 1`.
    _, err = run_failing(script_process("x = {}[1]"))
    assert err.error_type == "KeyError" and err.line_number == 1


ESCAPES = [
    ("import os\nos.system('touch MARKER')", "import"),
    ("__import__('os').system('touch MARKER')", "__import__"),
    ("s = ().__class__.__base__.__subclasses__()", "__class__"),
    ("open('MARKER', 'w').write('x')", "open"),
    ("text = open('/etc/hostname').read()", "open"),
    ("eval(\"__import__('os').system('touch MARKER')\")", "eval"),
    ("exec(\"import os; os.system('touch MARKER')\")", "exec"),
    ("c = getattr(keep, '__class__')", "getattr"),
    ("c = [].__class__", "__class__"),
    ("t = type(1)", "type"),
    ("g = globals()", "globals"),
    ("s = '{0.__class__}'.format(1)", "format"),
    ("base = ValueError.mro()[1]", "mro"),
    ("try:\n    x = 1\nexcept:\n    pass", "except"),
]


@pytest.mark.parametrize(("script", "named"), ESCAPES)
def test_escape_is_blocked(script: str, named: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    wf, err = run_failing(script_process(script.replace("MARKER", str(marker))), {"keep": 1})
    assert CHINESE.search(str(err)) and named in str(err)
    assert err.error_type == "ScriptSecurityError"
    task = wf.get_next_task(spec_name="script")
    assert task.state == TaskState.ERROR
    assert task.data == {"keep": 1}
    assert not marker.exists()
    SERIALIZER.serialize_json(wf)


LOOPS = [
    "n = 0\nwhile True:\n    n += 1",
    # The timeout must not be swallowed by an except clause the script can write.
    "while True:\n    try:\n        while True:\n            pass\n"
    "    except ValueError:\n        pass",
    "while True:\n    s = sorted([3, 1, 2], key=lambda v: add_workdays(v))",
]


@pytest.mark.parametrize("script", LOOPS)
def test_infinite_loop_times_out(script: str) -> None:
    began = time.monotonic()
    wf, err = run_failing(script_process(script), time_limit=0.2)
    assert time.monotonic() - began < 5
    assert err.error_type == "ScriptTimeout" and "时间限制" in str(err) and err.line_number
    assert wf.get_next_task(spec_name="script").state == TaskState.ERROR
    SERIALIZER.serialize_json(wf)


def test_gateway_condition_times_out() -> None:
    began = time.monotonic()
    wf, err = run_failing(
        gateway_process("sum(1 for _ in range(10**6) for _ in range(10**6)) > 0"), time_limit=0.2
    )
    assert time.monotonic() - began < 5
    assert err.error_type == "ScriptTimeout" and "时间限制" in str(err)
    assert wf.get_next_task(spec_name="gw").state == TaskState.ERROR


@pytest.mark.parametrize(
    "handler", ["ValueError", "MemoryError", "OverflowError", "ArithmeticError", "LookupError"]
)
def test_a_refused_operation_cannot_be_caught(handler: str) -> None:
    script = f"try:\n    x = 'x' * 10**9\nexcept {handler}:\n    x = 1"
    wf, err = run_failing(script_process(script))
    assert err.error_type == "ScriptLimitError" and "脚本运算规模超出限制" in str(err)
    assert err.line_number == 2 and "x" not in wf.get_next_task(spec_name="script").data


def test_modules_cannot_be_reached_through_a_helper() -> None:
    env = RestrictedScriptEnvironment({"datetime": datetime})
    with pytest.raises(ScriptSecurityError, match="模块"):
        env.execute("m = datetime.sys.modules", {})


@pytest.mark.parametrize(
    "script", ["x = 1", "while True:\n    pass", "import os", "x = 1 << 10**6"]
)
def test_previous_trace_function_is_restored(script: str) -> None:
    def sentinel(frame, event, arg):
        return None

    previous = sys.gettrace()
    sys.settrace(sentinel)
    try:
        env = RestrictedScriptEnvironment(time_limit=0.2)
        expected = pytest.raises((ScriptTimeout, ScriptSecurityError, ScriptLimitError))
        with expected if script != "x = 1" else contextlib.nullcontext():
            env.execute(script, {})
        assert sys.gettrace() is sentinel
    finally:
        sys.settrace(previous)


def test_runs_in_a_non_main_thread() -> None:
    results: dict[str, object] = {}

    def work() -> None:
        wf = start(script_process("y = x * 2"), {"x": 21})
        wf.do_engine_steps()
        results["y"] = wf.last_task.data["y"]
        try:
            start(script_process("while True:\n    pass"), time_limit=0.2).do_engine_steps()
        except WorkflowTaskException as err:
            results["error"] = err.error_type

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert results == {"y": 42, "error": "ScriptTimeout"}
