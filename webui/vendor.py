"""Front-end packages installed from npm (never copied into the repository), served from their
`dist` folders under /vendor/<package>/ with long cache headers (URLs carry the version). Only
listed packages are served."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, send_from_directory
from werkzeug.wrappers import Response

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {  # URL name → folder inside node_modules
    "bpmn-js": "bpmn-js/dist",
    "echarts": "echarts/dist",
}
SUFFIXES = {".js", ".css", ".map", ".woff", ".woff2", ".ttf", ".eot", ".svg", ".mjs"}
ONE_YEAR = 365 * 24 * 3600


def node_modules() -> Path:
    return Path(current_app.config.get("NODE_MODULES") or ROOT / "node_modules")


@bp.url_defaults
def stamp_version(endpoint: str, values: dict[str, Any]) -> None:
    """URLs carry the installed version (`?v=18.6.0`), so the year-long immutable cache is
    safe: after `npm ci` installs another version, pages ask for a new URL."""
    if "package" in values:
        values.setdefault("v", installed_version(node_modules(), values["package"]))


@cache
def installed_version(root: Path, package: str) -> str:
    folder = PACKAGES.get(package, "").removesuffix("/dist")
    try:
        manifest = json.loads((root / folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "0"
    return str(manifest.get("version", "0"))


@bp.get("/<package>/<path:path>")
def asset(package: str, path: str) -> Response:
    folder = PACKAGES.get(package)
    if folder is None or Path(path).suffix not in SUFFIXES:
        abort(404)
    # send_from_directory refuses paths that leave the folder (../ and absolute paths)
    response = send_from_directory(node_modules() / folder, path, max_age=ONE_YEAR)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response
