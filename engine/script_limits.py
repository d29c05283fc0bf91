"""Size and memory limits for sandboxed scripts, conditions, timer expressions and DMN cells.

The sandbox's trace hook can stop a script only between two Python steps. One C call that
sums 3×10^8 numbers or builds a 2 GB string holds the GIL until it ends, and every other
request of the server waits that long. So a huge operation is refused *before* it starts:
the rewritten code (sandbox._Policy) calls the guards below for `+ * ** << %`, for f-string
fields, and for the builtins and methods that can build something large; each guard works out
the size of the result it would produce and compares it with a limit. Every guard is a Python
call from the script, so the trace hook can stop the script there as well, and it watches the
process's memory as a backstop (see sandbox.RestrictedScriptEnvironment).
"""

import builtins
import functools
import math
import re
import resource
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

MAX_ITEMS = 1_000_000  # items of a list, characters of a string, numbers in a range …
MAX_INT_BITS = 4096  # an integer result (about 1,233 decimal digits)
MAX_ROUND_DIGITS = 1000  # round(x, n)
MAX_DATA = 16_000_000  # task data after a script, in items and characters (≈ a 16 MB form)
MAX_DAYS = 3660  # workdays_after(n), days_after(n): ten years either way
MEMORY_LIMIT = 256 * 2**20  # growth of the process's resident memory while one script runs

_SIZED = frozenset({str, bytes, list, tuple})
_CONTAINERS = frozenset({list, tuple})
_FLAT = frozenset({str, int, float, bool, type(None)})
_NUMBERS = frozenset({int, float, bool, type(None)})


class ScriptLimitError(Exception):
    """The script asked for more than the sandbox allows (time aside: see ScriptTimeout)."""


def refuse(what: str) -> NoReturn:
    raise ScriptLimitError(f"脚本运算规模超出限制：{what}")


def weight(value: Any, limit: int = MAX_ITEMS) -> int:
    """Leaves and characters in `value`, counted through nested lists, tuples, sets and dicts.
    Every reference counts: a list holding one long string a thousand times weighs a thousand
    strings, as its text (str(), JSON) would. Counting stops once past `limit`."""
    total = 0
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bytes:
            total += len(item) or 1
        elif kind is dict:
            if item:
                push(item)
                push(item.values())
            else:
                total += 1
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            if not item:
                total += 1
            elif len(item) > 64 and set(map(type, item)) <= _NUMBERS:
                total += len(item)  # a long list of numbers: counted in one C pass
            else:
                push(item)
        elif kind is int:
            total += item.bit_length() // 3 + 1
        else:
            total += 1
        if total > limit:
            break
    return total


def check_text(value: Any, what: str) -> None:
    """Refuse turning `value` into text when the text would be huge."""
    if type(value) not in _FLAT and weight(value) > MAX_ITEMS:
        refuse(f"{what}的内容最多 {MAX_ITEMS} 项（字符）")


def check_days(name: str, n: Any) -> None:
    if isinstance(n, int | float) and not abs(n) <= MAX_DAYS:  # `not <=` also refuses NaN
        refuse(f"{name} 的天数最多 ±{MAX_DAYS}")


# ------------------------------------------------------------------ operators
# One Python call per guarded operation, common cases first: while the trace hook is on, every
# Python call and bytecode costs several times its usual price.
def _too_long(what: str, note: str = "") -> NoReturn:
    refuse(f"{what}的结果最多 {MAX_ITEMS} 项（字符）{note}")


def _too_many_bits(what: str) -> NoReturn:
    refuse(f"{what}的结果最多 {MAX_INT_BITS} 个二进制位（约 1233 位十进制数）")


