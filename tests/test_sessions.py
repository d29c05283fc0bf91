"""Sessions end when they should, sign-in throttling cannot lock anyone out from elsewhere, and
the session cookie, its signing key and /metrics are safe by default (issue 14, findings 2, 3
and parts of 6)."""

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from engine import Engine, FixedClock
from engine.models import Event
from tests.county import token
from webui import create_app
from webui.cli import cli

ATTACKER, OWNER = "10.0.0.66", "10.0.0.5"


@pytest.fixture
def engine(county_engine: Engine) -> Engine:
    """These tests run on a fresh copy of the demo county (password `demo`)."""
    return county_engine


@pytest.fixture
def app(engine: Engine):
    return create_app(
        {"TESTING": True, "SECRET_KEY": "sessions", "WTF_CSRF_ENABLED": False}, engine=engine
    )


def _client(app: Any, address: str = OWNER) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _page_sign_in(client: Any, username: str = "staff", password: str = "demo") -> Any:
    return client.post("/login", data={"username": username, "password": password})


def _api_sign_in(client: Any, username: str, password: str = "demo") -> Any:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def _captured(app: Any, victim: Any) -> Any:
    """Another browser holding a copy of `victim`'s session cookie."""
    thief = _client(app, ATTACKER)
    thief.set_cookie("session", victim.get_cookie("session").value)
    return thief


def _signed_in(client: Any) -> bool:
    return client.get("/api/v1/auth/me").status_code == 200


def _events(engine: Engine, kind: str) -> list[Event]:
    with engine.read_session() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


# ------------------------------------------------------------------ finding 2: sessions end
def test_a_cookie_captured_before_sign_out_stops_working(app) -> None:
    browser = _client(app)
    assert _page_sign_in(browser).status_code == 302
    thief = _captured(app, browser)
    assert _signed_in(thief) and thief.get("/inbox").status_code == 200

    assert browser.post("/logout").status_code == 302

    page = thief.get("/inbox")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    me = thief.get("/api/v1/auth/me")
    assert me.status_code == 401 and me.get_json()["message"] == "请先登录"
    # signing in again starts a new session; the captured one stays dead
    assert _page_sign_in(browser).status_code == 302 and _signed_in(browser)
    assert not _signed_in(thief)


def test_a_password_change_ends_every_session_and_token(app, engine) -> None:
    browser = _client(app)
    _page_sign_in(browser)
    thief = _captured(app, browser)
    staff_token = token(browser, "staff")
    admin = token(_client(app), "admin")

    changed = browser.patch("/api/v1/users/staff", json={"password": "newpass1"}, headers=admin)
    assert changed.status_code == 200

    assert not _signed_in(browser) and not _signed_in(thief)
    assert browser.get("/api/v1/auth/me", headers=staff_token).status_code == 401
    assert _page_sign_in(_client(app), password="newpass1").status_code == 302


def test_deactivation_ends_sessions_and_revokes_tokens_for_good(app, engine) -> None:
    browser = _client(app)
    _page_sign_in(browser, "town_liaison")
    old_token = token(browser, "town_liaison")
    admin = token(_client(app), "admin")
    off = browser.post(
        "/api/v1/users/town_liaison/deactivate", json={"reason": "调离"}, headers=admin
    )
    assert off.status_code == 200
    assert not _signed_in(browser)
    on = browser.post("/api/v1/users/town_liaison/activate", json={"reason": "调回"}, headers=admin)
    assert on.status_code == 200

    # reactivation brings neither the old token nor the old session back
    again = browser.get("/api/v1/auth/me", headers=old_token)
    assert again.status_code == 401 and again.get_json()["message"] == "登录凭证已注销，请重新登录"
    assert not _signed_in(browser)
    assert browser.get("/api/v1/auth/me", headers=token(browser, "town_liaison")).status_code == 200


def test_an_administrator_signs_a_user_out_everywhere(app, engine) -> None:
    browser = _client(app)
    _page_sign_in(browser, "deputy")
    deputy_token = token(browser, "deputy")
    admin = token(_client(app), "admin")

    refused = browser.post(
        "/api/v1/users/deputy/sign-out", json={"reason": "试试"}, headers=deputy_token
    )
    assert refused.status_code == 403
    no_reason = browser.post("/api/v1/users/deputy/sign-out", json={}, headers=admin)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    done = browser.post("/api/v1/users/deputy/sign-out", json={"reason": "手机遗失"}, headers=admin)
    assert done.status_code == 200
    assert done.get_json() == {"username": "deputy", "tokens_revoked": 1}
    assert not _signed_in(browser)
    assert browser.get("/api/v1/auth/me", headers=deputy_token).status_code == 401
    event = engine.audit_events("admin", kind="signed_out_everywhere")["items"][0]
    assert (event["actor"], event["reason"]) == ("admin", "手机遗失")
    assert event["detail"] == {"username": "deputy", "tokens_revoked": 1}


