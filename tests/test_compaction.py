"""Task-tree compaction of looping workflows (engine.compaction).

Every command below is: load the instance JSON, complete the READY user task with form data,
``do_engine_steps``, ``compact``, save the JSON, so each round also exercises the round trip.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator

import engine.compaction
from engine.compaction import PrunedTask, compact, refusal_reason

BPMN_DIR = Path(__file__).parent / "bpmn" / "compaction"
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

PruneCheck = Callable[[BpmnWorkflow, list[PrunedTask]], None]


STOCK_MAX_DEPTH = 1000  # SpiffWorkflow 3.2.0's own iterator depth limit


@pytest.fixture(autouse=True)
def stock_iterator_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test here with the library's own depth limit.

    engine.bpmn raises the limit at import time as a second line of defence; these tests must
    show that compaction alone keeps loops working, and the control must show the library bug.
    """
    for iterator in (TaskIterator, BpmnTaskIterator):
        init = iterator.__init__
        names = init.__code__.co_varnames[1 : init.__code__.co_argcount]
        defaults = list(init.__defaults__)
        defaults[names[-len(defaults) :].index("max_depth")] = STOCK_MAX_DEPTH
        monkeypatch.setattr(init, "__defaults__", tuple(defaults))


@cache
def _parser(filename: str) -> SpiffBpmnParser:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(BPMN_DIR / filename))
    return parser