def _check_repeat(a: Any, b: Any) -> None:
    seq, times = (a, b) if type(a) in _SIZED else (b, a)
    if not isinstance(times, int) or times <= 0 or not seq:
        return
    if len(seq) * times > MAX_ITEMS:
        _too_long("重复（*）")
    if type(seq) in _CONTAINERS and weight(seq, MAX_ITEMS // times) * times > MAX_ITEMS:
        _too_long("重复（*）", "，其中各项的内容也计算在内")


def guarded_mul(a: Any, b: Any) -> Any:
    kind_a, kind_b = type(a), type(b)
    if kind_a is int and kind_b is int:
        if a.bit_length() + b.bit_length() > MAX_INT_BITS and a and b:
            _too_many_bits("乘法（*）")
    elif kind_a in _SIZED or kind_b in _SIZED:
        _check_repeat(a, b)
    return a * b


def guarded_imul(a: Any, b: Any) -> Any:
    if type(a) in _SIZED or type(b) in _SIZED:
        _check_repeat(a, b)
        a *= b  # a list grows in place, as `x *= n` does
        return a
    return guarded_mul(a, b)


def guarded_add(a: Any, b: Any) -> Any:
    if type(a) in _SIZED and type(b) in _SIZED and len(a) + len(b) > MAX_ITEMS:
        _too_long("拼接（+）")
    return a + b


def guarded_iadd(a: Any, b: Any) -> Any:
    if type(a) in _SIZED and type(b) in _SIZED and len(a) + len(b) > MAX_ITEMS:
        _too_long("拼接（+）")
    a += b  # a list grows in place, as `x += y` does
    return a


def guarded_pow(a: Any, b: Any) -> Any:
    if (
        type(a) is int
        and type(b) is int
        and b > 1
        and (a > 1 or a < -1)
        and (b > MAX_INT_BITS or b * math.log2(abs(a)) > MAX_INT_BITS)  # |a| ≥ 2: ≥ b bits
    ):
        _too_many_bits("乘方（**）")
    return a**b


def guarded_lshift(a: Any, b: Any) -> Any:
    if (
        isinstance(a, int)  # True << n too
        and isinstance(b, int)
        and a
        and a.bit_length() + min(max(b, 0), MAX_INT_BITS + 1) > MAX_INT_BITS
    ):
        _too_many_bits("左移（<<）")
    return a << b


# `%` formatting: the width and precision of each conversion, `*` taking them from the values.
_PERCENT_SPEC = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _too_wide(number: str | bytes) -> bool:
    return len(number) > 7 or int(number) > MAX_ITEMS


def check_format_spec(spec: Any) -> None:
    """Width and precision of an f-string field (`{x:>{n}}`)."""
    if isinstance(spec, str) and any(map(_too_wide, re.findall(r"\d+", spec))):
        refuse(f"格式的宽度或精度最多 {MAX_ITEMS}")


def _check_percent(pattern: str | bytes, values: Any) -> None:
    raw = pattern.encode("utf-8", "replace") if isinstance(pattern, str) else pattern
    numbers = [n for spec in _PERCENT_SPEC.findall(raw) for n in spec if n]
    widths = [v for v in (values if type(values) is tuple else (values,)) if type(v) is int]
    if any(_too_wide(n) for n in numbers if n != b"*") or (
        b"*" in numbers and any(abs(v) > MAX_ITEMS for v in widths)
    ):
        refuse(f"格式的宽度或精度最多 {MAX_ITEMS}")
    check_text(values, "格式化（%）")


def guarded_mod(a: Any, b: Any) -> Any:
    if type(a) is str or type(a) is bytes:
        _check_percent(a, b)
    return a % b


# The functions the rewritten code calls instead of `a + b`, `x += y` … (see sandbox._Policy).
BINARY_GUARDS = {
    "_add_": guarded_add,
    "_mul_": guarded_mul,
    "_pow_": guarded_pow,
    "_lshift_": guarded_lshift,
    "_mod_": guarded_mod,
    "_iadd_": guarded_iadd,
    "_imul_": guarded_imul,
}
INPLACE_GUARDS = {
    "+=": guarded_iadd,
    "*=": guarded_imul,
    "**=": guarded_pow,
    "<<=": guarded_lshift,
    "%=": guarded_mod,
}


def format_field(value: Any, conversion: int, spec: str) -> str:
    """One f-string field `{value!conversion:spec}`, with its size checked first."""
    if spec:
        check_format_spec(spec)
    if type(value) not in _FLAT:
        check_text(value, "f-string 字段")
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("a"):
        value = ascii(value)
    elif conversion == ord("s"):
        value = str(value)
    return format(value, spec)


# ------------------------------------------------------------------ builtins
def checked_range(*args: Any) -> range:
    numbers = builtins.range(*args)
    try:
        too_long = len(numbers) > MAX_ITEMS
    except OverflowError:
        too_long = True
    if too_long:
        refuse(f"range 最多 {MAX_ITEMS} 项")
    return numbers


def checked_pow(base: Any, exp: Any, mod: Any = None) -> Any:
    return guarded_pow(base, exp) if mod is None else builtins.pow(base, exp, mod)


def checked_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    """Numbers as the builtin; lists and tuples joined in one pass (the builtin copies the
    growing result at every step: quadratic), at most MAX_ITEMS items."""
    if not isinstance(start, list | tuple):
        return builtins.sum(iterable, start)
    joined = list(start)
    for part in iterable:
        if type(part) is not type(start):
            return builtins.sum([part], start)  # the builtin's own TypeError
        if len(joined) + len(part) > MAX_ITEMS:
            refuse(f"sum 拼接的结果最多 {MAX_ITEMS} 项")
        joined.extend(part)
    return joined if isinstance(start, list) else tuple(joined)


def checked_round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        refuse(f"round 的位数最多 {MAX_ROUND_DIGITS}")
    return builtins.round(number, ndigits)


def checked_str(*args: Any, **kwargs: Any) -> str:
    if len(args) <= 1 and not {"encoding", "errors"} & kwargs.keys():  # not a decode
        check_text(args[0] if args else kwargs.get("object", ""), "str()")
    return str(*args, **kwargs)


def checked_repr(value: Any) -> str:
    check_text(value, "repr()")
    return repr(value)


class CheckedType(type):
    """Stands in for a builtin type in scripts: calling it goes through a guard, while
    isinstance() and attribute access (through the sandbox's getattr) reach the real type."""

    real: type
    make: Callable[..., Any]

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.make(*args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.real)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.real)

    def __repr__(cls) -> str:
        return repr(cls.real)


