"""What every part's commands share: the expected-failure exception, ``--json`` and printing.

Kept apart from :mod:`hallkit.cli` (the ``hall`` entry point, which names every part) so the
parts' command modules import only downward.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from hallkit.i18n import LANGS, Lang, bilingual, text

Handler = Callable[[argparse.Namespace], int]


class CommandFailed(Exception):
    """An expected failure: the message is shown as is, the exit code returned."""

    def __init__(self, message: str, code: int = 1) -> None:
        self.code = code
        super().__init__(message)


def failure(key: str, code: int = 1, **params: object) -> CommandFailed:
    """The failure whose message is ``key`` of the catalogues, Chinese then English, once each."""
    return CommandFailed(bilingual(key, **params), code)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for scripts")


def emit(args: argparse.Namespace, result: BaseModel | Sequence[BaseModel], human: str) -> None:
    """Print ``human`` for a person, or the model(s) as JSON with --json."""
    if getattr(args, "json", False):
        if isinstance(result, BaseModel):
            print(result.model_dump_json(indent=2))
        else:
            print(json.dumps([r.model_dump(mode="json") for r in result], ensure_ascii=False, indent=2))
    else:
        print(human)


def writable_folder(folder: Path) -> Path:
    """``folder``, made if missing (for its owner only), or a failure that says why it cannot be used."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise failure("errors.folder_not_writable", folder=folder, reason=exc.strerror or exc) from None
    return folder


def refuse_existing(path: Path, force: bool) -> None:
    """Fail when ``path`` exists and ``--force`` was not given: nothing is ever replaced silently."""
    if path.exists() and not force:
        raise failure("errors.file_exists", path=path)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a crash leaves the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_force_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")


LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts: a taken port fails here, having changed nothing.

    The OSError raised says so in both languages (its ``strerror``), naming the address and port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, bilingual("errors.port_taken", host=host, port=port,
                                           reason=exc.strerror or exc)) from None
    return sock


def add_listen_flags(parser: argparse.ArgumentParser, what: str, default_port: int, configured: bool = True) -> None:
    """--host, --port, --cert and --key of a web server. ``configured``: the host and port default to
    ``[what]`` of the hall configuration (itself 127.0.0.1); else to 127.0.0.1 and ``default_port``."""
    section = f"[{what}] host, " if configured else ""
    parser.add_argument("--host", default=None if configured else LOCAL_HOSTS[0],
                        help=f"address to listen on (default: {section}127.0.0.1: this computer only; "
                             "0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=int, default=None if configured else default_port,
                        help=f"port (default: {f'[{what}] port, ' if configured else ''}{default_port})")
    parser.add_argument("--cert", type=Path, help="TLS certificate (PEM): serve HTTPS, cookies marked Secure")
    parser.add_argument("--key", type=Path, help="the certificate's private key (PEM)")


def tls_files(args: argparse.Namespace) -> tuple[Path, Path] | None:
    """(certificate, key) when both are given and readable; a failure when only one is, or one cannot be read."""
    if args.cert is None and args.key is None:
        return None
    if args.cert is None or args.key is None:
        raise CommandFailed(bilingual("errors.tls_pair"), 2)
    for path in (args.cert, args.key):
        try:
            path.read_bytes()
        except OSError as exc:
            raise failure("errors.unreadable", path=path, reason=exc.strerror or exc) from None
    return args.cert, args.key


def listening_scope(host: str, lang: Lang, widen: str = "--host 0.0.0.0") -> str:
    """Who can reach a server listening on ``host``; ``widen``: what opens it to the network."""
    if host not in LOCAL_HOSTS:
        return text("errors.network", lang)
    return text("errors.local_only", lang, widen=widen)


def say_listening(url: str, host: str, widen: str | None = None) -> str:
    """Where a server listens and who can reach it, in both languages. ``widen``: the catalogue key
    of what opens it to the network, when that is not ``--host 0.0.0.0``."""
    zh, en = (text("errors.listening", lang, url=url,
                   scope=listening_scope(host, lang, *([text(widen, lang)] if widen else [])))
              for lang in LANGS)
    return f"{zh} / {en}"
