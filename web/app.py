"""The phone page's web app (Starlette): one ticket's page, its live stream, the rating form.

``/t/<token>`` is all a resident ever opens, from the QR code on the ticket. No login and no
personal data on it: the token in the address is the key. Every answer carries the security
headers of :mod:`web.guard`; every request counts against the limits per address and per token;
the rating form carries a CSRF token bound to a SameSite cookie of that ticket's path and is
refused from another origin.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from hallkit.web.guard import CsrfTokens, RateLimiter, SecurityHeaders
from hallkit.web.live import PhoneHall, RateForm
from hallkit.web.views import PhoneView
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hallkit.config import HallConfig
from hallkit.i18n import Lang, Message, text
from hallkit.queue.numbering import PUBLIC_ID_ALPHABET
from hallkit.rating.models import Level

log = logging.getLogger("hallkit.web.http")

PACKAGE = Path(str(resources.files("hallkit.web")))
CSRF_COOKIE = "hallkit_phone_csrf"
LANG_COOKIE = "hallkit_phone_lang"
HEARTBEAT_SECONDS = 15.0
TOKEN = re.compile(f"^[{PUBLIC_ID_ALPHABET}]{{6,32}}$")
LEVELS = (Level(5), Level(4), Level(3), Level(2), Level(1))


def _lang(request: Request) -> Lang:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if chosen == "en" else "zh"


def _address(request: Request) -> str:
    # uvicorn has already replaced it with X-Forwarded-For when the peer is a trusted proxy.
    return request.client.host if request.client else "-"


class PhonePage:
    def __init__(self, config: HallConfig, hall: PhoneHall) -> None:
        self.config = config
        self.hall = hall
        settings = config.web
        self.per_address = RateLimiter(settings.requests_per_minute_per_address, 60)
        self.per_token = RateLimiter(settings.requests_per_minute_per_token, 60)
        self.ratings_per_address = RateLimiter(settings.ratings_per_hour_per_address, 3600)
        self.said_limited = RateLimiter(1, 60)
        self.templates = Environment(loader=FileSystemLoader(PACKAGE / "templates"),
                                     autoescape=select_autoescape(["html"]))
        self.csrf = CsrfTokens()
        public = urlsplit(settings.public_url)
        self.public_origin = f"{public.scheme}://{public.netloc}"
        # Behind a county reverse proxy the page lives under a path (https://…/hall/xinghua/t/…): every
        # link, the stream, the form and the cookie carry it; the proxy strips it before this server.
        self.prefix = public.path.rstrip("/")

    def app(self) -> Starlette:
        routes = [
            Route("/health", self.health),
            Route("/t/{token}", self.page, methods=["GET"]),
            Route("/t/{token}/stream", self.stream, methods=["GET"]),
            Route("/t/{token}/rate", self.rate, methods=["POST"]),
            Mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static"),
        ]
        app = Starlette(routes=routes, lifespan=self._lifespan)
        app.add_middleware(SecurityHeaders)
        return app

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.hall.watchers.loop = asyncio.get_running_loop()
        yield

    # ---- rendering -------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
        lang = _lang(request)

        def t(key: str, **params: object) -> str:
            return text(f"web.{key}", lang, **params)

        html = self.templates.get_template(template).render(
            t=t, say=lambda key, **p: text(key, lang, **p), zh=lambda key: text(key, "zh"), lang=lang, hall=self.config.hall, levels=LEVELS,
            path=self.prefix + request.url.path, base=self.prefix, **context)
        response = HTMLResponse(html, status_code=status_code)
        if "lang" in request.query_params:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True,
                                secure=request.url.scheme == "https")
        return response

    def _limited(self, request: Request, token: str | None) -> Response | None:
        """A 429 page when this address or this token has asked too often, else None."""
        address = _address(request)
        if self.per_address.allow(address) and (token is None or self.per_token.allow(token)):
            return None
        if self.said_limited.allow(address):  # once a minute per address: an attack must not flood the log
            log.warning("rate limit hit by %s", address)
        response = self.render(request, "message.html", status_code=429, message="web.too_many")
        response.headers["Retry-After"] = "60"
        return response

    def _gone(self, request: Request) -> HTMLResponse:
        return self.render(request, "message.html", status_code=404, message="web.gone")

    # ---- routes ---------------------------------------------------------------------------------

    async def health(self, _request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "mqtt": self.hall.connected})

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        if (limited := self._limited(request, token)) is not None:
            return limited
        view = await run_in_threadpool(self.hall.view, token) if TOKEN.match(token) else None
        if view is None:
            return self._gone(request)
        return self._page(request, token, view)

    def _page(self, request: Request, token: str, view: PhoneView, error: Message | None = None,
              status_code: int = 200) -> HTMLResponse:
        csrf = self.csrf.new(token)
        lang = _lang(request)
        response = self.render(request, "phone.html", status_code=status_code, token=token, view=view, csrf=csrf,
                               error=error.render(lang) if error else "", form_id=secrets.token_urlsafe(18),
                               comment_max=self.config.web.comment_max_chars,
                               retention_days=self.config.web.followup_retention_days)
        # Double submit: the form's token must match this cookie, which no other site can read or set.
        response.set_cookie(CSRF_COOKIE, csrf, path=f"{self.prefix}/t/{token}", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def stream(self, request: Request) -> Response:
        token = request.path_params["token"]
        if (limited := self._limited(request, token)) is not None:
            return limited
        view = await run_in_threadpool(self.hall.view, token) if TOKEN.match(token) else None
        if view is None:
            return self._gone(request)
        watchers = self.hall.watchers
        first = view.model_dump_json()

        async def events() -> AsyncIterator[str]:
            queue = watchers.subscribe(token)
            try:
                yield f"data: {first}\n\n"
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
                watchers.unsubscribe(token, queue)

        self.hall.wake()  # the refresher now follows this token too
        return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    async def rate(self, request: Request) -> Response:
        token = request.path_params["token"]
        if (limited := self._limited(request, token)) is not None:
            return limited
        if not TOKEN.match(token):
            return self._gone(request)
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        form = await request.form()
        if (origin is not None and origin not in (own, self.public_origin)) or not self.csrf.valid(
                token, str(form.get("csrf", "")), request.cookies.get(CSRF_COOKIE, "")):
            log.warning("rating form without a valid CSRF token from %s", _address(request))
            return self.render(request, "message.html", status_code=403, message="web.csrf_failed",
                               back=f"{self.prefix}/t/{token}")
        if not self.ratings_per_address.allow(_address(request)):
            return self.render(request, "message.html", status_code=429, message="web.too_many")
        view = await run_in_threadpool(self.hall.view, token)
        if view is None:
            return self._gone(request)
        try:
            rate_form = RateForm(level=Level(int(str(form.get("level", "0")))),
                                 tags=[str(t) for t in form.getlist("tags")], text=str(form.get("text", "")).strip(),
                                 phone=str(form.get("phone", "")).replace(" ", "") or None,
                                 request_id=str(form.get("form_id", "")))
        except (ValueError, ValidationError) as exc:
            return self._page(request, token, view, Message(key=_form_problem(exc)), 400)
        result = await run_in_threadpool(self.hall.rate, token, rate_form)
        if result.refusal is not None:
            view = await run_in_threadpool(self.hall.view, token) or view
            return self._page(request, token, view, result.refusal, 409)
        return RedirectResponse(f"{self.prefix}/t/{token}", status_code=303)


def _form_problem(exc: Exception) -> str:
    """The message key for what is wrong with a rating form."""
    if isinstance(exc, ValidationError):
        fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        for name in ("phone", "text", "tags", "request_id"):
            if name in fields:
                return f"web.bad_{name}"
    return "web.bad_level"