def _checked_type(real: type, make: Callable[..., Any]) -> type:
    return CheckedType(real.__name__, (), {"real": real, "make": staticmethod(make)})


class DroppedPrint:
    """print() in a script: nothing is kept (RestrictedPython's collector would keep all of it,
    and format each value first)."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def __call__(self) -> str:
        return ""


BUILTINS: dict[str, Any] = {
    "range": _checked_type(range, checked_range),
    "str": _checked_type(str, checked_str),
    "repr": checked_repr,
    "pow": checked_pow,
    "sum": checked_sum,
    "round": checked_round,
}


# ------------------------------------------------------------------ methods
def _join(self: Any, iterable: Iterable[Any]) -> Any:
    items = iterable if isinstance(iterable, list | tuple) else list(iterable)
    try:
        size = builtins.sum(map(len, items)) + len(self) * max(len(items) - 1, 0)
    except TypeError:
        size = 0  # not all text: join raises its own TypeError
    if size > MAX_ITEMS:
        refuse(f"join 的结果最多 {MAX_ITEMS} 个字符")
    return type(self).join(self, items)


def _replace(self: Any, old: Any, new: Any, count: int = -1) -> Any:
    if isinstance(old, str | bytes) and isinstance(new, str | bytes) and len(new) > len(old):
        found = self.count(old)
        found = found if count < 0 else min(found, count)
        if len(self) + found * (len(new) - len(old)) > MAX_ITEMS:
            refuse(f"replace 的结果最多 {MAX_ITEMS} 个字符")
    return type(self).replace(self, old, new, count)


def _padding(name: str) -> Callable[..., Any]:
    def pad(self: Any, width: Any, *args: Any) -> Any:
        if isinstance(width, int) and width > MAX_ITEMS:
            refuse(f"{name} 的宽度最多 {MAX_ITEMS}")
        return getattr(type(self), name)(self, width, *args)

    return pad


def _expandtabs(self: Any, tabsize: int = 8) -> Any:
    tab = "\t" if isinstance(self, str) else b"\t"
    if isinstance(tabsize, int) and len(self) + self.count(tab) * tabsize > MAX_ITEMS:
        refuse(f"expandtabs 的结果最多 {MAX_ITEMS} 个字符")
    return type(self).expandtabs(self, tabsize)


def _translate(self: str, table: Any) -> str:
    values = table.values() if isinstance(table, dict) else table
    if isinstance(values, Iterable) and not isinstance(values, str | bytes):
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
        if len(self) * longest > MAX_ITEMS:
            refuse(f"translate 的结果最多 {MAX_ITEMS} 个字符")
    return str.translate(self, table)


def _extend(self: list[Any], iterable: Iterable[Any]) -> None:
    items = iterable if isinstance(iterable, list | tuple | str) else list(iterable)
    if len(self) + len(items) > MAX_ITEMS:
        refuse(f"extend 的结果最多 {MAX_ITEMS} 项")
    self.extend(items)


def _to_bytes(self: int, length: Any = 1, *args: Any, **kwargs: Any) -> bytes:
    if isinstance(length, int) and length > MAX_ITEMS:
        refuse(f"to_bytes 的长度最多 {MAX_ITEMS}")
    return self.to_bytes(length, *args, **kwargs)


_METHODS: dict[tuple[type, str], Callable[..., Any]] = {
    (list, "extend"): _extend,
    (int, "to_bytes"): _to_bytes,
    (str, "translate"): _translate,
}
for _text in (str, bytes):
    _METHODS[_text, "join"] = _join
    _METHODS[_text, "replace"] = _replace
    _METHODS[_text, "expandtabs"] = _expandtabs
    for _name in ("ljust", "rjust", "center", "zfill"):
        _METHODS[_text, _name] = _padding(_name)


GUARDED_METHODS = frozenset(name for _, name in _METHODS)


def guard_method(obj: Any, name: str, value: Any) -> Any:
    """`obj.name` as a script sees it: methods that can build something large come checked."""
    if isinstance(obj, type):
        return _METHODS.get((int if obj is bool else obj, name), value)
    kind = type(obj)
    guard = _METHODS.get((int if kind is bool else kind, name))
    return value if guard is None else functools.partial(guard, obj)


# ------------------------------------------------------------------ task data
def bound_data(context: dict[str, Any]) -> list[str]:
    """Drop the keys that would take the task data past MAX_DATA (it is stored as JSON after
    every command, and JSON writes each reference out in full); return their names."""
    if weight(context, MAX_DATA) <= MAX_DATA:
        return []
    dropped, total = [], 0
    for key in list(context):
        size = weight(context[key], MAX_DATA)
        if total + size > MAX_DATA:
            del context[key]
            dropped.append(key)
        else:
            total += size
    return dropped


# ------------------------------------------------------------------ memory
def resident_bytes() -> int:
    """The process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
