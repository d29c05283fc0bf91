"""RestrictedPython sandbox with a wall-time limit for SpiffWorkflow scripts and expressions.

The source is compiled with RestrictedPython and the code object goes to TaskDataEnvironment,
which keeps its task-data behaviour (data dict as namespace, shadowing check, clean-up).
"""

import ast
import builtins
import operator as op
import re
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from RestrictedPython import Guards, PrintCollector, RestrictingNodeTransformer, safe_builtins
from RestrictedPython import compile_restricted_eval as _restricted_eval
from RestrictedPython import compile_restricted_exec as _restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, IOPERATOR_TO_STR
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

# (operation name, {parameter: {"value": v, "type": t}}) -> the result as a JSON string
ServiceCaller = Callable[[str, dict[str, Any]], str]


class ScriptTimeout(Exception):
    """The script ran past its time limit."""


class ScriptSecurityError(Exception):
    """The script uses something the sandbox forbids."""


# RestrictedPython's English reasons, translated to Chinese and naming the offending thing.
_REASONS = [
    (r'"(.+)" is an invalid attribute .* with "_"', "访问以下划线开头的属性：{}"),
    (r'"(.+)" is an invalid variable .* with "_"', "使用以下划线开头的名称：{}"),
    (r'"(.+)" is (?:a restricted|an invalid \w+) name', "使用受限名称：{}"),
    (r'"(.+)" is a reserved name', "使用保留名称：{}"),
    (r"Exec calls are not allowed", "使用 exec"),
    (r"Eval calls are not allowed", "使用 eval"),
    (r"(\w+) statements are not allowed", "使用 {} 语句"),
]


