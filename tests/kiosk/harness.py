"""Runs one kiosk or display scenario in its own process, with real devices around it.

Kivy keeps one window and one app per process, so each test starts this module:

    python -m tests.kiosk.harness SCENARIO WORKDIR BROKER_URL [WIDTHxHEIGHT]

It starts the hub (in process, on the test's Mosquitto), the virtual printer, the
ID-card simulator on a pseudo-terminal and the simulated document camera, writes the
hall configuration that points the kiosk at them, runs the app with the scenario from
:mod:`tests.kiosk.scenarios` and writes ``result.json`` (screenshots, measurements,
or the scenario's failure). The exit code is 0 only when the scenario passed.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.contracts.mqtt import BrokerAddress, parse_broker_url
from hallkit.devices.idcard.simulator import IdCardSimulator
from hallkit.devices.printer.simulator import PrinterSimulator
from hallkit.kiosk.timers import ManualTimers

from hallkit.config import HallConfig, parse_config
from hallkit.testing import write_kiosk_config


@dataclass
class Context:
    """What a scenario works with."""

    work: Path
    broker: BrokerAddress
    config: HallConfig
    config_path: Path
    printer: PrinterSimulator
    idcard: IdCardSimulator
    hub: Hub | None = None
    app: Any = None
    timers: ManualTimers = field(default_factory=ManualTimers)
    """The kiosk's clock for its own timers (idle reset, retries, PIN lock): moved by the scenario."""
    result: dict[str, Any] = field(default_factory=dict)
    shots: list[dict[str, object]] = field(default_factory=list)

    def start_hub(self) -> Hub:
        self.hub = Hub(self.config, self.broker, self.work / "hub", synchronous="normal",
                       parts=hub_parts(self.config))
        self.hub.start()
        return self.hub

    def stop_hub(self) -> None:
        if self.hub is not None:
            self.hub.stop()
            self.hub = None

    def shot(self, name: str) -> dict[str, object]:
        from hallkit.kiosk.testing import screenshot

        record = screenshot(self.app.root, self.work / "shots", name)
        self.shots.append(record)
        return record


def main(argv: list[str]) -> int:
    scenario_name, work, broker_url = argv[0], Path(argv[1]), argv[2]
    screen = tuple(int(n) for n in argv[3].split("x")) if len(argv) > 3 else None
    logging.basicConfig(level=logging.INFO, filename=work / "harness.log",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tests.kiosk import scenarios

    scenario, kind = scenarios.SCENARIOS[scenario_name]
    printer = PrinterSimulator(out_dir=work / "printed").start()
    idcard = IdCardSimulator()
    idcard.start()
    config_path = write_kiosk_config(work, printer.url, idcard.port)
    config = parse_config(config_path.read_text("utf-8"), source=config_path)
    ctx = Context(work=work, broker=parse_broker_url(broker_url), config=config, config_path=config_path,
                  printer=printer, idcard=idcard)
    ctx.start_hub()
    from hallkit.kiosk import boot

    size = screen or (config.kiosk.display.size if kind == "display" else config.kiosk.size)
    boot.prepare(size, "windowed", kiosk=True, design_height=None if kind == "display" else boot.KIOSK_DESIGN_HEIGHT)
    from hallkit.kiosk.testing import Script

    if kind == "display":
        from hallkit.kiosk.display.app import DisplayApp
        from hallkit.kiosk.display.voice import Announcer, Voice

        settings = config.kiosk.display
        announcer = Announcer(settings.voice_template, Voice(settings.voice, settings.voice_repeat), None,
                              folder=work / "voice")
        ctx.app = DisplayApp(config, ctx.broker, announcer, device_id="display-1")
    else:
        from hallkit.kiosk.app import KioskApp

        ctx.app = KioskApp(config, config_path, ctx.broker, "kiosk-1", timers=ctx.timers)
    script = Script(ctx.app, scenario(ctx)).start()
    try:
        ctx.app.run()
    finally:
        ctx.stop_hub()
        printer.stop()
        idcard.stop()
    passed = script.finished and script.error is None
    (work / "result.json").write_text(json.dumps(
        {"passed": passed, "error": script.error, "result": ctx.result, "shots": ctx.shots},
        ensure_ascii=False, indent=1, default=str), "utf-8")
    if not passed:
        print(script.error or "the app stopped before the scenario ended", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
