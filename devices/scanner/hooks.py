"""Handlers run on each captured page and on each finished document, and the scanner that runs them.

Hooks, not subclasses: saving to a folder, handing pages to a business
system and publishing the 'document captured' event are handlers any part
can register. The MQTT side registers a :data:`DocumentHandler` that
publishes the metadata; nothing here touches the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hallkit.devices.scanner.camera import DocCamera, DocumentCaptured, PageSize, ScannedPage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PageContext:
    """Where a page belongs: which kiosk, which service, which page of the document."""

    device_id: str
    service_id: str
    page_no: int


PageHandler = Callable[[ScannedPage, PageContext], None]
"""Runs on each captured page: save it, hand it to a business system, check it."""

DocumentHandler = Callable[[DocumentCaptured], None]
"""Runs once a document's pages are all captured, with metadata only (e.g. publish it on MQTT)."""


class ScanHooks:
    """The registry of handlers. A failing handler is logged and does not stop the others."""

    def __init__(self) -> None:
        self._page: list[PageHandler] = []
        self._document: list[DocumentHandler] = []

    def on_page(self, handler: PageHandler) -> PageHandler:
        """Register a page handler (usable as a decorator)."""
        self._page.append(handler)
        return handler

    def on_document(self, handler: DocumentHandler) -> DocumentHandler:
        """Register a document handler (usable as a decorator)."""
        self._document.append(handler)
        return handler

    def remove(self, handler: PageHandler | DocumentHandler) -> None:
        for handlers in (self._page, self._document):
            if handler in handlers:
                handlers.remove(handler)  # type: ignore[arg-type]

    def page_captured(self, page: ScannedPage, context: PageContext) -> int:
        """Run the page handlers; return how many failed."""
        failed = 0
        for handler in list(self._page):
            try:
                handler(page, context)
            except Exception:
                failed += 1
                log.exception("page handler %r failed on %r", handler, page)
        return failed

    def document_captured(self, document: DocumentCaptured) -> int:
        """Run the document handlers; return how many failed."""
        failed = 0
        for handler in list(self._document):
            try:
                handler(document)
            except Exception:
                failed += 1
                log.exception("document handler %r failed", handler)
        return failed


class SaveToFolder:
    """A page handler that writes each page to a folder, named by service, time and page number."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __repr__(self) -> str:
        return f"SaveToFolder({self.folder})"

    def __call__(self, page: ScannedPage, context: PageContext) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = page.captured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.folder / f"{context.service_id}-{stamp}-{context.page_no:02d}{page.suffix}"
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(page.image)
        partial.rename(target)  # whoever watches the folder never sees half a file


class DocumentScanner:
    """A camera and its hooks: capture a document page by page, then announce it."""

    def __init__(self, camera: DocCamera, device_id: str, hooks: ScanHooks | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.camera = camera
        self.device_id = device_id
        self.hooks = hooks or ScanHooks()
        self._clock = clock

    def scan(self, service_id: str, pages: int = 1, timeout: float = 30.0) -> DocumentCaptured:
        """Capture ``pages`` pages for a service, running the hooks on each and on the whole.

        Raises:
            ScannerError: from the camera; the pages captured before it are not announced.
        """
        sizes: list[PageSize] = []
        for page_no in range(1, pages + 1):
            page = self.camera.capture(timeout)
            self.hooks.page_captured(page, PageContext(self.device_id, service_id, page_no))
            sizes.append(PageSize(width=page.width, height=page.height, bytes=len(page.image)))
        document = DocumentCaptured(device_id=self.device_id, service_id=service_id, pages=len(sizes),
                                    page_sizes=sizes, captured_at=self._clock())
        self.hooks.document_captured(document)
        return document
