"""What keeps a public page safe: rate limits, CSRF tokens and security headers.

The page has no login: the QR token in the address is the only key, so guessing tokens is
the attack to price out. A token is 10 characters of a 31-letter alphabet (about 2^49.5); with a
few hundred live tokens in a hall, the per-address limit leaves an attacker millions of years of
guessing for one hit. The per-token limit keeps a leaked link from being hammered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = (
    # Scripts, styles and the stream only from the page itself; nothing may frame it.
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                 b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The token is in the address: no other site may learn it from a Referer. (Not no-referrer: the
    # page's own form would then post with Origin "null", which SameSite=Strict counts as cross-site.)
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """ASGI middleware: the headers above on every answer (HSTS too when served over HTTPS)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimiter:
    """At most ``limit`` hits per key in any ``period`` seconds (a sliding window)."""

    def __init__(self, limit: int, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.period:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _sweep(self, now: float) -> None:
        """Forget keys with no recent hit: guessed tokens must not grow the table without end."""
        self._hits = {k: h for k, h in self._hits.items() if h and h[-1] > now - self.period}
        self._next_sweep = now + self.period


class CsrfTokens:
    """Double-submit tokens bound to one ticket: ``nonce.signature``, signed with this process's key.

    The form's token must equal the cookie (which another site can neither read nor set: SameSite,
    HttpOnly, the ticket's own path) and be signed for the ticket the form rates, so a token taken
    from one ticket's page opens no other ticket's form. A restart makes a new key: an open form
    then asks to be reloaded.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, ticket_token: str, nonce: str) -> str:
        return hmac.new(self._key, f"{ticket_token}|{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def new(self, ticket_token: str) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(ticket_token, nonce)}"

    def valid(self, ticket_token: str, sent: str, cookie: str) -> bool:
        nonce, _, signature = sent.partition(".")
        return (bool(nonce) and hmac.compare_digest(sent, cookie)
                and hmac.compare_digest(signature, self._sign(ticket_token, nonce)))
