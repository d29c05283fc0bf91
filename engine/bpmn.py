"""SpiffWorkflow glue: safe parsing, spec-free serialization, and the injected clock.

Everything here works around a specific 3.2.0 behaviour; each piece says which one.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as timer_module
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskIterator

from .clock import Clock

# ---------------------------------------------------------------- the clock
# 3.2.0 reads `datetime.now(timezone.utc)` inside its timer module and offers no hook;
# we replace that module's `datetime` with one that asks the clock of the running command.
_command_clock: ContextVar[Clock | None] = ContextVar("duban_command_clock", default=None)


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]  # a plain datetime
        clock = _command_clock.get()
        if clock is None:
            return datetime.now(tz)
        return clock.now().astimezone(tz or UTC)


timer_module.datetime = _ClockedDatetime


class CommandClock:
    """The running command's clock when there is one, else `fallback` (for script helpers)."""

    def __init__(self, fallback: Clock) -> None:
        self._fallback = fallback

    def now(self) -> datetime:
        return (_command_clock.get() or self._fallback).now()


@contextmanager
def running_at(clock: Clock) -> Iterator[None]:
    """Make SpiffWorkflow's timers see `clock` for the duration of one command."""
    token = _command_clock.set(clock)
    try:
        yield
    finally:
        _command_clock.reset(token)


# ------------------------------------------------------ iterator depth limit
# 3.2.0 iterates task trees only to depth 1000 and then reports a looping workflow as
# completed. Compaction keeps live trees shallow; this raise is the second line of defence
# (loops inside call activities are not compacted).
MAX_TREE_DEPTH = 1_000_000
for _iterator in (TaskIterator, BpmnTaskIterator):
    _defaults = list(_iterator.__init__.__defaults__ or ())
    _names = _iterator.__init__.__code__.co_varnames[1 : _iterator.__init__.__code__.co_argcount]
    _index = list(_names)[-len(_defaults) :].index("max_depth")
    _defaults[_index] = MAX_TREE_DEPTH
    _iterator.__init__.__defaults__ = tuple(_defaults)


# ----------------------------------------------------------------- parsing
class UnsafeXml(ValueError):
    """The document declares a DOCTYPE or entities; we never expand those."""


_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


def parse_xml(content: bytes) -> etree._Element:
    """Parse untrusted XML: no entities, no DTD, no network. Raises XMLSyntaxError or UnsafeXml."""
    root = etree.fromstring(content, parser=_XML_PARSER)
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXml("DOCTYPE")
    return root


def make_parser() -> SpiffBpmnParser:
    return SpiffBpmnParser(validator=VALIDATOR)


# ------------------------------------------------------------ serialization
class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Stores an instance without its spec; the spec objects come from the version cache on load."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        workflow = self.target_class(
            dct.pop("spec"), dct.pop("subprocess_specs"), deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _SpecFreeWorkflowConverter
    registry = BpmnWorkflowSerializer.configure(config)
    # Form data may carry dates and decimals, which 3.2.0 cannot serialize by default.
    registry.register(
        date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"])
    )
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    return BpmnWorkflowSerializer(registry)


SERIALIZER = _make_serializer()


def dump_state(workflow: BpmnWorkflow) -> str:
    return SERIALIZER.serialize_json(workflow)


def load_state(state: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    dct = json.loads(state)
    SERIALIZER.migrate(dct)
    dct["spec"] = spec
    dct["subprocess_specs"] = subprocess_specs
    return SERIALIZER.from_dict(dct)


def json_safe(value: Any) -> Any:
    """Task data as plain JSON (for events, API responses and the human-task table)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return None
