"""Maintenance, behind the hidden gesture and the PIN: device status, test print, reload config."""

from __future__ import annotations

from hallkit.kiosk.screens.base import KioskScreen
from kivy.clock import Clock
from kivy.properties import StringProperty

from hallkit.config import ConfigError

REFRESH_SECONDS = 1.0


class MaintenanceScreen(KioskScreen):
    lines = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *_: object) -> None:
        self.message = ""
        super().on_pre_enter()
        self._timer = Clock.schedule_interval(lambda _dt: self.refresh(), REFRESH_SECONDS)

    def on_leave(self, *_: object) -> None:
        self._timer.cancel()

    def refresh(self) -> None:
        app = self.app
        devices = app.devices
        t = app.t
        status = devices.printer_status
        if devices.printer_device is None:
            printer = t("kiosk.maint.none")
        elif status is None:
            printer = t("kiosk.maint.starting")
        else:
            printer = status.describe(app.lang)
        if devices.idcard_device is None:
            reader = t("kiosk.maint.none")
        elif devices.reader_problem is not None:
            reader = devices.reader_problem.render(app.lang)
        else:
            reader = t("kiosk.maint.reader_ok") if devices.watcher is not None else t("kiosk.maint.starting")
        usable = devices.scanner_state
        if devices.scanner_device is None:
            scanner = t("kiosk.maint.none")
        elif usable is None:
            scanner = t("kiosk.maint.starting")
        elif usable.usable or usable.reason is None:
            scanner = t("kiosk.maint.scanner_ok")
        else:
            scanner = usable.reason.render(app.lang)
        pending = len(devices.spooler.pending()) if devices.spooler is not None else 0
        self.lines = "\n".join((
            t("kiosk.maint.hub", state=t("kiosk.maint.online" if app.hub_online else "kiosk.maint.offline")),
            t("kiosk.maint.broker", broker=app.broker.url),
            t("kiosk.maint.printer", state=printer),
            t("kiosk.maint.pending", count=pending),
            t("kiosk.maint.reader", state=reader),
            t("kiosk.maint.scanner", state=scanner),
            t("kiosk.maint.config", path=app.config_path or "-"),
        ))

    def test_print(self) -> None:
        app = self.app
        self.message = app.t("kiosk.maint.test_sent") if app.devices.test_print() else \
            app.t("kiosk.maint.printer", state=app.t("kiosk.maint.none"))

    def reload(self) -> None:
        try:
            self.message = self.app.reload_config()
        except ConfigError as error:
            self.message = self.app.t("kiosk.maint.reload_failed", error="; ".join(error.problems)[:200])
        self.refresh()
