"""Dashboard accounts, sessions and the failed-login limit, in ``<data>/dashboard.sqlite3``.

Passwords are hashed with scrypt (hashlib, a standard memory-hard KDF; no extra dependency).
A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, so a copy of
the database does not let anyone in. Every session carries its own CSRF token, which every
form posts back. Failed logins are counted per name and per address (which may fail four times as
often: made-up names do not lock a real account out); past the limit further attempts are refused
for a while and each one is logged. Parallel tries are counted before their password is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("hallkit.accounts")

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
"""OWASP's scrypt minimum (N=2^14, r=8, p=1): about 16 MiB and some 50 ms per login here."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
"""Names go into case records as who took a step, so they follow the hall's id rule."""
MIN_PASSWORD = 8

ADDRESS_FACTOR = 4
"""An address may fail this many times the per-account limit: a few mistyped or made-up names
from the manager's own PC must not lock the manager out, a sweep over many names is still stopped."""


class Role(StrEnum):
    MANAGER = "manager"  # 大厅负责人: may work cases
    VIEWER = "viewer"  # 值班领导: reads everything, changes nothing


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    role: Role


class Session(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: User
    csrf: str
    expires: datetime


class AuthError(Exception):
    """A login or account change that cannot be done; the message says why."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


ACCOUNTS_FILE = "dashboard.sqlite3"


def manager_names(data: Path) -> set[str]:
    """Names of the manager accounts in the data folder ``data`` (none when there is no dashboard).

    The hub checks who records a case step against these, read-only: it never creates the file.
    """
    path = data / ACCOUNTS_FILE
    if not path.exists():
        return set()
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name FROM users WHERE role = ?", (Role.MANAGER.value,)).fetchall()
    except sqlite3.OperationalError:  # the file exists but the dashboard has not made its tables yet
        return set()
    finally:
        conn.close()
    return {name for (name,) in rows}


class UserStore:
    def __init__(self, path: Path, session_hours: float = 8.0, max_failures: int = 5,
                 lockout_minutes: float = 15.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.session_life = timedelta(hours=session_hours)
        self.max_failures = max_failures
        self.lockout = timedelta(minutes=lockout_minutes)
        self._lock = threading.Lock()
        # A hash to check against when the name is unknown, so a wrong name costs as long as a
        # wrong password. Made here, not at import: the hub imports this module, and a scrypt
        # hash (about 60 ms) would delay every hub start.
        self._dummy_hash = hash_password(secrets.token_urlsafe(12))
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("""CREATE TABLE IF NOT EXISTS users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL, created TEXT NOT NULL)""")
        self.conn.execute("""CREATE TABLE IF NOT EXISTS sessions (
            token_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            csrf TEXT NOT NULL, expires TEXT NOT NULL)""")
        self.conn.execute("""CREATE TABLE IF NOT EXISTS login_failures (
            at TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL)""")
        path.chmod(0o600)

    def close(self) -> None:
        self.conn.close()

    # ---- accounts --------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password: str) -> User:
        user = User(name=name, role=role)
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"password too short: at least {MIN_PASSWORD} characters")
        with self._lock:
            self.conn.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
                "password=excluded.password",
                (user.name, user.role.value, hash_password(password), datetime.now(UTC).isoformat()))
            # A new password ends the user's open sessions.
            self.conn.execute("DELETE FROM sessions WHERE name = ?", (user.name,))
        return user

    def remove_user(self, name: str) -> bool:
        with self._lock:
            self.conn.execute("DELETE FROM sessions WHERE name = ?", (name,))
            return self.conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[User]:
        rows = self.conn.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(name=n, role=Role(r)) for n, r in rows]

    # ---- logging in ------------------------------------------------------------------------

    def locked_out(self, name: str, address: str, now: datetime | None = None) -> bool:
        since = ((now or datetime.now(UTC)) - self.lockout).isoformat()
        by_name, by_address = self.conn.execute(
            "SELECT sum(name = ?), sum(address = ?) FROM login_failures WHERE at >= ?",
            (name, address, since)).fetchone()
        return (by_name or 0) >= self.max_failures or (by_address or 0) >= self.max_failures * ADDRESS_FACTOR

    def login(self, name: str, password: str, address: str) -> tuple[str, Session]:
        """A new session token and its session; raises :class:`AuthError` (logged) when refused.

        Each try is counted as a failure before its password is checked, in the same transaction
        as the lockout check, and uncounted only once it succeeds: tries made in parallel all
        count, so no more than the limit ever reach the password check.
        """
        now = datetime.now(UTC)
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")  # also against another process on the same file
            try:
                locked = self.locked_out(name, address, now)
                attempt = None if locked else self.conn.execute(
                    "INSERT INTO login_failures VALUES (?, ?, ?)", (now.isoformat(), name, address)).lastrowid
                self.conn.execute("DELETE FROM login_failures WHERE at < ?", ((now - timedelta(days=30)).isoformat(),))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        if attempt is None:
            log.warning("login refused (locked out after repeated failures): name=%r address=%s", name, address)
            raise AuthError("locked")
        row = self.conn.execute("SELECT role, password FROM users WHERE name = ?", (name,)).fetchone()
        ok = verify_password(password, row[1] if row else self._dummy_hash) and row is not None
        if not ok:
            log.warning("failed login: name=%r address=%s", name, address)
            raise AuthError("failed")
        with self._lock:
            self.conn.execute("DELETE FROM login_failures WHERE rowid = ?", (attempt,))
        token = secrets.token_urlsafe(32)
        session = Session(user=User(name=name, role=Role(row[0])), csrf=secrets.token_urlsafe(24),
                          expires=now + self.session_life)
        with self._lock:
            self.conn.execute("DELETE FROM sessions WHERE expires < ?", (now.isoformat(),))
            self.conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                              (_token_hash(token), name, session.csrf, session.expires.isoformat()))
        log.info("login: name=%r role=%s address=%s", name, session.user.role.value, address)
        return token, session

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        row = self.conn.execute(
            "SELECT s.name, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.name "
            "WHERE s.token_hash = ?", (_token_hash(token),)).fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row[3])
        if expires <= datetime.now(UTC):
            self.logout(token)
            return None
        return Session(user=User(name=row[0], role=Role(row[1])), csrf=row[2], expires=expires)

    def logout(self, token: str) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))
