"""A document camera that renders test pages, for demos and tests (and for feeding a watched folder)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from hallkit.devices.scanner.camera import USABLE, ScannedPage, Usability
from PIL import Image, ImageDraw, ImageFont

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PAGE_SIZE = (827, 1169)
"""A4 at 100 dpi: enough to read, small enough to render quickly."""


class SimulatedDocCamera:
    """Every capture is a new, numbered test page."""

    def __init__(self, title: str = "测试材料 · Test document", size: tuple[int, int] = PAGE_SIZE,
                 font: Path = CJK_FONT) -> None:
        self.title = title
        self.size = size
        self.font = font
        self.captured = 0

    def __repr__(self) -> str:
        return "SimulatedDocCamera()"

    def _font(self, points: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        # Without the CJK font (a bare container) the page still renders, in boxes.
        return ImageFont.truetype(str(self.font), points) if self.font.exists() else ImageFont.load_default()

    def render(self, page_no: int, when: datetime) -> bytes:
        """One test page as PNG bytes."""
        width, height = self.size
        image = Image.new("L", self.size, 255)
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 20, width - 21, height - 21), outline=0, width=3)
        draw.text((60, 60), self.title, fill=0, font=self._font(40))
        draw.text((60, 130), f"第 {page_no} 页 · page {page_no}", fill=0, font=self._font(28))
        draw.text((60, 175), when.isoformat(timespec="seconds"), fill=80, font=self._font(20))
        body = self._font(22)
        for line in range(24):
            y = 240 + line * 36
            draw.text((60, y), f"{line + 1:02d}  模拟的申请材料内容，仅供测试。Simulated material, for tests only.",
                      fill=40, font=body)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    def is_usable(self) -> Usability:
        return USABLE

    def capture(self, timeout: float) -> ScannedPage:
        self.captured += 1
        when = datetime.now(UTC)
        width, height = self.size
        return ScannedPage(image=self.render(self.captured, when), media_type="image/png", width=width,
                           height=height, captured_at=when, source="simulator")

    def drop_into(self, folder: Path, name: str) -> Path:
        """Write a test page into ``folder`` the way a vendor tool would (whole, under its final name)."""
        self.captured += 1
        target = folder / name
        partial = folder / f".{name}.part"
        partial.write_bytes(self.render(self.captured, datetime.now(UTC)))
        partial.rename(target)
        return target

    def close(self) -> None:
        """Nothing to release."""
