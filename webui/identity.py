"""Who is signing in: the built-in password form by default, or a pluggable external provider.

The province's unified identity (统一身份认证, OIDC) plugs in here without touching the pages:
set `DUBAN_IDENTITY_PROVIDER=package.module:factory`, where `factory(app)` returns an object with

- `title` — the button text on the sign-in page, e.g. "使用省统一身份认证登录";
- `start(next_url) -> str` — the URL to send the browser to (the provider's authorize endpoint;
  an OIDC implementation would use Authlib's Flask client here);
- `finish(request) -> str` — called on `/login/callback`; verifies the provider's answer and
  returns the **username** of an existing, active duban user (map the provider's `sub` or
  ID-card claim to a username there). Raise `engine.errors.NotSignedIn` to refuse.

duban keeps its own users, units and roles either way: the provider only proves who someone
is; what they may do still comes from duban's directory. The password form stays available to
administrators as a fallback unless `DUBAN_PASSWORD_LOGIN=0`.
"""

import importlib
from typing import Protocol

from flask import Flask, Request


class IdentityProvider(Protocol):
    title: str

    def start(self, next_url: str) -> str: ...

    def finish(self, request: Request) -> str: ...


def load_provider(app: Flask) -> IdentityProvider | None:
    spec = app.config.get("IDENTITY_PROVIDER")
    if not spec:
        return None
    module_name, _, factory_name = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name or "create_provider")
    return factory(app)
