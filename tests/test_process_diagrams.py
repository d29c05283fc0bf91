"""Every BPMN file under processes/ carries complete, clean diagram information (DI), so bpmn-js
draws it readably: a shape for every flow node inside its lane, an edge for every flow, no
overlapping shapes."""

from pathlib import Path

import pytest
from lxml import etree

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
FILES = sorted(PROCESSES.rglob("*.bpmn"))
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
FLOW_NODES = (
    "task",
    "userTask",
    "serviceTask",
    "scriptTask",
    "manualTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "sendTask",
    "receiveTask",
)


def _bounds(shape: etree._Element) -> tuple[float, float, float, float]:
    box = shape.find("dc:Bounds", NS)
    assert box is not None, f"{shape.get('bpmnElement')} 没有 Bounds"
    x, y = float(box.get("x")), float(box.get("y"))
    return x, y, x + float(box.get("width")), y + float(box.get("height"))


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_diagram_is_complete_and_clean(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    shapes = {s.get("bpmnElement"): s for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    for process in root.iterfind("bpmn:process", NS):
        nodes = [n for tag in FLOW_NODES for n in process.iterfind(f"bpmn:{tag}", NS)]
        for node in nodes:
            assert node.get("id") in shapes, f"{path.name}: {node.get('id')} 没有图形"
        for flow in process.iterfind("bpmn:sequenceFlow", NS):
            edge = edges.get(flow.get("id"))
            assert edge is not None, f"{path.name}: 连线 {flow.get('id')} 没有图形"
            assert len(edge.findall("di:waypoint", NS)) >= 2, f"{flow.get('id')} 缺少折点"
        boundary = {n.get("id") for n in process.iterfind("bpmn:boundaryEvent", NS)}
        lanes = list(process.iterfind(".//bpmn:lane", NS))
        for lane in lanes:
            assert lane.get("id") in shapes, f"{path.name}: 泳道 {lane.get('name')} 没有图形"
            lane_box = _bounds(shapes[lane.get("id")])
            for ref in lane.iterfind("bpmn:flowNodeRef", NS):
                if ref.text in shapes and ref.text not in boundary:  # those sit on a task's rim
                    box = _bounds(shapes[ref.text])
                    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                    assert (
                        lane_box[0] <= centre[0] <= lane_box[2]
                        and lane_box[1] <= centre[1] <= lane_box[3]
                    ), f"{path.name}: {ref.text} 不在泳道“{lane.get('name')}”内"
        placed = [
            (n.get("id"), _bounds(shapes[n.get("id")]))
            for n in nodes
            if n.get("id") not in boundary
        ]
        for i, (first, a) in enumerate(placed):
            for second, b in placed[i + 1 :]:
                assert not _overlap(a, b), f"{path.name}: {first} 与 {second} 重叠"
