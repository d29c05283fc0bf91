"""The task page: the form drawn from its JSON Schema with the instance's context above it,
同意 / 退回 on approval steps, drafts, and 转办 / 委派 / 加签 / 退回 / 撤回 / 催办 / 抄送."""

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from engine import Conflict, Engine, InvalidData
from engine.errors import EngineError

from . import forms
from .auth import current_username, login_required
from .extensions import get_engine
from .pages import local_path

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _engine() -> Engine:
    return get_engine(current_app)


@bp.get("/<task_id>")
@login_required
def show(task_id: str) -> str:
    return _page(task_id)


def _page(
    task_id: str,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    opinion: str | None = None,
    message: str | None = None,
) -> str:
    engine, user = _engine(), current_username()
    task = engine.task(task_id, user)
    is_open = task["state"] == "open"
    # the assignee, or (unclaimed) a candidate: the engine checks which when it acts
    mine = is_open and task["assignee"] in (user, None)
    # a submission refused because someone else holds (or finished) the task: what was typed
    # comes back in the form, to copy, rather than being lost
    kept = typed is not None and not mine
    draft = None
    data = task.get("data") or {}
    if typed is None and mine:
        draft = engine.task_draft(task_id, user)
        if draft:
            data, opinion = {**data, **draft["data"]}, draft["opinion"]
    schema = task.get("form")
    decisions = forms.decision_options(schema)
    choices = engine.directory_choices()
    names = {u["code"]: u["name"] for u in choices["units"]}
    names.update({u["username"]: u["name"] for u in choices["users"]})
    shown = forms.fields(
        schema,
        typed if typed is not None else data,
        errors,
        choices,
        skip=("decision",) if decisions else (),
    )
    context = _context(engine, task, data, schema, names)
    if message is None and is_open and task["assignee"] not in (user, None):
        message = _held(task, names)
    return render_template(
        "tasks/show.html",
        task=task,
        fields=shown,
        decisions=decisions,
        mine=mine,
        kept=kept,
        claimable=is_open and task["assignee"] is None,
        draft=draft,
        opinion=opinion or "",
        errors=errors or {},
        message=message,
        context=context,
        instance=engine.instance_labels([task["instance_id"]]).get(task["instance_id"], {}),
        people=choices["users"] if mine else [],
        # 转办 / 委派 offer only the people who may hold this step (the engine refuses others)
        holders=_holders(engine, task_id, user) if mine else [],
        names=names,
        targets=_return_targets(engine, task_id, user) if mine else [],
        withdrawable=task["state"] == "completed" and engine.completed_by(task_id, user),
        me=user,
        files=engine.instance_attachments(task["instance_id"], user),
    )


def _context(
    engine: Engine,
    task: dict[str, Any],
    data: dict[str, Any],
    schema: dict[str, Any] | None,
    names: dict[str, str],
) -> list[tuple[str, Any]]:
    """What earlier steps produced (the data outside this form), with the forms' titles and
    units and people by name rather than code."""
    own = set(((schema or {}).get("properties") or {}).keys())
    titles = engine.field_titles(task["instance_id"])
    return [
        (titles.get(key, key), named(value, names))
        for key, value in data.items()
        if key not in own and key in titles and value not in (None, "", [], {})
    ]


