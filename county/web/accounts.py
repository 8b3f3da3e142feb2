"""Console logins: who may see which halls.

Names, passwords, sessions and the failed-login limit are the hall dashboard's
(:class:`hallkit.accounts.UserStore`, one SQLite file): the same rules, one implementation. What
the county adds is the role and its scope, in a table of the same file:

- ``admin`` (县管理员): every hall, and the logins page;
- ``viewer`` (县级查看): every hall, reads only;
- ``leader`` (乡镇领导): only the halls of the townships (from the hall register) and halls named.

A login's access level is stored as the dashboard's role (admin: ``manager``; the others:
``viewer``), so the shared form checks refuse a viewer's or a leader's post as they do at a hall.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import psycopg
from hallkit.county.console import WHOLE_COUNTY, Scope
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hallkit.accounts import NAME_PATTERN, AuthError, Role, UserStore


class ConsoleRole(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"
    LEADER = "leader"

    @property
    def access(self) -> Role:
        return Role.MANAGER if self is ConsoleRole.ADMIN else Role.VIEWER


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    role: ConsoleRole
    townships: tuple[str, ...] = ()
    halls: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _scope_fits_role(self) -> Account:
        if self.role is ConsoleRole.LEADER and not (self.townships or self.halls):
            raise ValueError("a township leader needs --township or --hall")
        if self.role is not ConsoleRole.LEADER and (self.townships or self.halls):
            raise ValueError(f"{self.role.value} sees every hall: --township and --hall are for leaders")
        return self


def open_users(data: Path, session_hours: float = 8.0, max_failures: int = 5,
               lockout_minutes: float = 15.0) -> UserStore:
    return UserStore(data / "county-console.sqlite3", session_hours, max_failures, lockout_minutes)


class Accounts:
    """Roles and scopes beside the :class:`UserStore` they extend."""

    def __init__(self, users: UserStore) -> None:
        self.users = users
        users.conn.execute("""CREATE TABLE IF NOT EXISTS console_accounts (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, townships TEXT NOT NULL, halls TEXT NOT NULL)""")

    def add(self, account: Account, password: str) -> Account:
        self.users.add_user(account.name, account.role.access, password)
        self.users.conn.execute(
            "INSERT OR REPLACE INTO console_accounts VALUES (?, ?, ?, ?)",
            (account.name, account.role.value, json.dumps(account.townships, ensure_ascii=False),
             json.dumps(account.halls)))
        return account

    def remove(self, name: str) -> bool:
        self.users.conn.execute("DELETE FROM console_accounts WHERE name = ?", (name,))
        return self.users.remove_user(name)

    def get(self, name: str) -> Account | None:
        row = self.users.conn.execute(
            "SELECT name, role, townships, halls FROM console_accounts WHERE name = ?", (name,)).fetchone()
        return _account(row) if row else None

    def all(self) -> list[Account]:
        rows = self.users.conn.execute("SELECT name, role, townships, halls FROM console_accounts ORDER BY name")
        return [_account(row) for row in rows]


def _account(row: tuple[str, str, str, str]) -> Account:
    return Account(name=row[0], role=ConsoleRole(row[1]), townships=tuple(json.loads(row[2])),
                   halls=tuple(json.loads(row[3])))


def scope_of(conn: psycopg.Connection, account: Account | None) -> Scope:
    """The halls ``account`` may see; none for a login without a console account (refused, not widened)."""
    if account is None:
        raise AuthError("no console account")
    if account.role is not ConsoleRole.LEADER:
        return WHOLE_COUNTY
    rows = conn.execute("SELECT hall FROM hall_register WHERE township = ANY(%s)", (list(account.townships),))
    return Scope(halls=tuple(sorted({row[0] for row in rows} | set(account.halls))))
