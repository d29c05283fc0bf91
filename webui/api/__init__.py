"""JSON API under /api/v1: the engine's commands and reads over HTTP, errors as JSON.

One module per area registers its routes on `bp`; each route is documented in the OpenAPI
fragment of the same name under `webui/openapi/`.
"""

import importlib
import pkgutil
from typing import Any

from flask import Blueprint
from werkzeug.exceptions import HTTPException

bp = Blueprint("api", __name__, url_prefix="/api/v1")

HTTP_MESSAGES = {
    400: "请求格式不正确",
    401: "请先登录",
    403: "您无权执行此操作",
    404: "资源不存在",
    405: "不支持该请求方法",
    413: "请求内容过大",
    415: "请求内容类型不受支持",
}


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[dict[str, Any], int]:
    status = exc.code or 500
    message = HTTP_MESSAGES.get(status, "请求失败")
    return {"error": exc.name.lower().replace(" ", "_"), "message": message}, status


def _register_areas() -> None:
    """Import every area module of this package; each registers its routes on `bp`."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name != "support":
            importlib.import_module(f"{__name__}.{module.name}")


_register_areas()
