"""duban's web interface: pages and the JSON API, a thin layer over `engine`."""

from .app import create_app

__all__ = ["create_app"]