def named(value: Any, names: dict[str, str]) -> Any:
    """Unit codes and usernames inside a value, replaced by their Chinese names."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [named(v, names) for v in value]
    if isinstance(value, dict):
        return {k: named(v, names) for k, v in value.items()}
    return value


def _held(task: dict[str, Any], names: dict[str, str]) -> str:
    """Who holds an open task now, as the engine says when someone else acts on it."""
    holder = names.get(task["assignee"], task["assignee"])
    if task.get("delegation") == "pending":
        return f"该任务已委派给{holder}办理"
    return f"该任务已被{holder}认领"


def _holders(engine: Engine, task_id: str, user: str) -> list[dict[str, Any]]:
    """Who 转办 / 委派 may hand the task to; none when the caller may not act on it."""
    try:
        return engine.transfer_candidates(task_id, user)
    except EngineError:
        return []


def _return_targets(engine: Engine, task_id: str, user: str) -> list[dict[str, Any]]:
    try:
        return engine.return_targets(task_id, user)
    except EngineError:  # not returnable from here: the page simply offers no 退回 dialog
        return []
    except Exception:  # the dialog is optional; the task itself must still open
        current_app.logger.exception("return targets of task %s", task_id)
        return []


@bp.post("/<task_id>")
@login_required
def complete(task_id: str) -> Any:
    engine, user = _engine(), current_username()
    task = engine.task(task_id, user)
    schema = task.get("form")
    refused: dict[str, str] = {}
    overtaken: list[str] = []
    store = _uploader(engine, task_id, refused, overtaken)
    data = forms.read(schema, request.form, request.files, store)
    decision = request.form.get("decision")
    if decision:
        data["decision"] = decision
    opinion = request.form.get("_opinion", "").strip() or None
    if overtaken:
        return _page(task_id, data, None, opinion, overtaken[0]), 409
    if refused:  # files kept so far stay on the page; the refused ones are named
        return _page(task_id, data, refused, opinion, "；".join(refused.values())), 422
    try:
        engine.complete(task_id, data, user=user, opinion=opinion)
    except InvalidData as exc:
        return _page(task_id, data, exc.errors, opinion, exc.message), 422
    except Conflict as exc:  # claimed by a colleague, or closed, since the page was opened
        return _page(task_id, data, None, opinion, exc.message), 409
    engine.discard_task_draft(task_id, user, everyone=True)
    flash(f"“{task['title']}”已提交", "ok")
    return redirect(url_for("inbox.index"))


def _uploader(
    engine: Engine, task_id: str, refused: dict[str, str], overtaken: list[str]
) -> forms.Store:
    """Keep each uploaded file through the engine; a refusal is noted under its field, a
    conflict (the task is someone else's now) in `overtaken`."""

    def store(path: str, upload: FileStorage) -> dict[str, Any] | None:
        try:
            kept = engine.add_attachment(
                task_id, upload.filename or "", upload.mimetype, upload.read(), current_username()
            )
        except InvalidData as exc:
            refused[path] = exc.message
            return None
        except Conflict as exc:
            overtaken.append(exc.message)
            return None
        return {"name": kept["name"], "id": kept["id"], "size": kept["size"]}

    return store


@bp.post("/<task_id>/draft")
@login_required
def save_draft(task_id: str) -> Any:
    engine, user = _engine(), current_username()
    task = engine.task(task_id, user)
    data = forms.read(task.get("form"), request.form)
    fetched = request.headers.get("X-Requested-With") == "fetch"  # the page's autosave
    try:
        saved = engine.save_task_draft(
            task_id, data, user=user, opinion=request.form.get("_opinion", "").strip() or None
        )
    except Conflict as exc:  # e.g. a colleague claimed it: the autosave shows who
        if fetched:
            return jsonify(exc.to_dict()), 409
        raise
    if fetched:
        return jsonify(saved)
    flash("草稿已保存，下次打开本任务时自动恢复", "ok")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<task_id>/claim")
@login_required
def claim(task_id: str) -> Response:
    _engine().claim(task_id, current_username())
    flash("已认领", "ok")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Response:
    _engine().unclaim(task_id, current_username())
    flash("已退回任务池，本单位其他同事可认领", "ok")
    return redirect(url_for("inbox.index"))


# ------------------------------------------------------------------ approval operations
def _opinion() -> str | None:
    return request.form.get("opinion", "").strip() or None


def _operation(task_id: str, done: str, call: Any, back_to_task: bool = False) -> Response:
    """Run one operation; a refusal of the input comes back as a message on the task page."""
    try:
        call()
    except InvalidData as exc:
        flash(exc.message if not exc.errors else "；".join(exc.errors.values()), "error")
        return redirect(url_for("tasks.show", task_id=task_id))
    flash(done, "ok")
    if back_to_task:
        return redirect(url_for("tasks.show", task_id=task_id))
    return redirect(url_for("inbox.index"))


@bp.post("/<task_id>/transfer")
@login_required
def transfer(task_id: str) -> Response:
    to = request.form.get("to", "")
    return _operation(
        task_id,
        "已转办",
        lambda: _engine().transfer(task_id, to, user=current_username(), opinion=_opinion()),
    )


@bp.post("/<task_id>/delegate")
@login_required
def delegate(task_id: str) -> Response:
    to = request.form.get("to", "")
    return _operation(
        task_id,
        "已委派，对方办理后任务回到您这里",
        lambda: _engine().delegate(task_id, to, user=current_username(), opinion=_opinion()),
    )


@bp.post("/<task_id>/add-signers")
@login_required
def add_signers(task_id: str) -> Response:
    users = [u for u in request.form.getlist("users") if u]
    before = request.form.get("before", "1") == "1"
    return _operation(
        task_id,
        "已加签",
        lambda: _engine().add_signers(
            task_id, users, user=current_username(), before=before, opinion=_opinion()
        ),
        back_to_task=True,
    )


@bp.post("/<task_id>/return")
@login_required
def return_task(task_id: str) -> Response:
    to = request.form.get("to") or None
    reason = request.form.get("reason", "")
    return _operation(
        task_id,
        "已退回",
        lambda: _engine().return_task(task_id, user=current_username(), reason=reason, to=to),
    )


@bp.post("/<task_id>/withdraw")
@login_required
def withdraw(task_id: str) -> Response:
    return _operation(
        task_id,
        "已撤回，任务重新回到您的待办",
        lambda: _engine().withdraw(task_id, user=current_username(), opinion=_opinion()),
    )


@bp.post("/<task_id>/urge")
@login_required
def urge(task_id: str) -> Response:
    message = request.form.get("message", "").strip() or None
    _engine().urge(task_id, user=current_username(), message=message)
    flash("已催办，办理人会收到提醒", "ok")
    return redirect(local_path(request.form.get("back"), url_for("tasks.show", task_id=task_id)))


@bp.post("/<task_id>/cc")
@login_required
def cc(task_id: str) -> Response:
    users = [u for u in request.form.getlist("users") if u]
    return _operation(
        task_id,
        "已抄送",
        lambda: _engine().cc(task_id, users, user=current_username(), opinion=_opinion()),
        back_to_task=True,
    )