def new_workflow(process_id: str, **data: Any) -> BpmnWorkflow:
    """A fresh instance of the process in ``<process_id>.bpmn`` with ``data`` as its start data."""
    parser = _parser(f"{process_id}.bpmn")
    workflow = BpmnWorkflow(parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
    workflow.task_tree.data.update(data)
    workflow.do_engine_steps()
    return workflow


def start(process_id: str, **data: Any) -> str:
    return SERIALIZER.serialize_json(new_workflow(process_id, **data))


def load(state: str) -> BpmnWorkflow:
    return SERIALIZER.deserialize_json(state)


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def ready_user_task(workflow: BpmnWorkflow, spec_name: str | None = None) -> Task:
    tasks = [t for t in ready_user_tasks(workflow) if spec_name in (None, t.task_spec.name)]
    assert len(tasks) == 1, [t.task_spec.name for t in ready_user_tasks(workflow)]
    return tasks[0]


def compact_and_save(workflow: BpmnWorkflow, on_prune: PruneCheck | None = None) -> tuple[str, int]:
    callback = None if on_prune is None else (lambda records: on_prune(workflow, records))
    removed = compact(workflow, callback)
    return SERIALIZER.serialize_json(workflow), removed


def command(
    state: str,
    spec_name: str | None = None,
    *,
    on_prune: PruneCheck | None = None,
    **form: Any,
) -> tuple[str, BpmnWorkflow, Task]:
    """Load, complete the READY user task with ``form``, run the engine, compact, save."""
    workflow = load(state)
    task = ready_user_task(workflow, spec_name)
    task.set_data(**form)
    task.run()
    workflow.do_engine_steps()
    state, _ = compact_and_save(workflow, on_prune)
    return state, workflow, task


def live_depth(workflow: BpmnWorkflow) -> int:
    return max(task.depth for task in workflow.tasks.values())


def live_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The data the next round starts from: the root's data once complete, else the READY task's."""
    if workflow.is_completed():
        return workflow.data
    return ready_user_tasks(workflow)[0].data


# --- 1. XOR loop ------------------------------------------------------------------------------


@pytest.mark.slow
def test_xor_loop_of_1200_rounds_stays_shallow_and_completes_only_at_the_end() -> None:
    rounds = 1200
    state = start("xor_loop", rounds=rounds)
    sizes: dict[int, int] = {}
    for done in range(1, rounds + 1):
        state, workflow, _ = command(state, answer=f"answer {done}")
        sizes[done] = len(state)
        assert live_depth(workflow) <= 10
        if done < rounds:
            assert not workflow.is_completed()
            assert ready_user_task(workflow, "ask").data["counter"] == done
    final = load(state)
    assert final.is_completed()
    assert final.data["counter"] == rounds
    assert sizes[rounds] <= 2 * sizes[10]


def test_uncompacted_xor_loop_falsely_completes_control() -> None:
    """Documents the library bug compaction works around; it does not test engine.compaction.

    Runs with the stock iterator depth limit (see `stock_iterator_depth`).

    Without compaction the tree grows three levels per round. Past depth 1000 (round ~334) the
    iterators no longer see the live task, so the workflow reports itself complete although the
    loop has not finished. Run in memory, without compaction, and only as far as needed.
    """
    rounds = 400
    workflow = new_workflow("xor_loop", rounds=rounds)
    for _ in range(rounds):
        ready = ready_user_tasks(workflow)
        if not ready:
            break
        ready[0].set_data(answer="x")
        ready[0].run()
        workflow.do_engine_steps()
    counter = workflow.last_task.data["counter"]
    assert 300 < counter < rounds
    assert workflow.is_completed()
    assert workflow.get_tasks(state=TaskState.READY, max_depth=10**6)
    reloaded = load(SERIALIZER.serialize_json(workflow))
    assert reloaded.is_completed()


def test_deep_uncompacted_instance_is_compacted_without_recursion() -> None:
    """An instance saved before compaction existed (depth 750) is cut back in one iterative pass."""
    rounds = 260
    workflow = new_workflow("xor_loop", rounds=rounds)
    for done in range(1, 251):
        task = ready_user_task(workflow, "ask")
        task.set_data(answer=done)
        task.run()
        workflow.do_engine_steps()
    assert live_depth(workflow) > 700
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        removed = compact(workflow)
    finally:
        sys.setrecursionlimit(limit)
    assert removed > 700
    assert live_depth(workflow) <= 10
    state = SERIALIZER.serialize_json(workflow)
    for done in range(251, rounds + 1):
        state, workflow, _ = command(state, answer=done)
    final = load(state)
    assert final.is_completed()
    assert final.data["counter"] == rounds


# --- 2. Parallel split and join inside a loop -------------------------------------------------


def test_parallel_join_in_loop_waits_for_both_branches_every_round() -> None:
    rounds = 200
    rng = random.Random(20240607)
    state = start("parallel_loop", rounds=rounds)
    expected_a = expected_b = 0
    for done in range(rounds):
        a, b = rng.randint(1, 100), rng.randint(1, 100)
        order = [("task_a", {"a": a}), ("task_b", {"b": b})]
        rng.shuffle(order)
        (first, first_form), (second, second_form) = order
        state, workflow, _ = command(state, first, **first_form)
        waiting = ready_user_task(workflow, second)
        assert waiting.data["counter"] == done
        assert [t.task_spec.name for t in ready_user_tasks(workflow)] == [second]
        assert _states_of(workflow, "join") & TaskState.WAITING
        state, workflow, _ = command(state, second, **second_form)
        expected_a, expected_b = expected_a + a, expected_b + b
        data = live_data(workflow)
        assert (data["counter"], data["total_a"], data["total_b"]) == (
            done + 1,
            expected_a,
            expected_b,
        )
        assert "a" not in data and "b" not in data
        assert live_depth(workflow) <= 10
    assert load(state).is_completed()


def _states_of(workflow: BpmnWorkflow, spec_name: str) -> int:
    states = 0
    for task in workflow.tasks.values():
        if task.task_spec.name == spec_name:
            states |= task.state
    return states


def run_three_way_join() -> BpmnWorkflow:
    state = start("three_way_join")
    for name in ("task_x", "task_y", "task_z"):
        state, workflow, _ = command(state, name, **{name: 1})
    return workflow


def test_join_fed_from_two_splits_keeps_its_current_cancelled_instances() -> None:
    """Rule 3: task_x's join instance is CANCELLED once task_y arrives, but still counts."""
    workflow = run_three_way_join()
    data = ready_user_task(workflow, "after").data
    assert (data["task_x"], data["task_y"], data["task_z"], data["prepared"]) == (1, 1, 1, True)


def test_without_rule_3_the_join_would_deadlock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: cutting below the fork drops task_x's cancelled join instance; nothing is READY."""
    monkeypatch.setattr(engine.compaction, "_current_join_cancellations", lambda workflow: [])
    workflow = run_three_way_join()
    assert ready_user_tasks(workflow) == []
    assert not workflow.is_completed()


# --- 3. Interrupting boundary timer -----------------------------------------------------------


def fire_timer(state: str) -> tuple[str, BpmnWorkflow]:
    """Make the WAITING boundary timer due (stored due time moved to the past) and poll."""
    workflow = load(state)
    [timer] = [
        t
        for t in workflow.get_tasks(state=TaskState.WAITING)
        if t.task_spec.name == "review_timeout"
    ]
    assert isinstance(timer.parent.task_spec, BoundaryEventSplit)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    assert timer.state == TaskState.WAITING, "fired before it was due"
    past = datetime.now(UTC) - timedelta(minutes=1)
    timer.internal_data["event_value"] = past.isoformat()
    workflow.refresh_timers()
    workflow.do_engine_steps()
    state, _ = compact_and_save(workflow)
    return state, workflow


def test_boundary_timer_in_loop_fires_after_compaction_and_round_trip() -> None:
    rounds = 60
    rng = random.Random(7)
    state = start("timer_loop", rounds=rounds)
    expected_timeouts = 0
    for done in range(1, rounds + 1):
        due = _timer_due(load(state))
        assert due > datetime.now(UTC) + timedelta(minutes=50)
        if rng.random() < 0.4:
            state, workflow = fire_timer(state)
            expected_timeouts += 1
        else:
            state, workflow, _ = command(state, "review", note=f"round {done}")
        data = live_data(workflow)
        assert (data["counter"], data["timeouts"]) == (done, expected_timeouts)
        assert data["approvals"] == done - expected_timeouts
        assert live_depth(workflow) <= 10
        if done < rounds:
            assert isinstance(workflow.task_tree.task_spec, BoundaryEventSplit)
            assert len(load(state).waiting_events()) == 1
    assert load(state).is_completed()
    assert 10 < expected_timeouts < 50


def _timer_due(workflow: BpmnWorkflow) -> datetime:
    [event] = workflow.waiting_events()
    return datetime.fromisoformat(event.value)


# --- 4. on_prune ------------------------------------------------------------------------------


def test_on_prune_gets_every_completed_user_task_once_in_order_before_deletion() -> None:
    rounds = 30
    state = start("xor_loop", rounds=rounds)
    records: list[PrunedTask] = []
    submitted: dict[str, str] = {}

    def check(workflow: BpmnWorkflow, batch: list[PrunedTask]) -> None:
        ids = [UUID(record.task_id) for record in batch]
        assert all(task_id in workflow.tasks for task_id in ids), "called after deletion"
        assert ids == [task_id for task_id in workflow.tasks if task_id in set(ids)]
        json.dumps([asdict(record) for record in batch])
        records.extend(batch)

    for done in range(1, rounds + 1):
        answer = f"answer {done}"
        state, _, task = command(state, on_prune=check, answer=answer)
        submitted[str(task.id)] = answer

    final = load(state)
    user_records = [r for r in records if r.spec_name == "ask"]
    still_live = [str(t.id) for t in final.tasks.values() if t.task_spec.name == "ask"]
    assert [r.task_id for r in user_records] + still_live == list(submitted)
    assert len({r.task_id for r in records}) == len(records)
    for record in user_records:
        assert record.data_delta["updates"]["answer"] == submitted[record.task_id]
        assert (record.state, record.spec_class, record.manual) == ("COMPLETED", "UserTask", True)
        assert (record.bpmn_id, record.bpmn_name, record.workflow_id) == ("ask", "Ask", None)
    assert records[0].parent_id is None
    assert "counter" not in records[0].data_delta["updates"]
    assert all(r.state in ("COMPLETED", "CANCELLED") for r in records)


def test_on_prune_failure_leaves_the_workflow_unchanged() -> None:
    state, _, _ = command(start("xor_loop", rounds=5), answer="first")
    workflow = load(state)
    task = ready_user_task(workflow, "ask")
    task.set_data(answer="second")
    task.run()
    workflow.do_engine_steps()
    before = SERIALIZER.serialize_json(workflow)

    def fail(records: list[PrunedTask]) -> None:
        raise RuntimeError("history table unavailable")

    with pytest.raises(RuntimeError):
        compact(workflow, fail)
    assert SERIALIZER.serialize_json(workflow) == before
    assert compact(workflow) > 0


# --- 5. Refusals ------------------------------------------------------------------------------


def test_task_in_error_leaves_the_workflow_unchanged() -> None:
    state, _, _ = command(start("xor_loop", rounds=5), answer="first")
    workflow = load(state)
    task = ready_user_task(workflow, "ask")
    task.set_data(counter=None)
    task.run()
    with pytest.raises(WorkflowTaskException):
        workflow.do_engine_steps()
    before = SERIALIZER.serialize_json(workflow)
    assert refusal_reason(workflow) == "a task is in ERROR"
    assert compact(workflow, lambda records: pytest.fail("on_prune called")) == 0
    assert SERIALIZER.serialize_json(workflow) == before


def test_completed_workflow_is_refused() -> None:
    state = start("xor_loop", rounds=2)
    for done in range(2):
        state, workflow, _ = command(state, answer=done)
    workflow = load(state)
    assert workflow.is_completed()
    before = SERIALIZER.serialize_json(workflow)
    assert compact(workflow) == 0
    assert SERIALIZER.serialize_json(workflow) == before


def test_converging_inclusive_gateway_is_refused() -> None:
    workflow = new_workflow("inclusive")
    ready_user_task(workflow, "first").run()
    workflow.do_engine_steps()
    assert refusal_reason(workflow) == "converging inclusive gateway gather"
    assert compact(workflow) == 0


def test_min_depth_defers_compaction() -> None:
    state = start("xor_loop", rounds=50)
    removed_counts = []
    for done in range(1, 21):
        workflow = load(state)
        task = ready_user_task(workflow, "ask")
        task.set_data(answer=done)
        task.run()
        workflow.do_engine_steps()
        removed_counts.append(compact(workflow, min_depth=15))
        state = SERIALIZER.serialize_json(workflow)
        assert live_depth(workflow) <= 15 + 5
    assert 0 < sum(1 for n in removed_counts if n) < len(removed_counts)


# --- 6. Call activity in the loop -------------------------------------------------------------


def test_completed_call_activity_is_pruned_with_its_subprocess() -> None:
    rounds = 8
    state = start("call_loop", rounds=rounds)
    records: list[PrunedTask] = []
    call_ids: list[str] = []

    def check(workflow: BpmnWorkflow, batch: list[PrunedTask]) -> None:
        records.extend(batch)

    for done in range(rounds):
        state, workflow, _ = command(state, "ask", on_prune=check, answer=done)
        [call] = workflow.get_tasks(state=TaskState.STARTED, spec_name="call")
        call_ids.append(str(call.id))
        assert ready_user_task(workflow, "confirm").data["doubled"] == done * 2
        state, workflow, _ = command(state, "confirm", on_prune=check, note=f"checked {done}")
        _assert_subprocesses_consistent(state)
        assert live_data(workflow)["total"] == sum(2 * i for i in range(done + 1))

    final = load(state)
    assert final.is_completed()
    pruned_calls = [r.task_id for r in records if r.spec_class == "CallActivity"]
    assert pruned_calls == call_ids[: len(pruned_calls)]
    assert len(pruned_calls) >= rounds - 1
    assert all(UUID(task_id) not in final.subprocesses for task_id in pruned_calls)
    child_confirms = [r for r in records if r.spec_name == "confirm"]
    assert [r.workflow_id for r in child_confirms] == pruned_calls
    notes = [r.data_delta["updates"]["note"] for r in child_confirms]
    assert notes == [f"checked {done}" for done in range(len(notes))]


def _assert_subprocesses_consistent(state: str) -> None:
    saved = json.loads(state)
    assert set(saved["subprocesses"]) <= set(saved["tasks"])
    assert len(saved["subprocesses"]) <= 1
    workflow = load(state)
    assert all(task_id in workflow.tasks for task_id in workflow.subprocesses)
