"""转办, 委派, 加签, 会签/或签, 催办, 抄送, boxes, 审批意见 and admin reassign through the Engine
API, on a sequential step, in parallel branches and in multi-instance steps, with refusals that
change nothing (退回, 撤回, reset and races: test_operations_return.py)."""

import pytest
from sqlalchemy import select

from engine import Conflict, Engine, EngineError, Forbidden, InvalidData, urging
from engine.models import HumanTask
from tests.approval_processes import (
    APPROVE,
    FORMS,
    Deploy,
    add_people,
    notified,
    only,
    open_rows,
    opinions,
    ready,
    refused,
    review_task,
    sequential,
    start_and_draft,
    todo,
)

__all__ = ["ready"]  # the fixture, imported for pytest


# ===================================================================== 转办
def test_transfer_gives_the_task_to_another_person(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.transfer(task_id, "carol", user="rev1", opinion="请赵六办理")

    assert todo(ready, "rev1", iid) == [] and only(ready, "carol", iid)["id"] == task_id
    assert notified(ready, "carol", "task")[0]["title"] == "转办：审核"
    ready.complete(task_id, APPROVE, user="carol")
    assert open_rows(ready, iid) == [("sign_off", None)]
    assert opinions(ready, iid)[-2:] == [
        ("transfer", "rev1", "请赵六办理"),
        ("approve", "carol", None),
    ]


def test_transfer_refusals_change_nothing(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    held = refused(ready, iid, Conflict, lambda: ready.transfer(task_id, "carol", user="rev2"))
    assert held.message == "该任务已被审核甲认领"  # rev2, a colleague: told who holds it
    refused(ready, iid, Forbidden, lambda: ready.transfer(task_id, "carol", user="carol"))
    error = refused(ready, iid, InvalidData, lambda: ready.transfer(task_id, "nobody", user="rev1"))
    assert "nobody" in error.errors["to"]
    refused(ready, iid, InvalidData, lambda: ready.transfer(task_id, "rev1", user="rev1"))
    # only someone who may hold the step: alice (经办人) may not hold 审核
    error = refused(ready, iid, InvalidData, lambda: ready.transfer(task_id, "alice", user="rev1"))
    assert error.message.startswith("张三不能办理“审核”：本环节只能转交给")
    refused(ready, iid, InvalidData, lambda: ready.delegate(task_id, "admin", user="rev1"))
    ready.complete(task_id, APPROVE, user="rev1")
    error = refused(ready, iid, Conflict, lambda: ready.transfer(task_id, "carol", user="rev1"))
    assert "已办理" in error.message


def test_transfer_inside_a_parallel_branch_and_a_countersign(ready: Engine) -> None:
    par = start_and_draft(ready, "par")
    branch = only(ready, "lead", par, "review_b")
    ready.transfer(branch["id"], "carol", user="lead")
    assert open_rows(ready, par) == [("review_a", None), ("review_b", "carol")]

    sign = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    mine = only(ready, "rev1", sign)
    # a fellow approver of the 会签 may not take over this vote: they would vote twice
    assert "rev2" not in {c["username"] for c in ready.transfer_candidates(mine["id"], "rev1")}
    refused(ready, sign, InvalidData, lambda: ready.transfer(mine["id"], "rev2", user="rev1"))
    ready.transfer(mine["id"], "carol", user="rev1")
    assert open_rows(ready, sign) == [("countersign", "carol"), ("countersign", "rev2")]
    ready.complete(mine["id"], APPROVE, user="carol")
    ready.complete(only(ready, "rev2", sign)["id"], APPROVE, user="rev2")
    assert open_rows(ready, sign) == [("final", None)]


def test_only_this_rounds_fellow_votes_are_barred(ready: Engine) -> None:
    """An earlier round's holder of a step is a colleague like any other: after the draft is
    sent back and resubmitted, rev1, who reviewed it before, may be handed the new review. The
    test clock stands still, so both rounds' rows carry the same instant."""
    iid = start_and_draft(ready)
    ready.complete(review_task(ready, iid), APPROVE, user="rev1")
    sign_off = only(ready, "lead", iid, "sign_off")
    ready.return_task(sign_off["id"], user="lead", reason="请重写", to="initiator")
    ready.complete(only(ready, "alice", iid, "draft")["id"], {"content": "二稿"}, user="alice")
    again = only(ready, "rev2", iid, "review")["id"]
    ready.claim(again, "rev2")

    assert "rev1" in {c["username"] for c in ready.transfer_candidates(again, "rev2")}
    ready.transfer(again, "rev1", user="rev2")
    assert open_rows(ready, iid) == [("review", "rev1")]


# ===================================================================== 委派
def test_delegate_comes_back_to_the_owner_to_confirm(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.delegate(task_id, "carol", user="rev1", opinion="请先核对数据")
    assert todo(ready, "rev1", iid) == [] and only(ready, "carol", iid)["id"] == task_id
    refused(ready, iid, Forbidden, lambda: ready.complete(task_id, APPROVE, user="rev1"))
    refused(ready, iid, Conflict, lambda: ready.transfer(task_id, "rev2", user="carol"))
    refused(ready, iid, Conflict, lambda: ready.return_task(task_id, user="carol", reason="x"))

    ready.complete(task_id, {"decision": "approve", "reason": "数据无误"}, user="carol")

    back = ready.task(task_id, "rev1")
    assert (back["assignee"], back["owner"], back["delegation"]) == ("rev1", "rev1", "resolved")
    assert back["data"]["reason"] == "数据无误"
    assert notified(ready, "rev1", "task")[0]["title"].startswith("委派任务已处理")
    ready.complete(task_id, APPROVE, user="rev1", opinion="同意")
    assert open_rows(ready, iid) == [("sign_off", None)]
    kinds = [(kind, actor) for kind, actor, _ in opinions(ready, iid)[-3:]]
    assert kinds == [("delegate", "rev1"), ("resolve", "carol"), ("approve", "rev1")]


def test_delegate_in_a_branch_and_a_countersign(ready: Engine) -> None:
    par = start_and_draft(ready, "par")
    branch = only(ready, "lead", par, "review_b")
    ready.delegate(branch["id"], "carol", user="lead")
    ready.complete(branch["id"], APPROVE, user="carol")
    ready.complete(branch["id"], APPROVE, user="lead")
    assert open_rows(ready, par) == [("review_a", None)]

    sign = start_and_draft(ready, "sign_any", approvers=["rev1", "rev2"])
    mine = only(ready, "rev1", sign)
    ready.delegate(mine["id"], "carol", user="rev1")
    ready.complete(mine["id"], APPROVE, user="carol")
    ready.complete(mine["id"], APPROVE, user="rev1")
    assert open_rows(ready, sign) == [("final", None)]  # 或签: one approval is enough


# ===================================================================== 加签
def test_signers_before_sign_first_then_the_approver_acts(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.add_signers(task_id, ["lead", "carol"], user="rev1", opinion="请领导先签")

    assert todo(ready, "rev1", iid) == []
    error = refused(ready, iid, Conflict, lambda: ready.complete(task_id, APPROVE, user="rev1"))
    assert "加签" in error.message
    for signer in ("lead", "carol"):
        signature = only(ready, signer, iid)
        assert signature["kind"] == "sign" and signature["title"] == "审核（加签）"
        ready.complete(signature["id"], {}, user=signer, opinion=f"{signer} 已阅")
        assert ready.tasks(signer, box="done")["items"][0]["id"] == signature["id"]
    assert only(ready, "rev1", iid)["id"] == task_id
    ready.complete(task_id, APPROVE, user="rev1")
    assert open_rows(ready, iid) == [("sign_off", None)]
    assert [k for k, _, _ in opinions(ready, iid)][-4:] == [
        "add_signers",
        "sign",
        "sign",
        "approve",
    ]


def test_signers_after_the_step_completes_only_when_all_have_signed(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.add_signers(task_id, ["lead"], user="rev1", before=False, data=APPROVE)
    assert open_rows(ready, iid) == [("review", "lead")]  # only the signature is open

    ready.complete(only(ready, "lead", iid)["id"], {}, user="lead", opinion="同意")

    assert open_rows(ready, iid) == [("sign_off", None)]
    detail = ready.instance(iid)
    assert detail["data"]["decision"] == "approve"
    step = next(t for t in detail["tasks"] if t["id"] == task_id)
    assert (step["state"], step["assignee"]) == ("completed", "rev1")


def test_add_signer_refusals(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)
    refused(ready, iid, Conflict, lambda: ready.add_signers(task_id, ["lead"], user="rev2"))
    refused(ready, iid, InvalidData, lambda: ready.add_signers(task_id, [], user="rev1"))
    refused(ready, iid, InvalidData, lambda: ready.add_signers(task_id, ["rev1"], user="rev1"))
    refused(
        ready,
        iid,
        InvalidData,  # after-signing: the approver's own data must be valid now
        lambda: ready.add_signers(task_id, ["lead"], user="rev1", before=False, data={}),
    )


def test_a_signer_returns_the_step(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)
    ready.add_signers(task_id, ["lead", "carol"], user="rev1")

    ready.return_task(only(ready, "lead", iid)["id"], user="lead", reason="依据不足")

    assert open_rows(ready, iid) == [("draft", "alice")]  # carol's signature went with it
    assert ready.task(task_id, "rev1")["state"] == "returned"


def test_signers_in_a_branch_and_in_a_countersign(ready: Engine) -> None:
    par = start_and_draft(ready, "par")
    branch = only(ready, "lead", par, "review_b")
    ready.add_signers(branch["id"], ["carol"], user="lead", before=False, data=APPROVE)
    ready.complete(only(ready, "carol", par)["id"], {}, user="carol")
    assert open_rows(ready, par) == [("review_a", None)]

    sign = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    mine = only(ready, "rev1", sign)
    ready.add_signers(mine["id"], ["lead"], user="rev1")
    ready.complete(only(ready, "lead", sign)["id"], {}, user="lead")
    ready.complete(mine["id"], APPROVE, user="rev1")
    ready.complete(only(ready, "rev2", sign)["id"], APPROVE, user="rev2")
    assert open_rows(ready, sign) == [("final", None)]


# ===================================================================== 会签 / 或签
def test_countersign_completes_when_every_approver_has_approved(ready: Engine) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2", "rev3"])
    assert open_rows(ready, iid) == [("countersign", u) for u in ("rev1", "rev2", "rev3")]

    for user in ("rev1", "rev2"):
        ready.complete(only(ready, user, iid)["id"], APPROVE, user=user, opinion="同意")
        assert ("final", None) not in open_rows(ready, iid)
    ready.complete(only(ready, "rev3", iid)["id"], APPROVE, user="rev3")

    assert open_rows(ready, iid) == [("final", None)]
    votes = ready.instance(iid)["data"]["votes"]
    assert sorted(v["user"] for v in votes) == ["rev1", "rev2", "rev3"]
    assert [k for k, _, _ in opinions(ready, iid)].count("approve") == 3


def test_or_sign_completes_at_the_first_approval(ready: Engine) -> None:
    iid = start_and_draft(ready, "sign_any", approvers=["rev1", "rev2", "rev3"])

    ready.complete(only(ready, "rev2", iid)["id"], APPROVE, user="rev2")

    assert open_rows(ready, iid) == [("final", None)]
    assert todo(ready, "rev1", iid) == [] and todo(ready, "rev3", iid) == []


@pytest.mark.parametrize("how", ["form-decision", "return-operation"])
def test_one_return_returns_the_whole_countersign(ready: Engine, how: str) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2", "rev3"])
    ready.complete(only(ready, "rev1", iid)["id"], APPROVE, user="rev1")
    mine = only(ready, "rev2", iid)["id"]

    if how == "form-decision":
        ready.complete(mine, {"decision": "return", "reason": "金额有误"}, user="rev2")
    else:
        ready.return_task(mine, user="rev2", reason="金额有误")

    assert open_rows(ready, iid) == [("draft", "alice")]
    draft = only(ready, "alice", iid)
    assert ready.task(draft["id"], "alice")["return_reason"] == "金额有误"
    ready.complete(draft["id"], {"content": "改稿"}, user="alice")
    assert open_rows(ready, iid) == [("countersign", u) for u in ("rev1", "rev2", "rev3")]
    for user in ("rev1", "rev2", "rev3"):
        ready.complete(only(ready, user, iid)["id"], APPROVE, user=user)
    assert open_rows(ready, iid) == [("final", None)]
    assert len(ready.instance(iid)["data"]["votes"]) == 3  # no vote of the first round left


def test_returning_to_a_countersign_reopens_every_approver_with_their_vote(ready: Engine) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    for user in ("rev1", "rev2"):
        ready.complete(only(ready, user, iid)["id"], {"decision": "approve"}, user=user)
    final = only(ready, "alice", iid, "final")

    ready.return_task(final["id"], user="alice", reason="请重新会签")

    assert open_rows(ready, iid) == [("countersign", "rev1"), ("countersign", "rev2")]
    reopened = only(ready, "rev1", iid)
    detail = ready.task(reopened["id"], "rev1")
    assert (detail["data"]["decision"], detail["return_reason"]) == ("approve", "请重新会签")
    assert notified(ready, "rev2", "return")[0]["body"] == "请重新会签"


def test_an_approver_in_a_countersign_cannot_withdraw_a_single_vote(ready: Engine) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    mine = only(ready, "rev1", iid)["id"]
    ready.complete(mine, APPROVE, user="rev1")
    error = refused(ready, iid, Conflict, lambda: ready.withdraw(mine, user="rev1"))
    assert "会签" in error.message


def test_a_half_done_countersign_survives_an_engine_restart(ready: Engine) -> None:
    iid = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    ready.complete(only(ready, "rev1", iid)["id"], APPROVE, user="rev1")
    fresh = Engine(db=ready.db, clock=ready.clock)  # parses the spec anew, as a new process would

    fresh.complete(only(fresh, "rev2", iid)["id"], APPROVE, user="rev2")

    assert open_rows(fresh, iid) == [("final", None)]


# ===================================================================== 催办
def test_urge_counts_logs_and_notifies(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = only(ready, "rev1", iid)["id"]

    first = ready.urge(task_id, user="alice", message="请尽快审核")
    second = ready.urge(task_id, user="admin")

    assert (first["urge_count"], second["urge_count"]) == (1, 2)
    assert first["notified"] == 3  # the pool: rev1, rev2, rev3
    assert notified(ready, "rev2", "reminder")[-1]["body"] == "请尽快审核"  # newest first
    assert only(ready, "rev1", iid)["urge_count"] == 2
    kinds = [h["kind"] for h in ready.instance(iid)["history"]]
    assert kinds.count("task_urged") == 2
    refused(ready, iid, Forbidden, lambda: ready.urge(task_id, user="carol"))


def test_urge_reaches_signers_a_branch_and_countersign_approvers(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)
    ready.add_signers(task_id, ["lead"], user="rev1")
    ready.urge(task_id, user="alice")
    assert notified(ready, "lead", "reminder")

    par = start_and_draft(ready, "par")
    assert ready.urge(only(ready, "lead", par)["id"], user="alice")["notified"] == 1

    sign = start_and_draft(ready, "sign_all", approvers=["rev1", "rev2"])
    assert ready.urge(only(ready, "rev2", sign)["id"], user="alice")["notified"] == 1


def test_urge_is_the_function_timers_call(ready: Engine) -> None:
    iid = start_and_draft(ready)
    with ready.command() as (session, ctx):
        row = session.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).all()[-1]
        sent = urging.urge_task(session, ctx.now, row, message="即将到期")
    assert sent == 3
    assert only(ready, "rev3", iid)["urge_count"] == 1


# ===================================================================== 抄送
def test_cc_chosen_by_the_sender_shows_in_the_cc_box_until_read(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.cc(task_id, ["carol", "lead"], user="rev1", opinion="请知悉")

    box = ready.tasks("carol", box="cc")
    assert box["total"] == 1
    entry = box["items"][0]
    assert (entry["instance_id"], entry["sender"], entry["read_at"]) == (iid, "rev1", None)
    assert ready.instance(iid, "carol")["id"] == iid
    read = ready.mark_cc_read(entry["id"], "carol")
    assert read["read_at"] and ready.tasks("carol", box="cc")["items"][0]["read_at"]
    with pytest.raises(EngineError):
        ready.mark_cc_read(entry["id"], "lead_unknown")
    refused(ready, iid, Forbidden, lambda: ready.cc(task_id, ["carol"], user="bob"))
    refused(ready, iid, InvalidData, lambda: ready.cc(task_id, ["ghost"], user="rev1"))


def test_cc_declared_in_bpmn_is_sent_when_the_step_completes(
    engine: Engine, deploy: Deploy
) -> None:
    add_people(engine)
    deploy({"cc.bpmn": sequential("cc", ccUsers="watchers", ccRoles="审核人"), **FORMS})
    iid = start_and_draft(engine, "cc", watchers=["carol"])
    engine.complete(review_task(engine, iid), APPROVE, user="rev1")
    assert engine.tasks("carol", box="cc")["total"] == 0
    engine.complete(only(engine, "lead", iid)["id"], APPROVE, user="lead")
    for user in ("carol", "rev1", "rev2"):
        assert engine.tasks(user, box="cc")["items"][0]["instance_id"] == iid
    assert notified(engine, "carol", "cc")


# ===================================================================== boxes and opinions
def test_boxes_answer_todo_done_cc_and_started(ready: Engine) -> None:
    iid = start_and_draft(ready)
    assert ready.tasks("alice", box="todo")["total"] == 0
    done = ready.tasks("alice", box="done")["items"]
    assert [(t["name"], t["state"], t["instance_status"]) for t in done] == [
        ("draft", "completed", "running")
    ]
    started = ready.tasks("alice", box="started")["items"]
    assert [(s["id"], s["current"]) for s in started] == [(iid, ["审核"])]
    assert ready.tasks("rev1", box="todo")["total"] == 1
    with pytest.raises(InvalidData):
        ready.tasks("alice", box="trash")


def test_opinions_are_listed_in_order_on_the_instance(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)
    ready.transfer(task_id, "rev2", user="rev1", opinion="转审核乙")
    ready.complete(task_id, APPROVE, user="rev2", opinion="同意上报")
    ready.complete(only(ready, "lead", iid)["id"], APPROVE, user="lead", opinion="签发")

    assert opinions(ready, iid) == [
        ("complete", "alice", None),
        ("transfer", "rev1", "转审核乙"),
        ("approve", "rev2", "同意上报"),
        ("approve", "lead", "签发"),
    ]
    stamps = [o["at"] for o in ready.instance(iid)["opinions"]]
    assert stamps == sorted(stamps)


# ===================================================================== admin
def test_admin_reassigns_any_task_with_a_reason(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)
    refused(
        ready, iid, Forbidden, lambda: ready.reassign(task_id, "carol", user="rev1", reason="x")
    )
    refused(
        ready, iid, InvalidData, lambda: ready.reassign(task_id, "carol", user="admin", reason="")
    )

    ready.reassign(task_id, "carol", user="admin", reason="审核甲休假")

    assert only(ready, "carol", iid)["id"] == task_id
    events = [h for h in ready.instance(iid)["history"] if h["kind"] == "task_reassigned"]
    assert events[0]["reason"] == "审核甲休假" and events[0]["actor"] == "admin"
