"""A UVC document camera through OpenCV's V4L2 backend (most 高拍仪 are driverless UVC cameras)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from hallkit.devices.scanner.camera import USABLE, ScannedPage, ScannerError, Usability


def _opencv() -> ModuleType:
    try:
        import cv2
    except ImportError:
        raise ScannerError("no_opencv") from None
    return cv2


class UvcCamera:
    """A camera at ``/dev/videoN`` (or an OpenCV index), captured as PNG."""

    def __init__(self, device: str | int = "/dev/video0", width: int | None = None,
                 height: int | None = None, warmup_frames: int = 5) -> None:
        """Describe the camera; nothing is opened until the first capture.

        Args:
            device: a V4L2 device path or an OpenCV camera index.
            width: requested frame width; the camera's default if None.
            height: requested frame height.
            warmup_frames: frames thrown away so exposure and focus settle before the page is taken.
        """
        self.device = device
        self.width = width
        self.height = height
        self.warmup_frames = warmup_frames
        self._capture: object | None = None

    def __repr__(self) -> str:
        return f"UvcCamera({self.device})"

    def _open(self) -> object:
        cv2 = _opencv()
        if isinstance(self.device, str) and not Path(self.device).exists():
            raise ScannerError("no_camera", device=self.device)
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise ScannerError("no_camera", device=str(self.device))
        if self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        return capture

    def is_usable(self) -> Usability:
        try:
            self._capture = self._capture or self._open()
        except ScannerError as exc:
            return Usability(usable=False, reason=exc.message)
        return USABLE

    def capture(self, timeout: float) -> ScannedPage:
        cv2 = _opencv()
        capture = self._capture = self._capture or self._open()
        deadline = time.monotonic() + timeout
        for _ in range(self.warmup_frames):
            capture.grab()  # type: ignore[attr-defined]
        while True:
            ok, frame = capture.read()  # type: ignore[attr-defined]
            if ok:
                break
            if time.monotonic() > deadline:
                raise ScannerError("camera_failed", device=str(self.device))
        encoded_ok, png = cv2.imencode(".png", frame)
        if not encoded_ok:
            raise ScannerError("camera_failed", device=str(self.device))
        height, width = frame.shape[:2]
        return ScannedPage(image=png.tobytes(), media_type="image/png", width=int(width), height=int(height),
                           captured_at=datetime.now(UTC), source=str(self.device))

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()  # type: ignore[attr-defined]
            self._capture = None
