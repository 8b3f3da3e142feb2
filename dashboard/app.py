"""The dashboard's web app (Starlette): pages, JSON, the live stream, login and CSRF.

Every request passes :class:`dashboard.web.LoginRequired` first: without a valid session nothing
answers but ``/health``, the login page and its stylesheet. Pages that change something (logout, a
case step) are POST forms carrying the session's CSRF token; a viewer may post only logout. The
login, session and header rules live in :mod:`dashboard.web`, shared with the county console.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from hallkit.dashboard.live import LiveHall
from hallkit.dashboard.report import charts, day_stats, figures, performance, report_csv
from hallkit.dashboard.stats import current_day
from hallkit.dashboard.views import ReportRow
from hallkit.dashboard.web import (
    LoginRequired,
    SecurityHeaders,
    SessionPages,
    chosen_lang,
    page_templates,
    remember_lang,
    session_of,
)
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hallkit.accounts import Role, Session, UserStore
from hallkit.config import HallConfig
from hallkit.i18n import text
from hallkit.rating.followup import followup_numbers
from hallkit.rating.models import CaseStep, CaseStepCommand

log = logging.getLogger("hallkit.dashboard.web")

PUBLIC_PATHS = ("/health", "/login", "/static/dashboard.css")
HEARTBEAT_SECONDS = 15.0
"""An SSE comment this often: a page whose connection died is noticed and dropped."""

PACKAGE = Path(str(resources.files("hallkit.dashboard")))


class Dashboard(SessionPages):
    """The pages, bound to one hall's live state and account store."""

    def __init__(self, config: HallConfig, live: LiveHall, users: UserStore) -> None:
        self.config = config
        self.live = live
        self.users = users
        self.templates = page_templates(PACKAGE / "templates")

    def app(self) -> Starlette:
        routes = [
            *self.session_routes(),
            Route("/", self.board_page),
            Route("/wall", self.wall_page),
            Route("/charts", self.charts_page),
            Route("/ratings", self.ratings_page),
            Route("/cases/{case_id}/step", self.case_step, methods=["POST"]),
            Route("/devices", self.devices_page),
            Route("/report", self.report_page),
            Route("/report.csv", self.report_download),
            Route("/api/board", self.board_json),
            Route("/api/charts", self.charts_json),
            Route("/api/figures", self.figures_json),
            Route("/api/devices", self.devices_json),
            Route("/api/stream", self.stream),
            Mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static"),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan)
        app.add_middleware(LoginRequired, users=self.users, public=PUBLIC_PATHS)
        app.add_middleware(SecurityHeaders)
        return app

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.live.broadcast.loop = asyncio.get_running_loop()
        yield

    # ---- rendering ---------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
        lang = chosen_lang(request)
        session: Session | None = request.state.session

        def t(key: str, **params: object) -> str:
            return text(f"dashboard.{key}", lang, **params)

        html = self.templates.get_template(template).render(
            t=t, lang=lang, session=session, manager=session is not None and session.user.role is Role.MANAGER,
            hall=self.config.hall, board=self.live.board, path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status_code)
        remember_lang(request, response)
        # Pages show who is on duty and case details: never cache them on a shared screen.
        response.headers["Cache-Control"] = "no-store"
        return response

    def _day(self, request: Request) -> date:
        try:
            return date.fromisoformat(request.query_params["day"])
        except (KeyError, ValueError):
            return current_day(self.config, datetime.now(UTC))

    # ---- health and login --------------------------------------------------------------------

    async def health(self, _request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "mqtt": self.live.connected})

    # ---- pages -------------------------------------------------------------------------------

    async def board_page(self, request: Request) -> HTMLResponse:
        return self.render(request, "board.html")

    async def wall_page(self, request: Request) -> HTMLResponse:
        return self.render(request, "wall.html")

    async def charts_page(self, request: Request) -> HTMLResponse:
        return self.render(request, "charts.html", day=self._day(request))

    async def ratings_page(self, request: Request) -> HTMLResponse:
        today = self._today()
        day = self._day(request)
        book = self.live.ratings

        manager = session_of(request).user.role is Role.MANAGER

        def load() -> tuple[object, object]:
            stats = day_stats(self.config, self.live.events, self.live.today, day)
            # Follow-up numbers are for the manager who calls back, never for a viewer's screen.
            phones = followup_numbers(self.live.events.path.parent, self.config.web.followup_retention_days) \
                if manager else {}
            return book.lines(stats), book.case_views(today, self.config.dashboard.case_warning_days, phones)

        lines, cases = await run_in_threadpool(load)
        return self.render(request, "ratings.html", day=day, lines=lines, cases=cases, available=book.available,
                           message=request.query_params.get("msg", ""), ok=request.query_params.get("ok") == "1")

    async def case_step(self, request: Request) -> Response:
        checked = await self.checked_form(request, manager=True)
        if isinstance(checked, Response):
            return checked
        session, form = checked
        try:
            command = CaseStepCommand(case_id=request.path_params["case_id"], step=CaseStep(form.get("step", "")),
                                      by=session.user.name, note=form.get("note", ""))
        except (ValueError, ValidationError):
            query = urlencode({"msg": text("dashboard.case.bad_step", chosen_lang(request)), "ok": 0})
            return RedirectResponse(f"/ratings?{query}", status_code=303)
        reply = await run_in_threadpool(self.live.case_step, command)
        lang = chosen_lang(request)
        if reply is None:
            message, ok = text("dashboard.case.no_answer", lang), False
        elif not reply.ok and reply.refusal is not None:
            message, ok = (reply.refusal.en if lang == "en" else reply.refusal.zh), False
        else:
            message, ok = text("dashboard.case.recorded", lang, step=text(f"dashboard.step.{command.step.value}", lang)), True
        log.info("case %s step %s by %s: %s", command.case_id, command.step.value, session.user.name, message)
        await run_in_threadpool(self.live.refresh)
        return RedirectResponse("/ratings?" + urlencode({"msg": message, "ok": int(ok)}), status_code=303)

    async def devices_page(self, request: Request) -> HTMLResponse:
        return self.render(request, "devices.html", devices=self.live.device_rows(chosen_lang(request)))

    async def report_page(self, request: Request) -> HTMLResponse:
        day = self._day(request)
        rows = await run_in_threadpool(self._report_rows, day)
        return self.render(request, "report.html", day=day, rows=rows, printed=datetime.now(self.config.hall.zone),
                           ratings=self.live.ratings.available)

    def _today(self) -> date:
        """The date cases are judged overdue on: the hall's local date, as ``hall figures`` and the county."""
        return datetime.now(self.config.hall.zone).date()

    def _report_rows(self, day: date) -> list[ReportRow]:
        stats = day_stats(self.config, self.live.events, self.live.today, day)
        today = self._today()
        book = self.live.ratings
        return performance(self.config, stats, book.report(stats, today) if book.available else None)

    async def report_download(self, request: Request) -> Response:
        day = self._day(request)
        rows = await run_in_threadpool(self._report_rows, day)
        body = report_csv(rows, chosen_lang(request))
        filename = f"{self.config.hall.id}-report-{day.isoformat()}.csv"
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "Cache-Control": "no-store"})

    # ---- JSON and the live stream ------------------------------------------------------------

    async def board_json(self, _request: Request) -> Response:
        board = self.live.board
        if board is None:
            board = await run_in_threadpool(self.live.refresh)
        return Response(board.model_dump_json(), media_type="application/json")

    async def charts_json(self, request: Request) -> Response:
        day = self._day(request)

        def build() -> str:
            now = datetime.now(UTC)
            stats = day_stats(self.config, self.live.events, self.live.today, day)
            return charts(self.config, stats, self.live.ratings, self._today(), now).model_dump_json()

        return Response(await run_in_threadpool(build), media_type="application/json")

    async def figures_json(self, request: Request) -> Response:
        """Every figure of the day (``?day=``), defined in hallkit/queue/figures.py and hallkit/rating/report.py."""
        day = self._day(request)

        def build() -> str:
            stats = day_stats(self.config, self.live.events, self.live.today, day)
            return figures(self.config, stats, self.live.ratings, self._today(), datetime.now(UTC)).model_dump_json()

        return Response(await run_in_threadpool(build), media_type="application/json")

    async def devices_json(self, request: Request) -> Response:
        rows = self.live.device_rows(chosen_lang(request))
        return Response("[" + ",".join(r.model_dump_json() for r in rows) + "]", media_type="application/json")

    async def stream(self, request: Request) -> StreamingResponse:
        broadcast = self.live.broadcast

        async def events() -> AsyncIterator[str]:
            queue = broadcast.subscribe()
            try:
                if broadcast.latest:
                    yield f"data: {broadcast.latest}\n\n"
                while True:
                    try:
                        payload = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {payload}\n\n"
            finally:
                broadcast.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
