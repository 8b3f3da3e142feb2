"""Scan materials with the document camera (高拍仪); the pages go where the scanner hooks put them."""

from __future__ import annotations

from hallkit.devices.scanner.camera import DocumentCaptured, ScannerError
from hallkit.kiosk.screens.base import KioskScreen
from kivy.properties import BooleanProperty, NumericProperty, StringProperty


class ScanScreen(KioskScreen):
    service_name = StringProperty("")
    materials = StringProperty("")
    status = StringProperty("")
    busy = BooleanProperty(False)
    failed = BooleanProperty(False)
    count = NumericProperty(0)

    def on_pre_enter(self, *_: object) -> None:
        self.count = 0
        self.status = ""
        self.failed = False
        super().on_pre_enter()

    def refresh(self) -> None:
        app = self.app
        if not app.service_id:
            return
        service = app.hall.service(app.service_id)
        self.service_name = service.name
        self.materials = "、".join(service.guide.materials)
        if app.devices.scanner is None:
            self.status = app.t("kiosk.scan.none")
            self.failed = True

    def shoot(self) -> None:
        app = self.app
        if app.devices.scanner is None or self.busy:
            return
        self.busy = True
        self.status = app.t("kiosk.scan.busy")
        app.devices.scan(app.service_id, self._scanned)

    def _scanned(self, result: DocumentCaptured | ScannerError) -> None:
        self.busy = False
        if isinstance(result, ScannerError):
            self.failed = True
            self.status = result.message.render(self.app.lang)
            return
        self.failed = False
        self.count += 1
        self.status = self.app.t("kiosk.scan.done", count=self.count)
