"""The service-task registry: BPMN service tasks name a handler; the sandbox calls it here.

Handlers register with `@handler(name)`: engine/handlers.py holds the generic ones; a domain
package registers its own when imported (`import office` adds the office's figures), so the
engine never imports the domain. A command that runs the process on does so inside
`serving(run)`, so a handler works in that command's transaction. The registry knows no
handler, so the runtime imports it without a cycle.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .bpmn import json_safe

# A handler takes the runtime.Run that reached the service task and the task's parameter values.
# The run is typed loosely here so that runtime, which serves calls, can import this module.
Handler = Callable[[Any, dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}
_current_run: ContextVar[Any] = ContextVar("duban_current_run", default=None)


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[name] = function
        return function

    return register


@contextmanager
def serving(run: Any) -> Iterator[None]:
    """Service tasks reached while this runs belong to `run`."""
    token = _current_run.set(run)
    try:
        yield
    finally:
        _current_run.reset(token)


def call_service(name: str, params: dict[str, Any]) -> str:
    """The sandbox's service caller: dispatch to the registered handler, answer JSON."""
    run = _current_run.get()
    function = HANDLERS.get(name)
    if function is None:
        raise LookupError(f"未知的服务任务处理程序“{name}”，可用：{'、'.join(sorted(HANDLERS))}")
    if run is None:
        raise RuntimeError("服务任务只能在流程命令中运行")
    values = {key: param.get("value") for key, param in params.items()}
    return json.dumps(json_safe(function(run, values)), ensure_ascii=False)
