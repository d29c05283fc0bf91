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
    return base


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return document()
