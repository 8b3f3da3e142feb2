"""The county console's web app (Starlette): pages, CSV, one JSON for the hall chart, login.

Login, sessions, CSRF and security headers are the hall dashboard's (:mod:`dashboard.web`).
Every page is read-only and scoped: a township leader's request for another township's hall
gets 404, the same answer as a hall that does not exist. Queries run in a thread on a small
pool of PostgreSQL connections (:mod:`county.console` keeps each one to summary rows).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import psycopg
from hallkit.county import console
from hallkit.county.console import Grouping, Scope
from hallkit.county.report import DEFINITIONS
from hallkit.county.web.accounts import Account, Accounts, ConsoleRole, scope_of
from hallkit.county.web.views import format_month, month_csv, parse_month, parse_period
from hallkit.dashboard.web import (
    LoginRequired,
    SecurityHeaders,
    SessionPages,
    chosen_lang,
    page_templates,
    remember_lang,
    session_of,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hallkit.accounts import AuthError, UserStore
from hallkit.i18n import text

log = logging.getLogger("hallkit.county.web")

PACKAGE = Path(str(resources.files("hallkit.county.web")))
ECHARTS = Path(str(resources.files("hallkit.dashboard"))) / "static" / "echarts.min.js"
PUBLIC_PATHS = ("/health", "/login", "/static/console.css")
T = TypeVar("T")
RANKING_ENDS = 100


class Pool:
    """A few open connections, lent one at a time; a broken one is dropped, not lent again."""

    def __init__(self, dsn: str, size: int = 4) -> None:
        self.dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True)
        try:
            yield conn
        except psycopg.OperationalError:
            conn.close()
            raise
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


class Console(SessionPages):
    def __init__(self, pool: Pool, users: UserStore, county_name: str = "") -> None:
        self.pool = pool
        self.users = users
        self.accounts = Accounts(users)
        self.county_name = county_name
        self.templates = page_templates(PACKAGE / "templates")

    def app(self) -> Starlette:
        routes = [
            *self.session_routes(),
            Route("/", self.halls_page),
            Route("/halls/{hall}", self.hall_page),
            Route("/api/halls/{hall}/hours", self.hall_hours),
            Route("/devices", self.devices_page),
            Route("/api/devices/stamp", self.devices_stamp),
            Route("/ratings", self.ratings_page),
            Route("/report", self.report_page),
            Route("/report.csv", self.report_download),
            Route("/logins", self.logins_page),
            Route("/vendor/echarts.min.js", lambda _r: FileResponse(ECHARTS, media_type="text/javascript")),
            Mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static"),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(LoginRequired, users=self.users, public=PUBLIC_PATHS)
        app.add_middleware(SecurityHeaders)
        return app

    # ---- plumbing ----------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
        lang = chosen_lang(request)
        session = request.state.session

        def t(key: str, **params: object) -> str:
            return text(f"county.web.{key}", lang, **params)

        other = "en" if lang == "zh" else "zh"
        html = self.templates.get_template(template).render(
            t=t, tr=lambda key, **params: text(key, lang, **params), lang=lang, session=session,
            account=context.pop("account", None), path=request.url.path, county_name=self.county_name, zone=console.ZONE,
            lang_url="?" + urlencode({**request.query_params, "lang": other}), query=request.query_params,
            **context)
        response = HTMLResponse(html, status_code=status_code)
        remember_lang(request, response)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _read(self, request: Request, work: Callable[[psycopg.Connection, Scope, Account], T]) -> T:
        """``work`` on a pooled connection with the login's scope, in a thread."""
        account = self.accounts.get(session_of(request).user.name)

        def run() -> T:
            with self.pool.connection() as conn:
                return work(conn, scope_of(conn, account), account)  # type: ignore[arg-type]  # checked in scope_of

        return await run_in_threadpool(run)

    def _day(self, request: Request) -> date:
        try:
            return date.fromisoformat(request.query_params["day"])
        except (KeyError, ValueError):
            return console.county_today()

    def _not_found(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(text("county.web.not_found", chosen_lang(request)), status_code=404)

    # ---- pages -------------------------------------------------------------------------------

    async def health(self, _request: Request) -> JSONResponse:
        def ping() -> bool:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
            return True

        try:
            ok = await run_in_threadpool(ping)
        except psycopg.Error:
            ok = False
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    async def halls_page(self, request: Request) -> Response:
        day = self._day(request)
        now = datetime.now(UTC)
        try:
            rows, account = await self._read(
                request, lambda conn, scope, account: (console.halls_overview(conn, scope, day, now), account))
        except AuthError:
            return self._no_account(request)
        return self.render(request, "halls.html", account=account, rows=rows, day=day, now=now,
                           today=day == console.county_today(now))

    async def hall_page(self, request: Request) -> Response:
        hall = request.path_params["hall"]
        day = self._day(request)
        now = datetime.now(UTC)
        try:
            detail, account = await self._read(
                request, lambda conn, scope, account: (console.hall_detail(conn, scope, hall, day, now), account))
        except AuthError:
            return self._no_account(request)
        if detail is None:
            return self._not_found(request)
        return self.render(request, "hall.html", account=account, detail=detail, day=day, today=console.county_today(now),
                           previous=day - timedelta(days=1), next=day + timedelta(days=1))

    async def hall_hours(self, request: Request) -> Response:
        hall = request.path_params["hall"]
        day = self._day(request)
        try:
            detail = await self._read(
                request, lambda conn, scope, _a: console.hall_detail(conn, scope, hall, day, datetime.now(UTC)))
        except AuthError:
            return JSONResponse({"error": "no console account"}, status_code=403)
        if detail is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response("[" + ",".join(h.model_dump_json() for h in detail.hours) + "]",
                        media_type="application/json", headers={"Cache-Control": "no-store"})

    async def devices_page(self, request: Request) -> Response:
        now = datetime.now(UTC)
        visit = request.query_params.get("visit") == "1"
        every = request.query_params.get("all") == "1"
        kind = request.query_params.get("kind", "")
        try:
            fleet, stamp, account = await self._read(request, lambda conn, scope, account: (
                console.fleet_view(conn, scope, now), console.fleet_stamp(conn, scope), account))
        except AuthError:
            return self._no_account(request)
        # A county has thousands of devices: the list shows those that need someone unless asked for all.
        shown = [d for d in fleet.devices if (not kind or d.kind == kind)
                 and (d.needs_visit if visit else every or d.needs_visit or d.state == "offline")]
        return self.render(request, "devices.html", account=account, fleet=fleet, shown=shown[:console.DEVICE_LIST_LIMIT], matching=len(shown),
                           visit=visit, every=every,
                           kind=kind, now=now, visit_minutes=console.VISIT_OFFLINE_MINUTES, stamp=stamp)

    async def devices_stamp(self, request: Request) -> Response:
        try:
            stamp = await self._read(request, lambda conn, scope, _a: console.fleet_stamp(conn, scope))
        except AuthError:
            return JSONResponse({"error": "no console account"}, status_code=403)
        return JSONResponse({"stamp": stamp}, headers={"Cache-Control": "no-store"})

    async def ratings_page(self, request: Request) -> Response:
        now = datetime.now(UTC)
        today = console.county_today(now)
        period, mode = parse_period(request.query_params, today)
        try:
            by = Grouping(request.query_params.get("by", "hall"))
        except ValueError:
            by = Grouping.HALL

        every = request.query_params.get("overdue") == "all"

        def load(conn: psycopg.Connection, scope: Scope, account: Account
                 ) -> tuple[list[console.OverdueCase], int, list[console.RatingFigures], list[console.BadRating], Account]:
            limit = console.OVERDUE_LIST_LIMIT if every else console.OVERDUE_SHOWN
            total = sum(overdue for _open, overdue in console.open_cases(conn, scope, today).values())
            return (console.overdue_cases(conn, scope, today, limit), total,
                    console.satisfaction(conn, scope, period, by), console.bad_ratings(conn, scope, period), account)

        try:
            overdue, overdue_total, figures, bad, account = await self._read(request, load)
        except AuthError:
            return self._no_account(request)
        # 500 halls' staff are thousands of rows: the best and the worst of a long ranking are shown.
        omitted = max(0, len(figures) - 2 * RANKING_ENDS)
        shown = figures if not omitted else figures[:RANKING_ENDS] + figures[-RANKING_ENDS:]
        return self.render(request, "ratings.html", account=account, overdue=overdue, figures=shown, bad=bad,
                           omitted=omitted, split=RANKING_ENDS, ranked=len(figures), overdue_total=overdue_total,
                           query_all=urlencode({**request.query_params, "overdue": "all"}),
                           period=period, mode=mode, by=by, groupings=list(Grouping), today=today,
                           min_ranked=console.MIN_RANKED, bad_limit=console.BAD_LIST_LIMIT)

    async def report_page(self, request: Request) -> Response:
        now = datetime.now(UTC)
        month = parse_month(request.query_params.get("month"), console.county_today(now))
        try:
            report, account = await self._read(
                request, lambda conn, scope, account: (console.month_report(conn, scope, month, now), account))
        except AuthError:
            return self._no_account(request)
        return self.render(request, "report.html", account=account, report=report, month=format_month(month),
                           definitions=[*DEFINITIONS, *console.MONTH_DEFINITIONS], printed=now.astimezone(console.ZONE))

    async def report_download(self, request: Request) -> Response:
        now = datetime.now(UTC)
        month = parse_month(request.query_params.get("month"), console.county_today(now))
        try:
            report = await self._read(request, lambda conn, scope, _a: console.month_report(conn, scope, month, now))
        except AuthError:
            return self._no_account(request)
        body = month_csv(report, chosen_lang(request), [*DEFINITIONS, *console.MONTH_DEFINITIONS])
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="county-report-{format_month(month)}.csv"',
                                 "Cache-Control": "no-store"})

    async def logins_page(self, request: Request) -> Response:
        account = self.accounts.get(session_of(request).user.name)
        if account is None or account.role is not ConsoleRole.ADMIN:
            return PlainTextResponse(text("county.web.admin_only", chosen_lang(request)), status_code=403)

        def load(conn: psycopg.Connection, _scope: Scope, _account: Account) -> tuple[object, object]:
            register = conn.execute("SELECT hall, name, township FROM hall_register ORDER BY township, hall").fetchall()
            return register, {a.name: scope_of(conn, a) for a in self.accounts.all()}

        register, scopes = await self._read(request, load)
        return self.render(request, "logins.html", account=account, accounts=self.accounts.all(), scopes=scopes,
                           register=register)

    def _no_account(self, request: Request) -> PlainTextResponse:
        # A dashboard-style login without a console role: it sees nothing rather than everything.
        return PlainTextResponse(text("county.web.no_account", chosen_lang(request)), status_code=403)
