"""How every process that logs in to a broker takes its login: one rule for all commands.

``--broker mqtt://LOGIN@HOST:PORT`` names the broker and the login; the password comes, first
found, from ``--password-file FILE`` (or ``$HALLKIT_BROKER_PASSWORD_FILE``: what a systemd unit's
``LoadCredential=`` hands over), ``$HALLKIT_BROKER_PASSWORD``, or the login's line in ``--logins
credentials.toml`` (a kiosk needs its printer's and card reader's lines too). A password written in
the URL still works, with a warning: every local user sees a process's arguments in ``ps``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hallkit.broker.mosquitto import Logins
from hallkit.contracts.mqtt import BrokerAddress, BrokerUrlError, parse_broker_url

from hallkit.commandline import CommandFailed
from hallkit.filemodes import too_open
from hallkit.i18n import LANGS, bilingual, text

BROKER_ENV = "HALLKIT_BROKER"
PASSWORD_FILE_ENV = "HALLKIT_BROKER_PASSWORD_FILE"
PASSWORD_ENV = "HALLKIT_BROKER_PASSWORD"
LOCAL_BROKER = "mqtt://127.0.0.1:1883"


def add_broker_options(parser: argparse.ArgumentParser, *, login: str = "LOGIN", env: str = BROKER_ENV,
                       default: str | None = LOCAL_BROKER, logins: bool = True, what: str = "hall broker",
                       extra: str = "") -> None:
    """``--broker``, ``--password-file`` and (where a credentials.toml serves) ``--logins``."""
    default = os.environ.get(env, default) if default is not None else os.environ.get(env)
    shown = f"${env}, else {default}" if default else f"${env}"
    parser.add_argument("--broker", default=default, metavar="URL",
                        help=f"{what}, mqtt://{login}@HOST:PORT (mqtts:// for TLS){extra} (default: {shown})")
    parser.add_argument("--password-file", type=Path, metavar="FILE",
                        default=os.environ.get(PASSWORD_FILE_ENV),
                        help=f"file whose first line is the password of {login} (default: ${PASSWORD_FILE_ENV}; "
                             f"or the password itself in ${PASSWORD_ENV}). Never put it in the URL: "
                             "every local user sees a command line in ps")
    if logins:
        parser.add_argument("--logins", type=Path, metavar="FILE",
                            help=f"credentials.toml from `hall broker config` holding the password of {login}")


def add_hall_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hall", default=os.environ.get("HALLKIT_HALL"),
                        help="hall id (default: $HALLKIT_HALL, else the one hall whose hub runs on the broker)")


def address_from_args(args: argparse.Namespace) -> BrokerAddress:
    """The broker and login the options of :func:`add_broker_options` name."""
    return broker_address(args.broker, getattr(args, "logins", None), getattr(args, "password_file", None))


def broker_address(url: str, logins: Path | None = None, password_file: Path | None = None) -> BrokerAddress:
    """The broker of ``url`` with its login's password, by the rule of this module."""
    try:
        address = parse_broker_url(url)
    except BrokerUrlError as exc:
        raise CommandFailed(str(exc), 2) from None
    user = address.username
    if user is None:
        return address
    if address.password is not None:
        print(bilingual("login.password_in_url", login=user), file=sys.stderr)
        return address
    if password_file is not None:
        return address.as_login(user, read_password_file(password_file, user))
    if os.environ.get(PASSWORD_ENV):
        return address.as_login(user, os.environ[PASSWORD_ENV])
    if logins is not None:
        refuse_open(logins, user)
        try:
            password = Logins.read(logins).password(user)
        except ValueError as exc:
            raise CommandFailed(bilingual("login.bad_logins", login=user, detail=str(exc))) from None
        if password is None:
            raise CommandFailed(bilingual("login.not_in_logins", login=user, file=logins))
        return address.as_login(user, password)
    raise CommandFailed(bilingual("login.no_password", login=user), 2)


def refuse_open(path: Path, user: str) -> None:
    """Refuse a file with ``user``'s password that other users may read."""
    if (open_file := too_open(path)) is not None:
        raise CommandFailed(" / ".join(
            text("login.password_file_open", lang, login=user, file=path, mode=f"{open_file.mode:04o}",
                 root_hint=text("login.password_file_open_root", lang, file=path) if open_file.root_owned else "")
            for lang in LANGS))


def read_password_file(path: Path, user: str) -> str:
    """The first line of a password file; an unreadable, empty or other users' readable one is the
    operator's to fix (the rule of :mod:`hallkit.filemodes`)."""
    refuse_open(path, user)
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandFailed(bilingual("login.password_file", login=user, file=path,
                                      detail=getattr(exc, "strerror", None) or str(exc))) from None
    password = lines[0].strip() if lines else ""
    if not password:
        raise CommandFailed(bilingual("login.password_file_empty", login=user, file=path))
    return password
