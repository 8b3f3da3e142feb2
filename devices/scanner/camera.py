"""What a document camera is to the hall: something that captures a page when asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from hallkit.config import ID_PATTERN
from hallkit.i18n import Message


class ScannerError(Exception):
    """A camera or folder problem, carrying the message a person reads (``scanner.<key>``)."""

    def __init__(self, key: str, **params: str | int | float) -> None:
        self.message = Message(key=f"scanner.{key}", params=params)
        super().__init__(self.message.bilingual())


class Usability(BaseModel):
    """Whether a camera can capture now, and if not, why in words."""

    model_config = ConfigDict(frozen=True)

    usable: bool
    reason: Message | None = None


USABLE = Usability(usable=True)


@dataclass(frozen=True, slots=True, repr=False)
class ScannedPage:
    """One captured page: the encoded image and what is known about it.

    The image may show a resident's documents: its repr never includes it.
    """

    image: bytes
    media_type: str
    width: int
    height: int
    captured_at: datetime
    source: str

    def __repr__(self) -> str:
        return f"ScannedPage({self.width}x{self.height} {self.media_type}, {len(self.image)} bytes, {self.source})"

    @property
    def suffix(self) -> str:
        """File name suffix for the image, from its media type."""
        return "." + self.media_type.rpartition("/")[2].replace("jpeg", "jpg")


class DocCamera(Protocol):
    """A document camera, a folder a vendor tool drops scans into, or the simulator."""

    def is_usable(self) -> Usability:
        """Probe without capturing: a missing camera or library is a reason, not an exception."""
        ...

    def capture(self, timeout: float) -> ScannedPage:
        """Capture one page, waiting up to ``timeout`` seconds.

        Raises:
            ScannerError: no camera, no page in time, or an unreadable image.
        """
        ...

    def close(self) -> None: ...


class PageSize(BaseModel):
    model_config = ConfigDict(frozen=True)

    width: int = Field(ge=1)
    height: int = Field(ge=1)
    bytes: int = Field(ge=0)


class DocumentCaptured(BaseModel):
    """The 'document captured' event: metadata only, never the image."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str = Field(pattern=ID_PATTERN)
    service_id: str = Field(pattern=ID_PATTERN)
    pages: int = Field(ge=0)
    page_sizes: list[PageSize]
    captured_at: datetime
