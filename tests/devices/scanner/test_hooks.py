"""Scanner hooks run on the simulated camera and on a watched folder."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from hallkit.devices.scanner.camera import DocumentCaptured, ScannedPage, ScannerError
from hallkit.devices.scanner.folder import WatchedFolder
from hallkit.devices.scanner.hooks import DocumentScanner, PageContext, SaveToFolder, ScanHooks
from hallkit.devices.scanner.simulator import SimulatedDocCamera
from hallkit.devices.scanner.uvc import UvcCamera
from PIL import Image


def test_hooks_run_on_each_page_and_the_event_carries_metadata_only(tmp_path: Path) -> None:
    handed: list[tuple[ScannedPage, PageContext]] = []
    published: list[DocumentCaptured] = []
    scanner = DocumentScanner(SimulatedDocCamera(), device_id="kiosk-1")
    scanner.hooks.on_page(SaveToFolder(tmp_path / "scans"))
    scanner.hooks.on_page(lambda page, context: handed.append((page, context)))
    scanner.hooks.on_document(published.append)

    document = scanner.scan("s001", pages=2, timeout=5)

    saved = sorted((tmp_path / "scans").iterdir())
    assert [p.name.startswith("s001-") and p.name.endswith(f"-0{n}.png") for n, p in enumerate(saved, 1)] == [True] * 2
    assert Image.open(saved[0]).size == (827, 1169)
    assert [context.page_no for _, context in handed] == [1, 2]
    assert published == [document]
    assert document.pages == 2 and document.page_sizes[0].width == 827
    event = document.model_dump_json()
    assert "image" not in event and len(event) < 1000
    assert set(document.model_dump()) == {"device_id", "service_id", "pages", "page_sizes", "captured_at"}


def test_a_failing_handler_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    hooks = ScanHooks()
    seen: list[int] = []

    def broken(page: ScannedPage, context: PageContext) -> None:
        raise RuntimeError("business system down")

    hooks.on_page(broken)
    hooks.on_page(lambda page, context: seen.append(context.page_no))
    scanner = DocumentScanner(SimulatedDocCamera(), device_id="kiosk-1", hooks=hooks)
    scanner.scan("s002", pages=1, timeout=5)
    assert seen == [1]
    assert "business system down" in caplog.text
    hooks.remove(broken)
    assert hooks.page_captured(SimulatedDocCamera().capture(5), PageContext("kiosk-1", "s002", 1)) == 0


def test_page_repr_never_shows_the_image() -> None:
    page = SimulatedDocCamera().capture(5)
    assert "bytes" in repr(page) and len(repr(page)) < 120


def test_watched_folder_takes_new_files_only(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    vendor = SimulatedDocCamera()
    vendor.drop_into(drop, "yesterday.png")  # left by an earlier resident
    folder = WatchedFolder(drop, poll_interval=0.05)
    assert folder.is_usable().usable
    timer = threading.Timer(0.3, vendor.drop_into, (drop, "page1.png"))
    timer.start()
    try:
        page = folder.capture(timeout=20)
    finally:
        timer.join()
    assert page.source.endswith("page1.png") and page.media_type == "image/png"
    assert Image.open(io.BytesIO(page.image)).size == (827, 1169)
    assert (drop / "done" / "page1.png").exists()
    assert (drop / "yesterday.png").exists()


def test_watched_folder_feeds_the_hooks(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    published: list[DocumentCaptured] = []
    scanner = DocumentScanner(WatchedFolder(drop, poll_interval=0.05), device_id="kiosk-2")
    scanner.hooks.on_document(published.append)
    vendor = SimulatedDocCamera()
    vendor.drop_into(drop, "a.png")
    (drop / "note.png").write_bytes(b"not an image")
    vendor.drop_into(drop, "b.png")
    document = scanner.scan("s003", pages=2, timeout=20)
    assert published == [document] and document.pages == 2


def test_watched_folder_says_when_nothing_came(tmp_path: Path) -> None:
    with pytest.raises(ScannerError) as nothing:
        WatchedFolder(tmp_path, poll_interval=0.05).capture(timeout=0.2)
    assert "scan the page again" in nothing.value.message.render("en")
    missing = WatchedFolder(tmp_path / "nowhere")
    reason = missing.is_usable().reason
    assert reason is not None and "nowhere" in reason.render("zh")


def test_missing_camera_is_a_clear_reason(tmp_path: Path) -> None:
    camera = UvcCamera(str(tmp_path / "video9"))
    usability = camera.is_usable()
    assert not usability.usable and usability.reason is not None
    assert "No document camera found" in usability.reason.render("en")
    with pytest.raises(ScannerError):
        camera.capture(timeout=1)
