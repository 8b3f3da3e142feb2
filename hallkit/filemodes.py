"""Who may read the hall's secrets: its configuration, the password files it names, the hub's data.

``hall.toml`` holds ``id_hash_key``: with it, a stored hash gives the resident's ID number back by
brute force in a fraction of a second; ``[upstream] password_file`` is the hall's login at the
county. The rule for these files is PostgreSQL's for its TLS key (OpenSSH's for your own key is its
first half): a file of the reading user's own may be read by that user only (0600 or less); a file
of root's may also be read by its group (0640 or less), which is how root hands a file to a
service's user (``chgrp hallkit … && chmod 0640 …``, README "Under systemd"). Anything more and the
hub refuses to start, ``hall config check`` and ``hall doctor`` report it: the file is the
installer's, its mode may be meant, so it is for them to change, and the message says how.

The hub's data folder is another matter: the hub makes it and everything in it, and everyone who
reads it (dashboard, phone page) runs as the hub's user. An existing folder or SQLite file open to
others is tightened and reported (:func:`own_only`): there is no one whose access this removes, and
refusing would stop a hall over what the hub can put right itself.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import BaseModel

from hallkit.config import HallConfig
from hallkit.i18n import LANGS, Lang, Message, text

SECRET_MODE = 0o600
"""How hallkit writes a file holding a secret (a hall configuration, a password)."""

OWN_FILE_LIMIT = 0o077
"""Bits a secret file of one's own must not have: any access by group or others."""

ROOT_FILE_LIMIT = 0o037
"""Bits a secret file of root's must not have: group write or execute, any access by others."""

DATA_FILES = ("hall.sqlite3", "hall.sqlite3-wal", "hall.sqlite3-shm")


class TooOpen(BaseModel):
    """A secret file others may read: what it is, and how to close it."""

    path: Path
    mode: int
    root_owned: bool

    @property
    def problem(self) -> Message:
        return Message(key="errors.secret_too_open", params={"path": str(self.path), "mode": f"{self.mode:04o}"})

    @property
    def fix(self) -> Message:
        key = "errors.fix_secret_mode_root" if self.root_owned else "errors.fix_secret_mode"
        return Message(key=key, params={"path": str(self.path)})

    def sentence(self, lang: Lang) -> str:
        return f"{self.problem.render(lang)} {self.fix.render(lang)}"

    def bilingual(self) -> str:
        return " / ".join(self.sentence(lang) for lang in LANGS)


def too_open(path: Path) -> TooOpen | None:
    """``path`` when group or others may read it beyond the rule above; None if it keeps to it or
    does not exist (the configuration's own checks say that)."""
    try:
        status = path.stat()
    except OSError:
        return None
    limit = ROOT_FILE_LIMIT if status.st_uid == 0 else OWN_FILE_LIMIT
    mode = stat.S_IMODE(status.st_mode)
    return TooOpen(path=path, mode=mode, root_owned=status.st_uid == 0) if mode & limit else None


def exposed_secrets(config_file: Path, config: HallConfig) -> list[TooOpen]:
    """The hall configuration and the password file it names, where others may read them."""
    files = [config_file]
    if config.upstream is not None and config.upstream.password_file is not None:
        files.append(config.upstream.password_file)
    return [found for path in files if (found := too_open(path)) is not None]


class Tightened(BaseModel):
    path: Path
    was: int
    now: int

    def bilingual(self) -> str:
        return " / ".join(text("errors.data_tightened", lang, path=self.path, was=f"{self.was:04o}",
                               now=f"{self.now:04o}") for lang in LANGS)


def own_only(folder: Path) -> list[Tightened]:
    """Make the hub's data folder (0700) and its SQLite files (0600) its user's alone: created so,
    and tightened where an earlier version, a copy or an installer left them open. Returns what
    was tightened, to be said."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = []
    for path, wanted in ((folder, 0o700), *((folder / name, 0o600) for name in DATA_FILES)):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            path.chmod(wanted)
            changed.append(Tightened(path=path, was=mode, now=wanted))
    return changed
