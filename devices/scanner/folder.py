"""A folder that a vendor's scanning tool drops image files into, read as a camera."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from hallkit.devices.scanner.camera import USABLE, ScannedPage, ScannerError, Usability
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_PATTERNS = ("*.jpg", "*.jpeg", "*.png", "*.bmp", "*.tif", "*.tiff")
MEDIA_TYPES = (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("BMP", "image/bmp"), ("TIFF", "image/tiff"))


class WatchedFolder:
    """Each new file in the folder is one captured page.

    Files already there when the folder is opened are left alone: they belong
    to an earlier resident and must not be attached to this one. A file is
    taken once its size stops changing (the vendor tool has finished writing),
    then moved to ``done`` so the folder does not fill up.
    """

    def __init__(self, folder: Path, done: Path | None = None, poll_interval: float = 0.2,
                 patterns: tuple[str, ...] = IMAGE_PATTERNS) -> None:
        self.folder = folder
        self.done = done or folder / "done"
        self.poll_interval = poll_interval
        self.patterns = patterns
        self._old = set(self._files()) if folder.is_dir() else set()
        self._sizes: list[tuple[Path, int]] = []

    def __repr__(self) -> str:
        return f"WatchedFolder({self.folder})"

    def _files(self) -> list[Path]:
        found = {path for pattern in self.patterns for path in self.folder.glob(pattern) if path.is_file()}
        return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name))

    def is_usable(self) -> Usability:
        if not self.folder.is_dir():
            return Usability(usable=False, reason=ScannerError("folder_missing", folder=str(self.folder)).message)
        return USABLE

    def capture(self, timeout: float) -> ScannedPage:
        if not self.folder.is_dir():
            raise ScannerError("folder_missing", folder=str(self.folder))
        deadline = time.monotonic() + timeout
        while True:
            page = self._next_page()
            if page is not None:
                return page
            if time.monotonic() > deadline:
                raise ScannerError("no_page", seconds=round(timeout))
            time.sleep(self.poll_interval)

    def _next_page(self) -> ScannedPage | None:
        last_sizes = dict(self._sizes)
        self._sizes = []
        for path in self._files():
            if path in self._old:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            self._sizes.append((path, size))
            if last_sizes.get(path) != size or size == 0:
                continue  # still being written: look again next poll
            page = self._read(path)
            if page is not None:
                return page
        return None

    def _read(self, path: Path) -> ScannedPage | None:
        data = path.read_bytes()
        self.done.mkdir(parents=True, exist_ok=True)
        path.rename(self.done / path.name)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                media_type = next((m for fmt, m in MEDIA_TYPES if fmt == image.format), "application/octet-stream")
        except (UnidentifiedImageError, OSError):
            log.warning("%s", ScannerError("bad_file", file=path.name).message.bilingual())
            return None
        return ScannedPage(image=data, media_type=media_type, width=width, height=height,
                           captured_at=datetime.now(UTC), source=str(path))

    def close(self) -> None:
        """Nothing to release: the folder stays as it is."""