def test_the_console_has_a_sign_out_everywhere_button(app, engine) -> None:
    victim = _client(app)
    _page_sign_in(victim, "deputy")
    console = _client(app)
    _page_sign_in(console, "admin")
    page = console.get("/console/directory/users/deputy").get_data(as_text=True)
    assert 'action="/console/directory/users/deputy/sign-out"' in page and "强制退出" in page
    done = console.post(
        "/console/directory/users/deputy/sign-out",
        data={"reason": "账号疑似被盗用"},
        follow_redirects=True,
    )
    assert "已强制退出 deputy 的全部登录" in done.get_data(as_text=True)
    assert not _signed_in(victim) and _signed_in(console)
    audit = console.get("/console/audit?kind=signed_out_everywhere").get_data(as_text=True)
    assert "强制退出全部登录" in audit and "账号疑似被盗用" in audit


def test_an_administrator_changing_their_own_password_stays_signed_in_here_only(app) -> None:
    here, there = _client(app), _client(app, ATTACKER)
    _page_sign_in(here, "admin")
    _page_sign_in(there, "admin")
    saved = here.post(
        "/console/directory/users/admin",
        data={"name": "系统管理员", "password": "newpass1", "roles": ["系统管理员"]},
    )
    assert saved.status_code == 302
    assert _signed_in(here) and not _signed_in(there)


def test_a_session_from_before_the_upgrade_is_not_trusted(app) -> None:
    """A cookie without the session stamp (signed before revocation existed) is ended."""
    browser = _client(app)
    with browser.session_transaction() as session:
        session["username"] = "staff"
    assert not _signed_in(browser)


# ------------------------------------------------------------------ finding 3: throttling
def test_wrong_passwords_elsewhere_never_lock_the_owner_out(app, engine) -> None:
    attacker, owner = _client(app, ATTACKER), _client(app, OWNER)
    for _ in range(12):
        assert _api_sign_in(attacker, "admin", "guess").status_code in (401, 429)
    assert _api_sign_in(owner, "admin").status_code == 200
    assert _page_sign_in(_client(app, OWNER), "admin").status_code == 302


def test_failures_from_one_address_wait_longer_and_longer(app, clock: FixedClock) -> None:
    attacker = _client(app, ATTACKER)
    for _ in range(5):
        wrong = _api_sign_in(attacker, "staff", "x")
        assert wrong.status_code == 401 and wrong.get_json()["message"] == "用户名或密码错误"
    waiting = _api_sign_in(attacker, "staff")  # even the right password waits, from there
    assert waiting.status_code == 429 and "登录尝试过于频繁" in waiting.get_json()["message"]
    first = int(waiting.headers["Retry-After"])
    assert 0 < first <= 61
    clock.advance(seconds=first)
    assert _api_sign_in(attacker, "staff", "x").status_code == 401
    second = int(_api_sign_in(attacker, "staff", "x").headers["Retry-After"])
    assert second > first  # the next failure waits twice as long
    clock.advance(seconds=second)
    assert _api_sign_in(attacker, "staff").status_code == 200  # and success clears the count
    assert _api_sign_in(attacker, "staff", "x").status_code == 401


def test_one_address_trying_many_names_is_slowed_down(app, clock: FixedClock) -> None:
    sprayer = _client(app, ATTACKER)
    for number in range(20):
        assert _api_sign_in(sprayer, f"user{number}", "123456").status_code == 401
    slowed = _api_sign_in(sprayer, "director")
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) > 0
    assert _api_sign_in(_client(app, OWNER), "director").status_code == 200
    clock.advance(seconds=int(slowed.headers["Retry-After"]))
    assert _api_sign_in(sprayer, "director").status_code == 200


