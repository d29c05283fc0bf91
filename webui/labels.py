"""The Chinese names of the engine's codes: one table each for instance statuses, task states,
audit event kinds, opinion kinds, lights and timer kinds. Pages and templates name a code only
through these tables (the Jinja filters in pages.py), so a status reads the same everywhere:
suspended is 已挂起 on every page, as the console's 挂起 action and the engine's refusals say.
tests/test_labels.py checks that every status and audit kind the engine has is named here."""

from collections.abc import Mapping
from typing import Any

INSTANCE_STATUSES = {
    "running": "办理中",
    "completed": "已办结",
    "error": "出错",
    "suspended": "已挂起",
    "terminated": "已终止",
}
TASK_STATES = {
    "open": "待办",
    "waiting": "等待中",  # for 加签 signers
    "completed": "已办结",
    "returned": "已退回",
    "withdrawn": "已撤回",
    "cancelled": "已取消",
}
EVENTS = {
    # people at work on a process
    "instance_started": "发起流程",
    "instance_completed": "流程办结",
    "instance_error": "流程出错",
    "instance_terminated": "终止流程",
    "instance_suspended": "挂起流程",
    "instance_resumed": "恢复流程",
    "instance_retried": "重试流程",
    "instance_reset": "重置流程",
    "instance_migrated": "迁移到新版本",
    "instance_copied": "抄送",
    "children_started": "发起子流程",
    "document_rendered": "生成文书",
    "attachment_added": "上传附件",
    "attachment_removed": "清理未提交的附件",
    "task_created": "生成待办",
    "task_claimed": "认领",
    "task_unclaimed": "退回任务池",
    "task_completed": "办理",
    "task_returned": "退回",
    "task_withdrawn": "撤回",
    "task_transferred": "转办",
    "task_delegated": "委派",
    "task_delegation_resolved": "委派办结",
    "task_reassigned": "改派",
    "task_urged": "催办",
    "task_escalated": "督办升级",
    "task_signed": "加签意见",
    "task_returned_to_pool": "任务退回待办池",
    "signers_added": "加签",
    "signers_done": "加签完成",
    "timer_fired": "定时触发",
    "message_delivered": "收到消息",
    "cc_warning": "抄送提醒",
    "assignment_warning": "分派提醒",
    # administration (运维控制台, 流程设计)
    "access_denied": "越权访问被拒绝",
    "bulk_operation": "批量操作",
    "calendar_changed": "调整工作日历",
    "draft_saved": "保存流程草稿",
    "draft_discarded": "放弃流程草稿",
    "process_deployed": "部署流程",
    "timer_failed": "定时器触发失败",
    "timer_retried": "定时器重新排队",
    "sign_in_failed": "登录失败",
    "signed_in": "登录",
    "signed_out": "退出登录",
    "signed_out_everywhere": "强制退出全部登录",
    "token_issued": "签发令牌",
    "token_revoked": "注销令牌",
    "tokens_revoked": "注销全部令牌",
    "user_added": "新建用户",
    "user_changed": "修改用户",
    "user_deactivated": "停用用户",
    "user_activated": "启用用户",
    "users_imported": "导入用户",
    "unit_added": "新建单位",
    "unit_changed": "修改单位",
    "role_added": "新建角色",
    "role_changed": "修改角色",
}
OPINIONS = {
    "approve": "同意",
    "return": "退回",
    "reject": "不同意",
    "complete": "办理",
    "transfer": "转办",
    "delegate": "委派",
    "resolve": "委派办结",
    "add_signers": "加签",
    "sign": "加签意见",
    "withdraw": "撤回",
    "urge": "催办",
    "cc": "抄送",
    "reassign": "改派",
}
LIGHTS = {"red": "红灯", "yellow": "黄灯", "green": "绿灯"}
TIMER_KINDS = {"boundary": "边界定时", "intermediate": "中间定时", "start": "定时发起"}


def label(table: Mapping[str, str], value: Any) -> str:
    """`value`'s name in `table`; a code the table does not know shows as it is."""
    text = "" if value is None else str(value)
    return table.get(text, text)


def status(value: Any) -> str:
    """An instance's status; a task's state when it is not one (an older page's mix)."""
    text = "" if value is None else str(value)
    return INSTANCE_STATUSES.get(text) or TASK_STATES.get(text, text)


def task_state(value: Any) -> str:
    return label(TASK_STATES, value)


def event(value: Any) -> str:
    return label(EVENTS, value)


def opinion(value: Any) -> str:
    return label(OPINIONS, value)


def light(value: Any) -> str:
    return label(LIGHTS, value)


def timer_kind(value: Any) -> str:
    return label(TIMER_KINDS, value)


# Jinja filter name → function (registered in pages.py with the other filters)
FILTERS = {
    "status": status,
    "task_state": task_state,
    "event": event,
    "opinion_kind": opinion,
    "light_name": light,
    "timer_kind": timer_kind,
}
