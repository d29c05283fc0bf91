"""Small builders for inline BPMN in tests."""

BPMN_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'id="Definitions_test" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)


def bpmn(
    process_id: str, body: str, lanes: dict[str, list[str]] | None = None, name: str | None = None
) -> str:
    """A BPMN document with one executable process; `lanes` maps lane names to element ids."""
    lane_xml = ""
    if lanes:
        lane_xml = (
            '<bpmn:laneSet id="ls">'
            + "".join(
                f'<bpmn:lane id="lane_{i}" name="{lane}">'
                + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
                + "</bpmn:lane>"
                for i, (lane, refs) in enumerate(lanes.items())
            )
            + "</bpmn:laneSet>"
        )
    return (
        f'{BPMN_HEADER}<bpmn:process id="{process_id}" name="{name or process_id}" '
        f'isExecutable="true">{lane_xml}{body}</bpmn:process></bpmn:definitions>'
    )


def user_task(
    task_id: str, name: str, incoming: str, outgoing: str, form: str | None = None, **props: str
) -> str:
    properties = dict(props)
    if form:
        properties["formJsonSchemaFilename"] = form
    ext = ""
    if properties:
        ext = (
            "<bpmn:extensionElements><spiffworkflow:properties>"
            + "".join(
                f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in properties.items()
            )
            + "</spiffworkflow:properties></bpmn:extensionElements>"
        )
    return (
        f'<bpmn:userTask id="{task_id}" name="{name}">{ext}'
        f"<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>"
        "</bpmn:userTask>"
    )


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    cond = f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>" if condition else ""
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f"{cond}</bpmn:sequenceFlow>"
    )
