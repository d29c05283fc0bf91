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


class Forbidden(EngineError):
    code = "forbidden"
    status = 403


class Conflict(EngineError):
    """Another command changed the instance first, or the task is already done."""

    code = "conflict"
    status = 409


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
