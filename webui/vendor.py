"""Front-end packages installed from npm (never copied into the repository), served from their
`dist` folders under /vendor/<package>/ with long cache headers. Only listed packages are served."""

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory
from werkzeug.wrappers import Response

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {  # URL name → folder inside node_modules
    "bpmn-js": "bpmn-js/dist",
    "bpmn-js-properties-panel": "bpmn-js-properties-panel/dist",
    "properties-panel": "@bpmn-io/properties-panel/dist",
    "bpmn-js-differ": "bpmn-js-differ/dist",
    "echarts": "echarts/dist",
}
SUFFIXES = {".js", ".css", ".map", ".woff", ".woff2", ".ttf", ".eot", ".svg", ".mjs"}
ONE_YEAR = 365 * 24 * 3600


def node_modules() -> Path:
    return Path(current_app.config.get("NODE_MODULES") or ROOT / "node_modules")


@bp.get("/<package>/<path:path>")
def asset(package: str, path: str) -> Response:
    folder = PACKAGES.get(package)
    if folder is None or Path(path).suffix not in SUFFIXES:
        abort(404)
    # send_from_directory refuses paths that leave the folder (../ and absolute paths)
    response = send_from_directory(node_modules() / folder, path, max_age=ONE_YEAR)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response
