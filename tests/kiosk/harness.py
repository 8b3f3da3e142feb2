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

PIN = "2468"
PIN_HASH = "a1fb4e703a9ef1fa4936801721ff285a97ac85330856674412e054892afe6972"

KIOSK_HALL = """
[hall]
id = "kiosk-hall"
name = "兴华镇便民服务中心"
level = "township"
region_code = "652323100000"

[queue]
accept_outside_hours = true
elderly_age = 65

[privacy]
id_hash_key = "test-secret-0123456789"

[kiosk]
size = [1280, 800]
window_mode = "windowed"
idle_seconds = 60
staff_pin_hash = "{pin_hash}"
scan_folder = "{scans}"
leaders = [
  {{ days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], name = "刘建国", title = "镇党委副书记", phone = "0994-4500100" }},
]

[kiosk.display]
size = [1280, 720]
window_mode = "windowed"
player = "none"

[[staff]]
id = "zhang-wei"
name = "张伟"
phone = "0994-4500001"
title = "综合窗口"

[[staff]]
id = "li-na"
name = "李娜"
phone = "0994-4500002"

[[staff]]
id = "wang-fang"
name = "王芳"
phone = "0994-4500003"

[[services]]
id = "dibao"
name = "城乡最低生活保障对象认定"
prefix = "A"
department = "民政局"
counter_group = "社会救助窗口"
default_service_minutes = 8

[services.guide]
legal_basis = "《社会救助暂行办法》《最低生活保障审核确认办法》"
conditions = "共同生活的家庭成员人均收入低于当地最低生活保障标准，且家庭财产状况符合规定"
materials = ["户口簿", "居民身份证", "家庭收入情况声明", "家庭财产状况授权核查书"]
process = "申请 → 乡镇受理 → 入户调查 → 民主评议 → 县民政局审核确认 → 公示"
time_limit = "30个工作日"
fees = "不收费"
contacts = "社会救助窗口 0994-4500002"
location = "便民服务中心一楼 2号窗口"

[[services]]
id = "linshi"
name = "临时救助对象认定"
prefix = "A"
department = "民政局"
counter_group = "社会救助窗口"

[[services]]
id = "canji"
name = "困难残疾人生活补贴和重度残疾人护理补贴"
prefix = "A"
department = "民政局"
counter_group = "社会救助窗口"

[[services]]
id = "yanglao"
name = "城乡居民养老保险参保登记"
prefix = "C"
department = "社保局"
counter_group = "乡镇劳动保障所"
default_service_minutes = 4

[[services]]
id = "renzheng"
name = "领取养老金人员待遇资格认证"
prefix = "C"
department = "社保局"
counter_group = "乡镇劳动保障所"

[[services]]
id = "yibao"
name = "城乡居民医疗保险参保登记"
prefix = "C"
department = "医保局"
counter_group = "乡镇劳动保障所"

[[services]]
id = "shiye"
name = "失业登记"
prefix = "C"
department = "人社局"
counter_group = "乡镇劳动保障所"

[[services]]
id = "jiuye"
name = "就业登记"
prefix = "C"
department = "人社局"
counter_group = "乡镇劳动保障所"

[[services]]
id = "kunnan"
name = "就业困难人员认定"
prefix = "C"
department = "人社局"
counter_group = "乡镇劳动保障所"

[[services]]
id = "zhaiji"
name = "农村宅基地使用权及房屋所有权登记"
prefix = "G"
department = "自然资源局"
counter_group = "乡镇规划办"

[[services]]
id = "youdai"
name = "退役军人优待证的办理"
prefix = "J"
department = "退役军人事务局"
counter_group = "乡镇退役军人服务站"

[[windows]]
number = 1
name = "综合受理窗口"
services = ["*"]
staff_a = "zhang-wei"
staff_b = "li-na"

[[windows]]
number = 2
name = "社会救助·民政"
groups = ["社会救助窗口"]
staff_a = "li-na"

[[windows]]
number = 3
name = "劳动保障"
groups = ["乡镇劳动保障所"]
staff_a = "wang-fang"

[[windows]]
number = 4
name = "规划·退役军人"
groups = ["乡镇规划办", "乡镇退役军人服务站"]

[[devices]]
id = "kiosk-1"
kind = "kiosk"

[[devices]]
id = "printer-1"
kind = "printer"
url = "{printer}"
kiosk = "kiosk-1"

[[devices]]
id = "idcard-1"
kind = "idcard"
url = "serial://{idcard}"
kiosk = "kiosk-1"

[[devices]]
id = "scanner-1"
kind = "scanner"
url = "sim://"
kiosk = "kiosk-1"

[[devices]]
id = "display-1"
kind = "display"

[[devices]]
id = "console"
kind = "counter"
"""


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


def write_config(work: Path, printer: PrinterSimulator, idcard: IdCardSimulator) -> Path:
    path = work / "hall.toml"
    path.write_text(KIOSK_HALL.format(pin_hash=PIN_HASH, printer=printer.url, idcard=idcard.port,
                                      scans=work / "scans"), "utf-8")
    return path


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
    config_path = write_config(work, printer, idcard)
    config = parse_config(config_path.read_text("utf-8"), source=config_path)
    ctx = Context(work=work, broker=parse_broker_url(broker_url), config=config, config_path=config_path,
                  printer=printer, idcard=idcard)
    ctx.start_hub()
    from hallkit.kiosk import boot

    size = screen or (config.kiosk.display.size if kind == "display" else config.kiosk.size)
    boot.prepare(size, "windowed", kiosk=True)
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
