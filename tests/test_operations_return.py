"""退回, 撤回 and the admin's reset through the Engine API: on a sequential step, inside
parallel branches (within a branch, before the split, after the join), in 会签 steps, on a step
with a boundary timer and in a modelled loop; their refusals, and two people acting at once."""

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import Conflict, DefinitionError, Engine, FixedClock, Forbidden, InvalidData
from engine.models import HumanTask, Notification, User
from tests.approval_processes import (
    APPROVE,
    FORMS,
    Deploy,
    countersign,
    notified,
    only,
    open_rows,
    opinions,
    race,
    ready,
    refused,
    review_task,
    sequential,
    start_and_draft,
    todo,
)
from tests.builders import bpmn, flow, user_task
from tests.test_concurrency import approval_process
from tests.test_loops import DRAFT_FORM, REVIEW_FORM, review_process

__all__ = ["ready"]  # the fixture, imported for pytest

LOOP_FORMS = {
    "draft.json": json.dumps(DRAFT_FORM, ensure_ascii=False),
    "review.json": json.dumps(REVIEW_FORM, ensure_ascii=False),
}


# ===================================================================== 退回
def test_return_to_the_previous_step_shows_reason_and_earlier_data(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    result = ready.return_task(task_id, user="rev1", reason="请补充依据")

    assert result["returned_to"] == "起草"
    draft = only(ready, "alice", iid)
    assert todo(ready, "bob", iid) == []  # back to the person who drafted it
    detail = ready.task(draft["id"], "alice")
    assert (detail["data"]["content"], detail["return_reason"]) == ("初稿", "请补充依据")
    assert notified(ready, "alice", "return")[0]["body"] == "请补充依据"
    assert ("return", "rev1", "请补充依据") in opinions(ready, iid)
    ready.complete(draft["id"], {"content": "二稿"}, user="alice")  # resubmission goes forward
    review = only(ready, "rev2", iid, "review")
    assert review["id"] not in (task_id, draft["id"])
    assert ready.tasks("rev1", box="done")["items"][0]["state"] == "returned"


def test_return_to_the_initiator_and_to_an_allowed_step(ready: Engine) -> None:
    iid = start_and_draft(ready)
    ready.complete(review_task(ready, iid), APPROVE, user="rev1")
    sign_off = only(ready, "lead", iid)["id"]
    targets = ready.return_targets(sign_off, "lead")
    assert [(t["to"], t["kinds"]) for t in targets] == [
        ("review", ["previous"]),
        ("draft", ["initiator"]),
    ]
    refused(
        ready,
        iid,
        InvalidData,
        lambda: ready.return_task(sign_off, user="lead", reason="x", to="draft"),
    )

    ready.return_task(sign_off, user="lead", reason="请发起人重拟", to="initiator")
    assert open_rows(ready, iid) == [("draft", "alice")]

    other = start_and_draft(ready, "seq_targets")
    ready.complete(review_task(ready, other), APPROVE, user="rev1")
    ready.return_task(only(ready, "lead", other)["id"], user="lead", reason="重拟", to="draft")
    assert open_rows(ready, other) == [("draft", "alice")]


def test_return_refusals(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    error = refused(
        ready, iid, InvalidData, lambda: ready.return_task(task_id, user="rev1", reason=" ")
    )
    assert error.errors == {"reason": "请填写退回原因"}
    refused(ready, iid, Conflict, lambda: ready.return_task(task_id, user="rev2", reason="x"))
    refused(
        ready,
        iid,
        InvalidData,
        lambda: ready.return_task(task_id, user="rev1", reason="x", to="nope"),
    )
    first = ready.start("seq", user="alice")
    draft = only(ready, "alice", first["id"])["id"]
    error = refused(
        ready, first["id"], Conflict, lambda: ready.return_task(draft, user="alice", reason="x")
    )
    assert "没有可退回" in error.message
    ready.complete(task_id, APPROVE, user="rev1")
    refused(ready, iid, Conflict, lambda: ready.return_task(task_id, user="rev1", reason="x"))


def test_return_within_a_parallel_branch_leaves_the_other_branch_alone(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    other_branch = only(ready, "lead", iid, "review_b")["id"]
    ready.complete(only(ready, "rev1", iid, "review_a")["id"], APPROVE, user="rev1")

    ready.return_task(only(ready, "rev2", iid, "check_a")["id"], user="rev2", reason="重审")

    assert open_rows(ready, iid) == [("review_a", "rev1"), ("review_b", None)]
    assert only(ready, "lead", iid)["id"] == other_branch  # untouched, not re-created
    ready.complete(only(ready, "rev1", iid)["id"], APPROVE, user="rev1")
    ready.complete(only(ready, "rev2", iid)["id"], APPROVE, user="rev2")
    ready.complete(other_branch, APPROVE, user="lead")
    assert open_rows(ready, iid) == [("final", None)]


def test_return_from_a_branch_to_before_the_split_takes_every_branch_back(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    ready.complete(only(ready, "rev1", iid, "review_a")["id"], APPROVE, user="rev1")

    ready.return_task(only(ready, "lead", iid)["id"], user="lead", reason="重拟", to="initiator")

    assert open_rows(ready, iid) == [("draft", "alice")]
    ready.complete(only(ready, "alice", iid)["id"], {"content": "二稿"}, user="alice")
    assert open_rows(ready, iid) == [("review_a", None), ("review_b", None)]


def test_return_after_the_join_runs_the_parallel_section_again(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    ready.complete(only(ready, "rev1", iid, "review_a")["id"], APPROVE, user="rev1")
    ready.complete(only(ready, "rev2", iid, "check_a")["id"], APPROVE, user="rev2")
    ready.complete(only(ready, "lead", iid, "review_b")["id"], APPROVE, user="lead")
    final = only(ready, "alice", iid, "final")["id"]

    ready.return_task(final, user="alice", reason="两个分支都要重审")

    # every branch again from its start, each with the person who did it before; nothing twice
    assert open_rows(ready, iid) == [("review_a", "rev1"), ("review_b", "lead")]
    for user, name in (("rev1", "review_a"), ("rev2", "check_a"), ("lead", "review_b")):
        ready.complete(only(ready, user, iid, name)["id"], APPROVE, user=user)
    assert open_rows(ready, iid) == [("final", None)]


# ===================================================================== 撤回
def test_withdraw_while_the_next_step_is_untouched(ready: Engine) -> None:
    iid = ready.start("seq", user="alice")["id"]
    draft = only(ready, "alice", iid)["id"]
    ready.complete(draft, {"content": "初稿"}, user="alice", opinion="请审核")
    refused(ready, iid, Forbidden, lambda: ready.withdraw(draft, user="bob"))

    ready.withdraw(draft, user="alice", opinion="还要修改")

    again = only(ready, "alice", iid)
    assert again["id"] != draft and ready.task(again["id"], "alice")["data"]["content"] == "初稿"
    assert todo(ready, "rev1", iid) == []
    assert notified(ready, "rev1", "withdraw")
    assert ready.task(draft, "alice")["state"] == "withdrawn"
    assert ("withdraw", "alice", "还要修改") in opinions(ready, iid)


def test_withdraw_is_refused_once_the_next_step_is_acted_on(ready: Engine) -> None:
    iid = ready.start("seq", user="alice")["id"]
    draft = only(ready, "alice", iid)["id"]
    ready.complete(draft, {"content": "初稿"}, user="alice")
    review = review_task(ready, iid)  # claimed: acted on

    error = refused(ready, iid, Conflict, lambda: ready.withdraw(draft, user="alice"))
    assert "下一步" in error.message
    ready.complete(review, APPROVE, user="rev1")
    refused(ready, iid, Conflict, lambda: ready.withdraw(draft, user="alice"))
    sign_off = only(ready, "lead", iid)["id"]
    ready.urge(sign_off, user="alice")  # being urged is not being acted on
    ready.delegate(sign_off, "carol", user="lead")
    refused(ready, iid, Conflict, lambda: ready.withdraw(review, user="rev1"))
    ready.complete(sign_off, APPROVE, user="carol")
    ready.complete(sign_off, APPROVE, user="lead")
    error = refused(ready, iid, Conflict, lambda: ready.withdraw(review, user="rev1"))
    assert "流程已结束" in error.message


def test_withdraw_inside_a_parallel_branch(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    other_branch = only(ready, "lead", iid, "review_b")["id"]
    mine = only(ready, "rev1", iid, "review_a")["id"]
    ready.complete(mine, APPROVE, user="rev1")

    ready.withdraw(mine, user="rev1")

    assert open_rows(ready, iid) == [("review_a", "rev1"), ("review_b", None)]
    assert only(ready, "lead", iid)["id"] == other_branch


def test_withdrawing_the_step_that_fired_the_join(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    ready.complete(only(ready, "rev1", iid, "review_a")["id"], APPROVE, user="rev1")
    ready.complete(only(ready, "rev2", iid, "check_a")["id"], APPROVE, user="rev2")
    last = only(ready, "lead", iid, "review_b")["id"]
    ready.complete(last, APPROVE, user="lead")
    assert open_rows(ready, iid) == [("final", None)]

    ready.withdraw(last, user="lead")

    assert open_rows(ready, iid) == [("review_b", "lead")]  # branch A stays done
    ready.complete(only(ready, "lead", iid)["id"], APPROVE, user="lead")
    assert open_rows(ready, iid) == [("final", None)]


def test_withdraw_before_a_countersign(ready: Engine) -> None:
    iid = ready.start("sign_all", {"approvers": ["rev1", "rev2"]}, user="alice")["id"]
    draft = only(ready, "alice", iid)["id"]
    ready.complete(draft, {"content": "初稿"}, user="alice")
    ready.withdraw(draft, user="alice")
    assert open_rows(ready, iid) == [("draft", "alice")]


def test_admin_resets_an_instance_to_an_earlier_step(ready: Engine) -> None:
    iid = start_and_draft(ready, "par")
    ready.complete(only(ready, "rev1", iid, "review_a")["id"], APPROVE, user="rev1")
    refused(ready, iid, Forbidden, lambda: ready.reset(iid, "draft", user="alice", reason="x"))
    refused(ready, iid, InvalidData, lambda: ready.reset(iid, "nowhere", user="admin", reason="x"))

    ready.reset(iid, "draft", user="admin", reason="材料有误，重新起草")

    assert open_rows(ready, iid) == [("draft", "alice")]
    last = [h for h in ready.instance(iid)["history"] if h["kind"] == "instance_reset"][-1]
    assert (last["actor"], last["reason"]) == ("admin", "材料有误，重新起草")


# ===================================================================== races
def test_withdraw_and_the_next_step_race_one_wins(ready: Engine) -> None:
    for _ in range(3):
        iid = ready.start("seq", user="alice")["id"]
        draft = only(ready, "alice", iid)["id"]
        ready.complete(draft, {"content": "初稿"}, user="alice")
        review = only(ready, "rev1", iid)["id"]

        outcomes = race(
            lambda d=draft: ready.withdraw(d, user="alice"),
            lambda r=review: ready.complete(r, APPROVE, user="rev1"),
        )

        assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
        rows = open_rows(ready, iid)
        assert rows in ([("draft", "alice")], [("sign_off", None)]), rows


def test_two_people_complete_and_return_the_same_task_at_once(ready: Engine) -> None:
    for _ in range(3):
        iid = start_and_draft(ready)
        review = only(ready, "rev1", iid)["id"]

        outcomes = race(
            lambda r=review: ready.complete(r, APPROVE, user="rev1"),
            lambda r=review: ready.return_task(r, user="rev2", reason="退回"),
        )

        assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
        assert len(open_rows(ready, iid)) == 1


def test_two_countersign_approvers_finish_at_once_and_the_step_completes_once(
    ready: Engine,
) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    mine, theirs = only(ready, "rev1", iid)["id"], only(ready, "rev2", iid)["id"]

    outcomes = race(
        lambda: ready.complete(mine, APPROVE, user="rev1"),
        lambda: ready.complete(theirs, APPROVE, user="rev2"),
    )

    succeeded = [o for o in outcomes if not isinstance(o, Conflict)]
    for outcome, (task, user) in zip(outcomes, ((mine, "rev1"), (theirs, "rev2")), strict=True):
        if isinstance(outcome, Conflict):  # lost the instance lock race: simply try again
            ready.complete(task, APPROVE, user=user)
    assert succeeded
    assert open_rows(ready, iid) == [("final", None)]
    with ready.read_session() as session:
        finals = session.scalars(select(HumanTask).where(HumanTask.name == "final")).all()
    assert len(finals) == 1


def test_notifications_of_a_return_go_only_to_the_returned_to_person(ready: Engine) -> None:
    iid = start_and_draft(ready)
    ready.return_task(review_task(ready, iid), user="rev1", reason="补充")
    with ready.read_session() as session:
        got = session.scalars(
            select(User.username)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.kind == "return")
        ).all()
    assert got == ["alice"]


# ===================================================================== declarations and shapes
@pytest.mark.parametrize(
    ("process", "words"),
    [
        (lambda: sequential("bad1", returnTargets="nowhere"), ["returnTargets", "nowhere"]),
        (lambda: countersign("bad2", "most"), ["approvalMode", "most"]),
        (lambda: sequential("bad3", approvalMode="all"), ["approvalMode", "多实例"]),
    ],
    ids=["unknown-return-target", "unknown-mode", "mode-on-a-single-task"],
)
def test_approval_declarations_are_checked_at_deploy(
    engine: Engine, deploy: Deploy, process: Callable[[], str], words: list[str]
) -> None:
    with pytest.raises(DefinitionError) as caught:
        deploy({"bad.bpmn": process(), **FORMS})
    assert all(word in caught.value.message for word in words), caught.value.message


def test_return_to_a_step_with_a_boundary_timer_rearms_the_timer(
    engine: Engine, deploy: Deploy, clock: FixedClock
) -> None:
    engine.add_user("alice", "pass1234", roles=["办理人"])
    engine.add_user("bob", "pass1234", roles=["办理人"])
    deploy({"approval.bpmn": approval_process()})  # 审核 (2-day deadline → 督办) → 复核
    iid = engine.start("approval", user="alice")["id"]
    engine.complete(only(engine, "alice", iid)["id"], {}, user="alice")
    clock.set(clock.now() + timedelta(days=1))

    engine.return_task(only(engine, "bob", iid)["id"], user="bob", reason="重审")

    assert open_rows(engine, iid) == [("review", "alice")]
    clock.set(clock.now() + timedelta(days=1, hours=12))  # 2.5 days after the first start
    assert engine.fire_due_timers() == 0  # the deadline counts from the return
    clock.set(clock.now() + timedelta(days=1))
    assert engine.fire_due_timers() == 1
    assert open_rows(engine, iid) == [("escalate", None)]


def test_a_return_in_a_loop_reaches_back_only_within_the_round(
    engine: Engine, deploy: Deploy
) -> None:
    engine.add_user("drafter", "pass1234", roles=["经办人"])
    engine.add_user("reviewer", "pass1234", roles=["审核人"])
    deploy({"revise.bpmn": review_process(), **LOOP_FORMS})
    iid = engine.start("revise", user="drafter")["id"]
    for n in range(3):  # the modelled return path: decision == 'return' loops back to 起草
        engine.complete(only(engine, "drafter", iid)["id"], {"content": f"第{n}稿"}, user="drafter")
        review = only(engine, "reviewer", iid)["id"]
        if n < 2:
            engine.complete(review, {"decision": "return", "reason": "改"}, user="reviewer")

    targets = engine.return_targets(review, "reviewer")

    assert [t["to"] for t in targets] == ["draft"]
    engine.return_task(review, user="reviewer", reason="退回操作")
    draft = only(engine, "drafter", iid)
    assert engine.task(draft["id"], "drafter")["data"]["content"] == "第2稿"


def test_admin_resets_a_failed_instance_back_to_work(engine: Engine, deploy: Deploy) -> None:
    engine.add_user("alice", "pass1234", roles=["经办人"])
    engine.add_user("admin", "pass1234", roles=["系统管理员"])
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + user_task("fill", "填写", "f1", "f2", form="fill.json")
        + '<bpmn:scriptTask id="compute" name="计算"><bpmn:incoming>f2</bpmn:incoming>'
        "<bpmn:outgoing>f3</bpmn:outgoing><bpmn:script>total = base * 2</bpmn:script>"
        "</bpmn:scriptTask>"
        + user_task("check", "核对", "f3", "f4")
        + '<bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "fill")
        + flow("f2", "fill", "compute")
        + flow("f3", "compute", "check")
        + flow("f4", "check", "end")
    )
    fill_form = {"type": "object", "properties": {"base": {"type": "integer"}, "note": {}}}
    deploy(
        {
            "calc.bpmn": bpmn("calc", body, lanes={"经办人": ["start", "fill", "check", "end"]}),
            "fill.json": json.dumps(fill_form),
        }
    )
    iid = engine.start("calc", user="alice")["id"]
    engine.complete(only(engine, "alice", iid)["id"], {"note": "漏填 base"}, user="alice")
    assert engine.instance(iid)["status"] == "error"

    engine.reset(iid, "fill", user="admin", reason="补填基数")

    assert engine.instance(iid)["status"] == "running"
    fill = only(engine, "alice", iid)
    engine.complete(fill["id"], {"base": 21}, user="alice")
    assert engine.instance(iid)["data"]["total"] == 42
