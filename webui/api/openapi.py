"""/api/v1/openapi.json: the API's OpenAPI 3.1 document, merged from one YAML fragment per area
(`webui/openapi/*.yaml`, each with `paths` and optional `components`)."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import bp

FRAGMENTS = Path(__file__).resolve().parent.parent / "openapi"


@cache
def document() -> dict[str, Any]:
    base = yaml.safe_load((FRAGMENTS / "base.yaml").read_text(encoding="utf-8"))
    for fragment in sorted(FRAGMENTS.glob("*.yaml")):
        if fragment.name == "base.yaml":
            continue
        part = yaml.safe_load(fragment.read_text(encoding="utf-8")) or {}
        for path, operations in (part.get("paths") or {}).items():
            base["paths"].setdefault(path, {}).update(operations)
        for section, entries in (part.get("components") or {}).items():
            base["components"].setdefault(section, {}).update(entries)
    _edge_refusals(base)
    return base


def _edge_refusals(doc: dict[str, Any]) -> None:
    """Every operation may be refused at the edge before its route runs (webui/inputs.py): 400
    for a NUL or a lone surrogate in the path or query, or a malformed JSON body; 413 for a JSON
    body over 1 MB; and any may answer 503 while the database cannot be reached."""
    items = [*doc["paths"].values(), *doc["components"].get("pathItems", {}).values()]
    for item in items:
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", {"$ref": "#/components/responses/BadRequest"})
            if "requestBody" in operation:
                responses.setdefault("413", {"$ref": "#/components/responses/TooLarge"})
            responses.setdefault("503", {"$ref": "#/components/responses/Unavailable"})


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return document()