class _Policy(RestrictingNodeTransformer):
    def error(self, node: ast.AST, info: str) -> None:
        for pattern, template in _REASONS:
            if m := re.match(pattern, info):
                info = "脚本不允许" + template.format(*m.groups())
                break
        else:
            info = info if info.startswith("脚本") else f"脚本未通过安全检查：{info}"
        self.errors.append(f"第 {getattr(node, 'lineno', '?')} 行：{info}")

    def visit_Import(self, node: ast.AST) -> ast.AST:
        # RestrictedPython lets these compile and fail at run time with an unclear NameError.
        what = "定义类" if isinstance(node, ast.ClassDef) else "使用 import"
        self.error(node, f"脚本不允许{what}")
        return node

    visit_ImportFrom = visit_ClassDef = visit_Import

    def visit_Try(self, node: ast.Try) -> Any:
        # The timeout is an ordinary exception, and raising it from the trace hook removes the
        # hook: code in `finally` or a bare `except` would run on with no time limit.
        if node.finalbody:
            self.error(node, "脚本不允许使用 try ... finally")
        if any(h.type is None for h in node.handlers):
            self.error(node, "脚本不允许使用不带异常类型的 except")
        return super().visit_Try(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        # RestrictedPython refuses `d[k] += 1`, which workflow scripts need.  Rewrite it as
        # `_inplaceitem_('+=', d, k, 1)`, so d and k are evaluated once.
        target = node.target
        if not isinstance(target, ast.Subscript) or isinstance(target.slice, ast.Slice):
            return super().visit_AugAssign(node)
        args = [
            ast.Constant(IOPERATOR_TO_STR[type(node.op)]),
            self.visit(target.value),
            self.visit(target.slice),
            self.visit(node.value),
        ]
        call = ast.Call(ast.Name("_inplaceitem_", ast.Load()), args, [])
        return ast.fix_missing_locations(ast.copy_location(ast.Expr(call), node))


@lru_cache(maxsize=512)
def _compile(source: str, mode: str) -> types.CodeType:
    try:
        tree = ast.parse(source, "<string>", mode)  # "<string>": Spiff finds the error line by it
        result = (_restricted_exec if mode == "exec" else _restricted_eval)(tree, policy=_Policy)
    except SyntaxError as err:
        # Spiff's error formatter crashes on lineno None and indexes the script with it.
        line = min(max(err.lineno or 1, 1), max(len(source.splitlines()), 1))
        detail = ("<string>", line, err.offset, err.text)
        raise SyntaxError(f"脚本语法错误：{err.msg}", detail) from None
    if result.errors:
        raise ScriptSecurityError("；".join(result.errors))
    return result.code


def _guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    if name.startswith("_"):
        raise ScriptSecurityError(f"脚本不允许访问以下划线开头的属性：{name}")
    if name in INSPECT_ATTRIBUTES or name == "mro":  # mro() would hand out Exception and object
        raise ScriptSecurityError(f"脚本不允许访问受限属性：{name}")
    if name in ("format", "format_map") and (isinstance(obj, str) or obj is str):
        # '{0.__class__}'.format(x) reads attributes without going through this guard.
        raise ScriptSecurityError(f"脚本不允许使用 str.{name}，请改用 f-string")
    value = Guards.safer_getattr(obj, name, default)
    if isinstance(value, types.ModuleType):  # e.g. datetime.sys.modules from a datetime helper
        raise ScriptSecurityError(f"脚本不允许通过属性访问模块：{name}")
    return value


_INPLACE = {
    "+=": op.iadd,
    "-=": op.isub,
    "*=": op.imul,
    "/=": op.itruediv,
    "//=": op.ifloordiv,
    "%=": op.imod,
    "**=": op.ipow,
    "<<=": op.ilshift,
    ">>=": op.irshift,
    "&=": op.iand,
    "|=": op.ior,
    "^=": op.ixor,
    "@=": op.imatmul,
}


def _inplace_item(operator: str, obj: Any, key: Any, value: Any) -> None:
    Guards.full_write_guard(obj)[key] = _INPLACE[operator](obj[key], value)


def _refuse(name: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise ScriptSecurityError(f"脚本不允许使用 {name}")

    return refuse


_ALLOWED = [
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "range",
    "reversed",
    "round",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
]
# Scripts must not be able to name (and so catch) a base class of ScriptTimeout.
_DROPPED = {
    "__build_class__",
    "BaseException",
    "Exception",
    "GeneratorExit",
    "KeyboardInterrupt",
    "SystemExit",
}
_REFUSED = [
    "open",
    "eval",
    "exec",
    "compile",
    "getattr",
    "setattr",
    "delattr",
    "hasattr",
    "globals",
    "locals",
    "vars",
    "dir",
    "type",
    "input",
    "breakpoint",
    "help",
    "exit",
    "quit",
    "object",
    "super",
    "memoryview",
    "iter",
    "next",
]
_BUILTINS = {k: v for k, v in safe_builtins.items() if k not in _DROPPED}
_BUILTINS |= {name: getattr(builtins, name) for name in _ALLOWED}
_BUILTINS |= {name: _refuse(name) for name in _REFUSED}  # a clear error beats a NameError
# The names RestrictedPython's rewritten code calls.  They are globals, so task data using one
# of them is refused by the base class's overwrite check and cannot replace a guard.
_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": _guarded_getattr,
    "_getitem_": op.getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": Guards.guarded_iter_unpack_sequence,
    "_unpack_sequence_": Guards.guarded_unpack_sequence,
    "_write_": Guards.full_write_guard,
    "_inplacevar_": lambda operator, x, y: _INPLACE[operator](x, y),
    "_inplaceitem_": _inplace_item,
    "_apply_": lambda f, *a, **kw: f(*a, **kw),
    "_print_": PrintCollector,  # print() output is collected and dropped
}


class RestrictedScriptEnvironment(TaskDataEnvironment):
    """TaskDataEnvironment that runs RestrictedPython code under a wall-time limit."""

    def __init__(
        self,
        helpers: Mapping[str, Any] | None = None,
        time_limit: float = 1.0,
        services: ServiceCaller | None = None,
    ) -> None:
        super().__init__({**(helpers or {}), **_GUARDS})
        self.time_limit = time_limit
        self.services = services

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        code = _compile(expression.strip(), "eval")  # conditions often keep their XML indentation
        # As in the base class, data may shadow helpers in an expression; it may not shadow guards.
        namespace = {**self.globals, **(external_context or {}), **context, **_GUARDS}
        return self._with_deadline(eval, code, namespace)

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        code = _compile(script, "exec")  # the base class exec()s a code object as it does a str
        return self._with_deadline(super().execute, code, context, external_context)

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        """Service tasks run host-registered handlers only; scripts never reach the host."""
        name = kwargs.get("operation_name")
        if self.services is None:
            raise LookupError(f"服务任务“{name}”没有注册处理程序")
        return self.services(str(name), kwargs.get("operation_params") or {})

    def _remove_globals_and_functions_from_context(
        self, context: dict[str, Any], external_context: Any = None
    ) -> None:
        super()._remove_globals_and_functions_from_context(context, external_context)
        for key in [k for k, v in context.items() if isinstance(v, types.ModuleType | Iterator)]:
            del context[key]  # modules and zip/map/generator objects cannot be serialised

    def _with_deadline(self, run: Callable[..., Any], *args: Any) -> Any:
        # A trace hook works in any thread; signal.alarm works only in the main thread.
        deadline = time.monotonic() + self.time_limit
        events = 0

        def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
            nonlocal events
            if event == "call" and frame.f_code.co_filename != "<string>":
                return None  # helpers and guards are not traced: they may catch Exception
            events += 1
            if events % 64 == 0 and time.monotonic() > deadline:
                raise ScriptTimeout(f"脚本运行超过 {self.time_limit:g} 秒的时间限制")
            return trace

        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            return run(*args)
        finally:
            sys.settrace(previous)  # keep coverage and debuggers working


class _SandboxScriptEngine(PythonScriptEngine):
    """Fixes three of Spiff's error paths so the sandbox's reason reaches the user."""

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        # Spiff's own message here is only "Error evaluating expression", without the reason.
        what = f"表达式 {expression.strip()!r} 求值出错"
        return self._wrap(
            task, what, self.environment.evaluate, expression, task.data, external_context
        )

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        # Spiff's own error path here raises NameError('script').
        return self._wrap(
            task, "服务任务出错", lambda: self.environment.call_service(task.data, **kwargs)
        )

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        if err.args and not isinstance(err.args[0], str):  # Spiff does "KeyError:" + args[0]
            err.args = (repr(err.args[0]), *err.args[1:])
        return super().create_task_exec_exception(task, script, err)

    @staticmethod
    def _wrap(task: Any, what: str, run: Callable[..., Any], *args: Any) -> Any:
        try:
            return run(*args)
        except SpiffWorkflowException as err:
            err.add_note(what)
            raise
        except Exception as err:
            msg = f"{what}：{type(err).__name__}: {err}"
            raise WorkflowTaskException(msg, task=task, exception=err) from err


def make_script_engine(
    helpers: Mapping[str, Any] | None = None,
    time_limit: float = 1.0,
    services: ServiceCaller | None = None,
) -> PythonScriptEngine:
    """Return a script engine whose scripts and expressions run in the sandbox."""
    environment = RestrictedScriptEnvironment(helpers, time_limit, services)
    return _SandboxScriptEngine(environment=environment)
