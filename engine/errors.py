"""Engine errors. Messages are Chinese (shown to people); `code` is for programs."""

from typing import Any


class EngineError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        body.update(self.detail)
        return body


class NotFound(EngineError):
    code = "not_found"
    status = 404


class NotSignedIn(EngineError):
    """Wrong username or password, or a missing, expired or revoked token."""

    code = "unauthorized"
    status = 401


class SignInLocked(EngineError):
    """Too many failed sign-ins in a row: this username waits before trying again."""

    code = "too_many_attempts"
    status = 429


class TooFrequent(EngineError):
    """The same action again too soon (e.g. 催办 the same task twice within minutes); the
    detail `retry_after` says in how many seconds it may be repeated."""

    code = "too_frequent"
    status = 429


class QuotaExceeded(EngineError):
    """Storing this would pass a person's quota (e.g. unsubmitted uploads in one task)."""

    code = "quota_exceeded"
    status = 413


class Forbidden(EngineError):
    code = "forbidden"
    status = 403


class Conflict(EngineError):
    """Another command changed the instance first, or the task is already done."""

    code = "conflict"
    status = 409


class OperationFailed(Conflict):
    """An operation (退回, 撤回, reset, retry …) could not run the process on; it was rolled
    back whole, so the instance is exactly as it was before."""

    code = "operation_failed"


class DatabaseUnavailable(EngineError):
    """The database cannot be reached, or lost the connection again when the call was run once
    more (engine/reconnect.py). Worth trying again a little later."""

    code = "database_unavailable"
    status = 503

    def __init__(self, message: str = "数据库暂时无法连接，请稍后再试") -> None:
        super().__init__(message)


class InvalidData(EngineError):
    """Form data failed its JSON Schema; `errors` maps each field to a Chinese message."""

    code = "invalid_data"
    status = 422

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message, errors=errors)
        self.errors = errors


class DefinitionError(EngineError):
    """A BPMN/DMN/form bundle that cannot be deployed; names the file and element."""

    code = "invalid_definition"
    status = 422

    def __init__(self, message: str, file: str | None = None, element: str | None = None) -> None:
        super().__init__(message, file=file, element=element)
        self.file = file
        self.element = element


class InstanceNotRunnable(Conflict):
    code = "instance_not_runnable"