def test_the_address_behind_a_proxy_comes_from_proxy_hops(engine: Engine) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "proxy", "PROXY_HOPS": 1}, engine=engine)
    proxy = _client(app, "127.0.0.1")
    for _ in range(5):
        proxy.post(
            "/api/v1/auth/token",
            json={"username": "staff", "password": "x"},
            headers={"X-Forwarded-For": ATTACKER},
        )
    owner = proxy.post(
        "/api/v1/auth/token",
        json={"username": "staff", "password": "demo"},
        headers={"X-Forwarded-For": OWNER},
    )
    assert owner.status_code == 200
    failed = _events(engine, "sign_in_failed")
    assert {e.detail["address"] for e in failed} == {ATTACKER}


def test_failed_sign_ins_are_shown_to_the_owner_and_to_administrators(app, engine) -> None:
    attacker = _client(app, ATTACKER)
    for _ in range(3):
        _api_sign_in(attacker, "staff", "wrong")
    failed = _events(engine, "sign_in_failed")
    assert len(failed) == 3 and "wrong" not in str([e.detail for e in failed])
    assert failed[0].detail["address"] == ATTACKER and failed[0].detail["username"] == "staff"

    owner = _client(app, OWNER)
    home = owner.post(
        "/login", data={"username": "staff", "password": "demo"}, follow_redirects=True
    )
    notice = home.get_data(as_text=True)
    assert "3 次登录失败" in notice and ATTACKER in notice
    account = owner.get("/account").get_data(as_text=True)
    assert "最近登录失败记录" in account and ATTACKER in account
    listed = owner.get("/api/v1/auth/sign-in-failures").get_json()
    assert len(listed["items"]) == 3 and listed["items"][0]["address"] == ATTACKER
    # the next sign-in has nothing new to report
    again = _client(app, OWNER)
    quiet = again.post(
        "/login", data={"username": "staff", "password": "demo"}, follow_redirects=True
    )
    assert "次登录失败" not in quiet.get_data(as_text=True)

    admin = _client(app)
    _page_sign_in(admin, "admin")
    audit = admin.get("/console/audit?kind=sign_in_failed").get_data(as_text=True)
    assert "登录失败" in audit and ATTACKER in audit


# ------------------------------------------------------------------ finding 6 (parts)
def test_the_session_cookie_is_samesite_lax_and_http_only(engine: Engine) -> None:
    app = create_app({"SECRET_KEY": "cookie", "WTF_CSRF_ENABLED": False}, engine=engine)
    response = app.test_client().post("/login", data={"username": "staff", "password": "demo"})
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_without_a_configured_secret_every_process_shares_the_stored_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUBAN_SECRET_KEY", raising=False)
    first, second = (
        create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, engine=engine) for _ in range(2)
    )
    browser = _client(first)
    assert _page_sign_in(browser).status_code == 302
    other = _client(second)  # another gunicorn worker, or the same server after a restart
    other.set_cookie("session", browser.get_cookie("session").value)
    assert _signed_in(other)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32


def test_duban_init_stores_a_secret_key(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("DUBAN_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    stored = Engine(db_url)
    try:
        with stored.db.connect() as conn:
            key = conn.execute(text("SELECT value FROM app_setting WHERE name = 'secret_key'"))
            value = key.scalar_one()
        assert len(value) >= 32
        CliRunner().invoke(cli, ["init"], catch_exceptions=False)  # kept, not drawn again
        app = create_app({"TESTING": True}, engine=stored)
        app.test_client().get("/login")
        assert app.secret_key == value
    finally:
        stored.close()


def test_metrics_need_an_administrator_or_the_token(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    app = create_app({"TESTING": True, "SECRET_KEY": "m", "WTF_CSRF_ENABLED": False}, engine=engine)
    assert _client(app).get("/metrics").status_code == 401
    staff = _client(app)
    _page_sign_in(staff, "staff")
    assert staff.get("/metrics").status_code == 403
    admin = _client(app)
    _page_sign_in(admin, "admin")
    scraped = admin.get("/metrics")
    assert scraped.status_code == 200 and "duban_database_up 1.0" in scraped.get_data(as_text=True)
    # a bearer API token is not the metrics token
    assert _client(app).get("/metrics", headers=token(_client(app), "admin")).status_code == 401

    monkeypatch.setenv("METRICS_TOKEN", "s3cret")
    scraper = create_app({"TESTING": True, "SECRET_KEY": "m"}, engine=engine).test_client()
    assert scraper.get("/metrics").status_code == 401
    wrong = scraper.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert scraper.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
