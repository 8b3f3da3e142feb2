"""Logins, sessions, CSRF, the viewer role and the failed-login limit, over plain HTTP."""

from __future__ import annotations

import argparse
import io
import logging
import re
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from hallkit.dashboard.web import safe_next

from hallkit.accounts import ADDRESS_FACTOR, AuthError, Role, UserStore, verify_password
from tests.dashboard.conftest import MANAGER, VIEWER

PAGES = ("/", "/charts", "/ratings", "/devices", "/report", "/report.csv", "/api/board", "/api/charts",
         "/api/devices", "/api/stream", "/static/echarts.min.js", "/static/dashboard.js")


def _login(client: httpx.Client, user: tuple[str, str]) -> httpx.Response:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post("/login", data={"csrf": csrf, "name": user[0], "password": user[1]})


def _csrf(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


def test_nothing_answers_without_a_session_but_health(hall):
    with httpx.Client(base_url=hall.url) as client:
        assert client.get("/health").json()["ok"] is True
        for path in PAGES:
            response = client.get(path)
            assert response.status_code in (303, 401), path
            if response.status_code == 303:  # to the login page, which brings the user back here
                expected = "/login" if path == "/" else f"/login?{urlencode({'next': path})}"
                assert response.headers["location"] == expected, path
        assert client.post("/cases/x/step", data={"step": "verified"}).status_code == 401
    with httpx.Client(base_url=hall.url, cookies={"hallkit_session": "forged"}) as forged:
        assert forged.get("/").status_code == 303


def test_login_goes_back_to_the_page_asked_for_and_only_to_this_site(hall):
    with httpx.Client(base_url=hall.url) as client:
        asked = client.get("/ratings?day=2026-01-05")
        assert asked.headers["location"] == "/login?next=%2Fratings%3Fday%3D2026-01-05"
        page = client.get(asked.headers["location"]).text
        assert 'name="next" value="/ratings?day=2026-01-05"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        done = client.post("/login", data={"csrf": csrf, "name": MANAGER[0], "password": MANAGER[1],
                                           "next": "/ratings?day=2026-01-05"})
        assert (done.status_code, done.headers["location"]) == (303, "/ratings?day=2026-01-05")
    for unsafe in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                   "/login", "ratings", "/\r\nLocation: x", ""):
        assert safe_next(unsafe) == "/", unsafe
    assert safe_next("/devices?lang=en") == "/devices?lang=en"


def test_login_needs_its_csrf_token_and_logout_ends_the_session(hall):
    with httpx.Client(base_url=hall.url) as client:
        refused = client.post("/login", data={"csrf": "x", "name": MANAGER[0], "password": MANAGER[1]})
        assert refused.status_code == 400 and "hallkit_session" not in client.cookies
        assert _login(client, MANAGER).status_code == 303
        assert client.get("/api/board").json()["hall"] == "test-hall"
        csrf = _csrf(client)
        assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/api/board").status_code == 401


def test_viewer_may_not_post_a_case_step(hall):
    with httpx.Client(base_url=hall.url) as client:
        _login(client, VIEWER)
        response = client.post("/cases/some-case/step", data={"csrf": _csrf(client), "step": "verified"})
        assert response.status_code == 403
    with httpx.Client(base_url=hall.url) as client:
        _login(client, MANAGER)
        assert client.post("/cases/some-case/step", data={"step": "verified"}).status_code == 403  # no token


def test_failed_logins_are_limited_and_logged(hall, caplog):
    caplog.set_level(logging.WARNING, "hallkit.accounts")
    limit = hall.config.dashboard.max_failed_logins
    with httpx.Client(base_url=hall.url) as client:
        for _ in range(limit):
            assert _login(client, (MANAGER[0], "wrong-password")).status_code == 401
        # The right password no longer helps while the lockout lasts.
        locked = _login(client, MANAGER)
        assert locked.status_code == 429 and "次数过多" in locked.text
    assert sum("failed login" in r.message for r in caplog.records) == limit
    assert any("locked out" in r.message for r in caplog.records)


def test_passwords_are_scrypt_hashes_and_sessions_expire(tmp_path):
    store = UserStore(tmp_path / "d.sqlite3", session_hours=1)
    store.add_user("wang", Role.MANAGER, "a-long-password")
    stored = sqlite3.connect(tmp_path / "d.sqlite3").execute("SELECT password FROM users").fetchone()[0]
    assert stored.startswith("scrypt$16384$8$1$") and "a-long-password" not in stored
    assert verify_password("a-long-password", stored) and not verify_password("a-long-passwore", stored)
    token, session = store.login("wang", "a-long-password", "127.0.0.1")
    assert store.session(token) == session
    # Age the session past its end.
    store.conn.execute("UPDATE sessions SET expires = ?", ((datetime.now(UTC) - timedelta(seconds=1)).isoformat(),))
    assert store.session(token) is None
    with pytest.raises(AuthError):
        store.add_user("li", Role.VIEWER, "short")
    store.close()


def test_user_add_command_reads_the_password_from_stdin(tmp_path, monkeypatch, capsys):
    from hallkit.dashboard import cli

    from hallkit.commands import example_config

    config = tmp_path / "hall.toml"
    config.write_text(example_config(), "utf-8")
    data = tmp_path / "data"
    parser = argparse.ArgumentParser(prog="hall")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["dashboard", "user", "add", "leader", "--role", "viewer", "--password-stdin",
                              "--config", str(config), "--data", str(data)])
    monkeypatch.setattr(sys, "stdin", io.StringIO("viewer-password\n"))
    assert args.handler(args) == 0
    assert "leader (viewer)" in capsys.readouterr().out
    store = UserStore(data / "dashboard.sqlite3")
    assert [(u.name, u.role) for u in store.users()] == [("leader", Role.VIEWER)]
    store.login("leader", "viewer-password", "127.0.0.1")
    store.close()


def test_parallel_tries_all_count_and_made_up_names_lock_no_one_out(tmp_path):
    store = UserStore(tmp_path / "d.sqlite3", max_failures=5)
    store.add_user("wang", Role.MANAGER, "a-long-password")
    store.add_user("li", Role.MANAGER, "another-long-password")

    def attempt(i: int) -> str:
        try:
            store.login("wang", "wrong-password", f"10.0.0.{i}")
        except AuthError as exc:
            return str(exc)
        return "in"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    # Before: 14 of 40 parallel tries reached the password check.
    assert outcomes.count("failed") == 5 and outcomes.count("locked") == 35
    # Five failures on made-up names from li's own PC: li still gets in from there.
    for n in range(5):
        with pytest.raises(AuthError, match="failed"):
            store.login(f"nobody-{n}", "guess-password", "10.1.1.1")
    token, session = store.login("li", "another-long-password", "10.1.1.1")
    assert session.user.name == "li" and store.session(token) == session
    # A sweep over many names from one address is stopped all the same.
    outcomes = [attempt_name(store, f"name-{n}", "10.2.2.2") for n in range(30)]
    assert outcomes.count("failed") == 5 * ADDRESS_FACTOR and outcomes[-1] == "locked"
    store.close()


def attempt_name(store: UserStore, name: str, address: str) -> str:
    try:
        store.login(name, "guess-password", address)
    except AuthError as exc:
        return str(exc)
    return "in"
