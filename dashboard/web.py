"""Login, session, CSRF and header rules shared by the hall dashboard and the county console.

Every request passes :class:`LoginRequired` first: without a valid session nothing answers but
the public paths (health, the login page, its stylesheet). Forms that change something post the
session's CSRF token; the login form uses a double-submit cookie. :class:`SessionPages` holds the
login, logout and form checks; an app mixes it in and supplies ``users`` and ``render``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hallkit.accounts import AuthError, Role, Session, UserStore
from hallkit.commandline import CommandFailed, say_listening
from hallkit.i18n import Lang, text

log = logging.getLogger("hallkit.dashboard.web")

KIT_TEMPLATES = Path(str(resources.files("hallkit.dashboard"))) / "templates" / "kit"
"""The pages every app with logins shares (the login form), found after the app's own templates."""


def page_templates(folder: Path) -> Environment:
    """An app's templates: its own folder first, then the kit's."""
    return Environment(loader=FileSystemLoader([folder, KIT_TEMPLATES]), autoescape=select_autoescape(["html"]))


SESSION_COOKIE = "hallkit_session"
LOGIN_CSRF_COOKIE = "hallkit_login_csrf"
LANG_COOKIE = "hallkit_lang"
CSRF_TOKEN_BYTES = 24

SECURITY_HEADERS = {
    # Scripts come from the app itself, never inline; ECharts sets element styles, hence style-src.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class LoginRequired:
    """ASGI middleware: finds the session; sends everyone without one to the login page."""

    def __init__(self, app: ASGIApp, users: UserStore, public: Iterable[str]) -> None:
        self.app = app
        self.users = users
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        cookie = SimpleCookie()
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie.load(value.decode("latin-1"))
        token = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None
        session = await run_in_threadpool(self.users.session, token) if token else None
        scope.setdefault("state", {})["session"] = session
        if session is None and path not in self.public:
            if path.startswith("/api/") or scope["method"] != "GET":
                response: Response = JSONResponse({"error": "login required"}, status_code=401)
            else:
                asked = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
                response = RedirectResponse("/login" + (f"?{urlencode({'next': asked})}" if path != "/" else ""),
                                            status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: the headers of :data:`SECURITY_HEADERS` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def safe_next(asked: str) -> str:
    """Where to go after login: a path on this site, else the board (never another site: an open redirect).

    ``//evil.example`` and ``/\\evil.example`` are other sites to a browser; so is anything with a scheme.
    """
    if not asked.startswith("/") or asked.startswith(("//", "/\\")) or any(c in asked for c in "\\\r\n\t"):
        return "/"
    parts = urlsplit(asked)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return "/"
    return asked


def chosen_lang(request: Request) -> Lang:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if chosen == "en" else "zh"


def session_of(request: Request) -> Session:
    session: Session | None = request.state.session
    assert session is not None  # LoginRequired let the request through
    return session


def remember_lang(request: Request, response: Response) -> None:
    """A ``?lang=`` choice sticks for later pages."""
    if "lang" in request.query_params:
        response.set_cookie(LANG_COOKIE, chosen_lang(request), max_age=365 * 86400, samesite="strict",
                            httponly=True, secure=request.url.scheme == "https")


class SessionPages:
    """Login, logout and the CSRF check of posted forms; the app supplies ``users`` and ``render``."""

    users: UserStore

    def render(self, request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
        raise NotImplementedError

    async def health(self, _request: Request) -> JSONResponse:
        raise NotImplementedError

    def session_routes(self) -> list[Route]:
        """The routes every app with logins has: its health check, logging in and out."""
        return [
            Route("/health", self.health),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    async def login_page(self, request: Request, error: str = "", status_code: int = 200) -> HTMLResponse:
        # Keep the token a browser already holds: its favicon request also lands here, and a new
        # token would then no longer match the form on screen.
        held = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        token = held if len(held) >= len(secrets.token_urlsafe(CSRF_TOKEN_BYTES)) else secrets.token_urlsafe(CSRF_TOKEN_BYTES)
        response = self.render(request, "login.html", status_code=status_code, csrf=token, error=error,
                               next=safe_next(request.query_params.get("next", "/")))
        # Double-submit: the form's token must match this cookie, which another site cannot read or set.
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        sent = str(form.get("csrf", ""))
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            return await self.login_page(request, text("dashboard.login.expired", chosen_lang(request)), 400)
        address = request.client.host if request.client else "-"
        name = str(form.get("name", "")).strip().lower()[:64]
        try:
            token, session = await run_in_threadpool(self.users.login, name, str(form.get("password", "")), address)
        except AuthError as exc:
            key = "dashboard.login.locked" if str(exc) == "locked" else "dashboard.login.failed"
            return await self.login_page(request, text(key, chosen_lang(request)), 429 if str(exc) == "locked" else 401)
        response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            max_age=int((session.expires - datetime.now(UTC)).total_seconds()),
                            secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    async def checked_form(self, request: Request, manager: bool) -> tuple[Session, dict[str, str]] | Response:
        """The posted form when its CSRF token is the session's (and the user may change things)."""
        session = session_of(request)
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            log.warning("CSRF token mismatch from %s on %s", session.user.name, request.url.path)
            return PlainTextResponse(text("dashboard.csrf_failed", chosen_lang(request)), status_code=403)
        if manager and session.user.role is not Role.MANAGER:
            log.warning("viewer %s tried to post %s", session.user.name, request.url.path)
            return PlainTextResponse(text("dashboard.read_only", chosen_lang(request)), status_code=403)
        return session, {k: str(v) for k, v in form.items()}

    async def logout(self, request: Request) -> Response:
        checked = await self.checked_form(request, manager=False)
        if isinstance(checked, Response):
            return checked
        await run_in_threadpool(self.users.logout, request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


# ---- serving: the dashboard, the county's console and the phone page alike ----------------------


def local_url(host: str, port: int, tls: bool) -> str:
    """Where a browser on this machine reaches a server listening on ``host``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


class Serving(Protocol):
    """A web app's server as its command runs it: where it listens, and serving until stopped."""

    @property
    def url(self) -> str: ...

    @property
    def host(self) -> str: ...

    def run(self) -> None: ...


def serve_in_foreground(server: Serving) -> int:
    """Say where ``server`` listens and serve until Ctrl-C: the ``hall`` command's end for every web app."""
    print(say_listening(server.url, server.host))
    try:
        server.run()
    except OSError as exc:
        raise CommandFailed(exc.strerror or str(exc)) from None
    return 0


def serve_in_background(server: uvicorn.Server, what: str, sock: socket.socket | None = None,
                        wait: float = 10.0) -> threading.Thread:
    """Run ``server`` on a thread (the demo, tests, benches); return once it serves, or raise
    ``OSError`` naming ``what`` (given ``sock``, the port was bound before anything else started)."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock] if sock else None},
                              name=f"{what}-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + wait
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise OSError(f"the {what} did not start on {server.config.host}:{server.config.port}")
        time.sleep(0.02)
    return thread


def stop_serving(server: uvicorn.Server, thread: threading.Thread | None) -> None:
    server.should_exit = True
    if thread is not None:
        thread.join(timeout=10)
