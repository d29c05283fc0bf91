"""Approval operations through the Engine API — 转办, 委派, 加签, 会签/或签, 退回, 撤回, 催办,
抄送, 审批意见, the admin's reassign and reset — on a sequential step, inside parallel branches
and in multi-instance steps; their refusals (each in Chinese, each changing nothing) and
their races."""

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import (
    Conflict,
    DefinitionError,
    Engine,
    EngineError,
    FixedClock,
    Forbidden,
    InvalidData,
)
from engine.models import HumanTask, Notification, User
from tests.approval_processes import (
    APPROVE,
    FORMS,
    add_people,
    countersign,
    deploy_all,
    only,
    open_rows,
    sequential,
    snapshot,
    start_and_draft,
    todo,
)
from tests.test_concurrency import approval_process
from tests.test_loops import DRAFT_FORM, REVIEW_FORM, review_process

LOOP_FORMS = {
    "draft.json": json.dumps(DRAFT_FORM, ensure_ascii=False),
    "review.json": json.dumps(REVIEW_FORM, ensure_ascii=False),
}

CHINESE = re.compile(r"[\u4e00-\u9fff]")
Deploy = Callable[..., Any]


@pytest.fixture
def ready(engine: Engine, deploy: Deploy) -> Engine:
    add_people(engine)
    deploy_all(deploy)
    return engine


def notified(engine: Engine, user: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in engine.notifications(user)["items"] if n["kind"] == kind]


def opinions(engine: Engine, instance_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(o["kind"], o["actor"], o["text"]) for o in engine.instance(instance_id)["opinions"]]


def refused(
    engine: Engine, instance_id: int, error: type[EngineError], command: Callable[[], object]
) -> EngineError:
    """Run a command that must be refused; it changes nothing and says why in Chinese."""
    before = snapshot(engine, instance_id)
    with pytest.raises(error) as caught:
        command()
    assert CHINESE.search(caught.value.message), caught.value.message
    assert snapshot(engine, instance_id) == before
    return caught.value


def review_task(engine: Engine, instance_id: int, user: str = "rev1") -> str:
    task = only(engine, user, instance_id, "review")
    engine.claim(task["id"], user)
    return task["id"]


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

    refused(ready, iid, Forbidden, lambda: ready.transfer(task_id, "carol", user="rev2"))
    refused(ready, iid, Forbidden, lambda: ready.transfer(task_id, "carol", user="carol"))
    error = refused(ready, iid, InvalidData, lambda: ready.transfer(task_id, "nobody", user="rev1"))
    assert "nobody" in error.errors["to"]
    refused(ready, iid, InvalidData, lambda: ready.transfer(task_id, "rev1", user="rev1"))
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
    ready.transfer(mine["id"], "carol", user="rev1")
    assert open_rows(ready, sign) == [("countersign", "carol"), ("countersign", "rev2")]
    ready.complete(mine["id"], APPROVE, user="carol")
    ready.complete(only(ready, "rev2", sign)["id"], APPROVE, user="rev2")
    assert open_rows(ready, sign) == [("final", None)]


# ===================================================================== 委派
def test_delegate_comes_back_to_the_owner_to_confirm(ready: Engine) -> None:
    iid = start_and_draft(ready)
    task_id = review_task(ready, iid)

    ready.delegate(task_id, "carol", user="rev1", opinion="请先核对数据")
    assert todo(ready, "rev1", iid) == [] and only(ready, "carol", iid)["id"] == task_id
    refused(ready, iid, Forbidden, lambda: ready.complete(task_id, APPROVE, user="rev1"))
    refused(ready, iid, Conflict, lambda: ready.transfer(task_id, "rev2", user="carol"))

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
    refused(ready, iid, Forbidden, lambda: ready.add_signers(task_id, ["lead"], user="rev2"))
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
    ready.add_signers(task_id, ["lead"], user="rev1")

    ready.return_task(only(ready, "lead", iid)["id"], user="lead", reason="依据不足")

    assert open_rows(ready, iid) == [("draft", "alice")]
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
    refused(ready, iid, Forbidden, lambda: ready.return_task(task_id, user="rev2", reason="x"))
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
    from engine import operations

    iid = start_and_draft(ready)
    with ready.command() as (session, ctx):
        row = session.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).all()[-1]
        sent = operations.urge_task(session, ctx.now, row, message="即将到期")
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
def race(*commands: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(commands))

    def attempt(command: Callable[[], object]) -> object:
        barrier.wait(timeout=30)
        try:
            return command()
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(len(commands)) as pool:
        futures = [pool.submit(attempt, command) for command in commands]
        return [future.result(timeout=120) for future in futures]


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
