"""RestrictedPython sandbox with time, size and memory limits for SpiffWorkflow scripts and
expressions (conditions, timer expressions, DMN cells, task properties).

The source is compiled with RestrictedPython and the code object goes to TaskDataEnvironment,
which keeps its task-data behaviour (data dict as namespace, shadowing check, clean-up). The
compiled code calls the size guards of script_limits for the operations that could build
something huge in one C call, which no time limit could interrupt.
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
from typing import Any, cast

from RestrictedPython import Guards, RestrictingNodeTransformer, safe_builtins
from RestrictedPython import compile_restricted_eval as _restricted_eval
from RestrictedPython import compile_restricted_exec as _restricted_exec
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, IOPERATOR_TO_STR
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import script_limits
from .script_limits import (
    GUARDED_METHODS,
    MAX_DATA,
    MEMORY_LIMIT,
    CheckedType,
    ScriptLimitError,
    resident_bytes,
    weight,
)

# (operation name, {parameter: {"value": v, "type": t}}) -> the result as a JSON string
ServiceCaller = Callable[[str, dict[str, Any]], str]


class ScriptTimeout(Exception):
    """The script ran past its time limit."""


class ScriptSecurityError(Exception):
    """The script uses something the sandbox forbids."""


# Operators that can build a huge result in one step, and the guard the compiled code calls.
_BINARY_GUARDS = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
# `x += y` and the like on a name: the guard the compiled code calls (the others keep
# RestrictedPython's `_inplacevar_`). `+=` and `*=` grow a list in place, as in Python.
_INPLACE_GUARDS = {
    ast.Add: "_iadd_",
    ast.Mult: "_imul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}
_CHECK_EVERY = 0.002  # seconds between two checks of the time and memory limits
_SHOWN = 500  # characters of an error's value shown in its message


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
        target = node.target
        guard = _INPLACE_GUARDS.get(type(node.op))
        if isinstance(target, ast.Name) and guard:
            # `x += y`: RestrictedPython gives `x = _inplacevar_('+=', x, y)`; call the size
            # guard directly instead, `x = _iadd_(x, y)`.
            node = cast(ast.AugAssign, super().visit_AugAssign(node))
            inplace = cast(ast.Call, node.value)
            node.value = ast.Call(ast.Name(guard, ast.Load()), inplace.args[1:], [])
            return ast.fix_missing_locations(node)
        # RestrictedPython refuses `d[k] += 1`, which workflow scripts need.  Rewrite it as
        # `_inplaceitem_('+=', d, k, 1)`, so d and k are evaluated once.
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

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        # `a * b` becomes `_mul_(a, b)`, which refuses a huge result before computing it.
        node = cast(ast.BinOp, super().visit_BinOp(node))
        guard = _BINARY_GUARDS.get(type(node.op))
        if guard is None or _stays_small(node):
            return node
        call = ast.Call(ast.Name(guard, ast.Load()), [node.left, node.right], [])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        # f"{x!r:>{n}}" becomes f"{_format_(x, ord('r'), f'>{n}')}": width and size checked.
        node = cast(ast.FormattedValue, super().visit_FormattedValue(node))
        spec = node.format_spec or ast.Constant("")
        call = ast.Call(
            ast.Name("_format_", ast.Load()), [node.value, ast.Constant(node.conversion), spec], []
        )
        field = ast.FormattedValue(call, -1, None)
        return ast.fix_missing_locations(ast.copy_location(field, node))


def _is_number(node: ast.AST, kinds: tuple[type, ...] = (int, float, complex)) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in kinds


def _stays_small(node: ast.BinOp) -> bool:
    """`x + 1`, `x * 0.5`, `3 % x`: with a number there, the result cannot be large."""
    if isinstance(node.op, ast.Add):
        return _is_number(node.left) or _is_number(node.right)
    if isinstance(node.op, ast.Mult):
        return _is_number(node.left, (float, complex)) or _is_number(node.right, (float, complex))
    return isinstance(node.op, ast.Mod) and _is_number(node.left)


@lru_cache(maxsize=512)
def _compile(source: str, mode: str) -> types.CodeType:
    try:
        tree = ast.parse(source, "<string>", mode)  # "<string>": Spiff finds the error line by it
        compile_restricted = _restricted_exec if mode == "exec" else _restricted_eval
        result = compile_restricted(cast(Any, tree), policy=_Policy)
    except SyntaxError as err:
        # Spiff's error formatter crashes on lineno None and indexes the script with it.
        line = min(max(err.lineno or 1, 1), max(len(source.splitlines()), 1))
        detail = ("<string>", line, err.offset, err.text)
        raise SyntaxError(f"脚本语法错误：{err.msg}", detail) from None
    if result.errors:
        raise ScriptSecurityError("；".join(result.errors))
    assert result.code is not None  # compiled without errors
    return result.code


def _guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    if type(obj) is CheckedType:  # `str.join` when `str` is the guarded stand-in
        obj = obj.real
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
    if name in GUARDED_METHODS:  # `join`, `ljust` …: checked before they build a large result
        return script_limits.guard_method(obj, name, value)
    return value


# Methods that change their object: a condition or other expression may not call them, so that
# evaluating it never changes the task data (evaluate() already gives it a copy of the top level).
_MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "sort",
        "reverse",
        "update",
        "setdefault",
        "popitem",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
    }
)
_MUTABLE = (list, dict, set)


def _expression_getattr(obj: Any, name: str, default: Any = None) -> Any:
    if name in _MUTATORS and (
        isinstance(obj, _MUTABLE) or (isinstance(obj, type) and issubclass(obj, _MUTABLE))
    ):
        raise ScriptSecurityError(f"条件和表达式不得修改流程数据：不允许调用 {name}()")
    return _guarded_getattr(obj, name, default)


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
_INPLACE_GUARDED = _INPLACE | script_limits.INPLACE_GUARDS


def _inplace_item(operator: str, obj: Any, key: Any, value: Any) -> None:
    Guards.full_write_guard(obj)[key] = _INPLACE_GUARDED[operator](obj[key], value)


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
# Scripts must not be able to name (and so catch) a base class of ScriptTimeout or
# ScriptLimitError: raising them from the trace hook ends tracing.
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
_BUILTINS |= script_limits.BUILTINS  # range, str, repr, pow, sum, round with size checks
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
    "_inplacevar_": lambda operator, x, y: _INPLACE_GUARDED[operator](x, y),
    "_inplaceitem_": _inplace_item,
    "_apply_": lambda f, *a, **kw: f(*a, **kw),
    "_print_": script_limits.DroppedPrint,  # print() output is dropped
    "_format_": script_limits.format_field,
    **script_limits.BINARY_GUARDS,
}
# Expressions read the task data and never change it.
_EXPRESSION_GUARDS = {**_GUARDS, "_getattr_": _expression_getattr}
# Names a script reaches without defining them: data under one of these names would hide a
# builtin (`max`, `len` …) from every later expression, so forms may not declare them.
SCRIPT_NAMES = frozenset(_BUILTINS) | frozenset(_GUARDS)


class RestrictedScriptEnvironment(TaskDataEnvironment):
    """TaskDataEnvironment that runs RestrictedPython code under a wall-time limit and a limit
    on how much the process's memory may grow meanwhile (the compiled code's guards refuse
    single huge operations; see script_limits)."""

    def __init__(
        self,
        helpers: Mapping[str, Any] | None = None,
        time_limit: float = 1.0,
        services: ServiceCaller | None = None,
        memory_limit: int = MEMORY_LIMIT,
    ) -> None:
        super().__init__({**(helpers or {}), **_GUARDS})
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.services = services

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        code = _compile(expression.strip(), "eval")  # conditions often keep their XML indentation
        # As in the base class, data may shadow helpers in an expression; it may not shadow guards.
        namespace = {**self.globals, **(external_context or {}), **context, **_EXPRESSION_GUARDS}
        return self._with_deadline(eval, code, namespace)

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        code = _compile(script, "exec")  # the base class exec()s a code object as it does a str
        try:
            done = self._with_deadline(super().execute, code, context, external_context)
        except BaseException:
            script_limits.bound_data(context)  # the instance is saved in `error` with its data
            raise
        dropped = script_limits.bound_data(context)
        if dropped:
            names = "、".join(name[:40] for name in dropped[:5])
            script_limits.refuse(f"流程数据最多 {MAX_DATA} 项（字符），已移除 {names}")
        return done

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
        # A trace hook works in any thread; signal.alarm works only in the main thread. It runs
        # between two steps of the script, never inside one C call: the guards keep those short.
        monotonic = time.monotonic
        deadline = monotonic() + self.time_limit
        next_check = monotonic() + _CHECK_EVERY
        baseline: int | None = None  # resident memory at the first check
        events = 0  # the clock is read every 16 events

        def check() -> None:
            nonlocal next_check, baseline
            now = monotonic()
            if now > deadline:
                raise ScriptTimeout(f"脚本运行超过 {self.time_limit:g} 秒的时间限制")
            resident = resident_bytes()
            if baseline is None:
                baseline = resident
            elif resident - baseline > self.memory_limit:
                grown, limit = (resident - baseline) >> 20, self.memory_limit >> 20
                raise ScriptLimitError(
                    f"脚本占用内存超出限制：运行中增加了 {grown} MB，最多 {limit} MB"
                )
            next_check = now + _CHECK_EVERY

        def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
            nonlocal events
            events += 1
            if event == "call" and frame.f_code.co_filename != "<string>":
                # Helpers and guards are not traced: they may catch Exception. A call straight
                # from the script (or from map() and the like on its behalf) is a place to stop.
                caller = frame.f_back
                if (
                    not events & 15
                    and monotonic() >= next_check
                    and caller
                    and caller.f_code.co_filename == "<string>"
                ):
                    check()
                return None
            if not events & 15 and monotonic() >= next_check:
                check()
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
        _bound_args(err)
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
            _bound_args(err)
            msg = f"{what}：{type(err).__name__}: {err}"
            raise WorkflowTaskException(msg, task=task, exception=err) from err


def _bound_args(err: BaseException) -> None:
    """A script may raise an exception holding a huge value: keep its message short."""
    shown = []
    for value in err.args:
        if isinstance(value, str):
            value = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
        elif weight(value, _SHOWN) > _SHOWN:
            value = f"<{type(value).__name__}，内容过长，未显示>"
        shown.append(value)
    err.args = tuple(shown)


def make_script_engine(
    helpers: Mapping[str, Any] | None = None,
    time_limit: float = 1.0,
    services: ServiceCaller | None = None,
) -> PythonScriptEngine:
    """Return a script engine whose scripts and expressions run in the sandbox."""
    environment = RestrictedScriptEnvironment(helpers, time_limit, services)
    return _SandboxScriptEngine(environment=environment)
