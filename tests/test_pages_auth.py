"""Signing in to the pages: the form, CSRF on every state change, open-redirect safety, logout,
the API used from a signed-in page, and the external identity provider hook."""

import re

import pytest

from engine import Engine
from webui import create_app


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    """These tests run on a fresh copy of the demo county."""
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app({"SECRET_KEY": "pages"}, engine=engine)  # CSRF on, as in production


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form carries a CSRF token"
    return found.group(1)


def _sign_in(client, username: str = "staff", password: str = "demo", next_url: str = "/"):
    form = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": _csrf(form),
            "next": next_url,
        },
    )


def test_sign_in_and_out(app) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert '<label for="username">用户名</label>' in page and 'type="password"' in page
    wrong = _sign_in(client, password="nope")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    assert 'value="staff"' in wrong.get_data(as_text=True)  # the typed name is kept
    signed = _sign_in(client, next_url="/api/v1/auth/me")
    assert signed.status_code == 302 and signed.headers["Location"] == "/api/v1/auth/me"
    assert client.get("/api/v1/auth/me").get_json()["username"] == "staff"
    home = client.get("/login").get_data(as_text=True)
    logout = client.post("/logout", data={"csrf_token": _csrf(home)})
    assert logout.status_code == 302
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_form_without_its_csrf_token_is_refused(app) -> None:
    client = app.test_client()
    refused = client.post("/login", data={"username": "staff", "password": "demo"})
    assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    _sign_in(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/api/v1/auth/me").status_code == 200  # still signed in


def test_the_api_from_a_signed_in_page_needs_the_csrf_header(app) -> None:
    client = app.test_client()
    _sign_in(client)
    token = _csrf(client.get("/login").get_data(as_text=True))
    without = client.post("/api/v1/instances", json={"process": "supervision_item"})
    assert without.status_code == 400 and without.get_json()["error"] == "csrf_failed"
    with_header = client.post(
        "/api/v1/instances", json={"process": "supervision_item"}, headers={"X-CSRFToken": token}
    )
    assert with_header.status_code == 201


def test_next_never_leaves_the_site(app) -> None:
    client = app.test_client()
    for target in ("https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)"):
        response = _sign_in(app.test_client(), next_url=target)
        assert response.headers["Location"] == "/inbox", target
    assert client.get("/login").status_code == 200


def test_throttled_on_the_page_too(app) -> None:
    client = app.test_client()
    for _ in range(5):
        _sign_in(client, password="nope")
    waiting = _sign_in(client)
    assert waiting.status_code == 429 and "登录尝试过于频繁" in waiting.get_data(as_text=True)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert _sign_in(elsewhere).status_code == 302  # the owner, from their own address


def test_an_external_identity_provider_plugs_in(engine: Engine) -> None:
    app = create_app(
        {"SECRET_KEY": "idp", "IDENTITY_PROVIDER": "tests.fake_identity:create_provider"},
        engine=engine,
    )
    client = app.test_client()
    assert "使用省统一身份认证登录" in client.get("/login").get_data(as_text=True)
    start = client.get("/login/external?next=/api/v1/auth/me")
    assert start.headers["Location"].startswith("https://idp.example.gov.cn/authorize")
    refused = client.get("/login/callback?user=admin&secret=wrong")
    assert refused.status_code == 401 and "统一身份认证未通过" in refused.get_data(as_text=True)
    unknown = client.get("/login/callback?user=ghost&secret=s3cret")
    assert unknown.status_code == 401
    done = client.get("/login/callback?user=director&secret=s3cret")
    assert done.status_code == 302 and done.headers["Location"] == "/api/v1/auth/me"
    assert client.get("/api/v1/auth/me").get_json()["username"] == "director"
