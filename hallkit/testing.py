"""Support for the tests and the benches (not used by the hall itself): sample hall configurations,
a fixed Monday, free ports.

Each part has its own ``testing`` module on its floor beside this one: ``hallkit.broker.testing``
(a real Mosquitto on a free port), ``hallkit.uplink.testing`` (ratings, cases and halls with an
uplink), ``hallkit.county.testing`` (a fresh PostgreSQL database, a small seeded county),
``hallkit.kiosk.testing`` (taps and scenarios on the Kivy clock). ``tests/`` and ``bench/`` both
import from them; a bench never imports ``tests`` (tests/test_architecture.py).
"""

from __future__ import annotations

import hashlib
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from hallkit.commandline import write_atomically
from hallkit.filemodes import SECRET_MODE

MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
"""A Monday morning, 10:00 in Beijing."""


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick), for a broker or a web server of a test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """The addresses something listens on at TCP ``port``, from the kernel's own tables (Linux):
    whether a server is reachable from the network, without needing a second machine."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                packed = bytes.fromhex(address)
                # The kernel writes each 32-bit word in the machine's byte order.
                ordered = packed if sys.byteorder == "big" else b"".join(
                    packed[i:i + 4][::-1] for i in range(0, width, 4))
                found.add(socket.inet_ntop(socket.AF_INET if width == 4 else socket.AF_INET6, ordered))
    return found


def write_hall_config(path: Path, text: str) -> Path:
    """A hall configuration written as hallkit writes one: for its owner only, since it holds the
    hall's id_hash_key (the hub refuses one that others may read, :mod:`hallkit.filemodes`)."""
    write_atomically(path, text, SECRET_MODE)
    return path


SMALL_HALL = """
[hall]
id = "test-hall"
name = "测试村便民服务站"
level = "village"
region_code = "652323100201"

[queue]
max_priority_in_a_row = 2
no_show_requeue = 1

[privacy]
id_hash_key = "test-secret-0123456789"

[[staff]]
id = "a1"
name = "张三"

[[staff]]
id = "b1"
name = "李四"

[[services]]
id = "social"
name = "低保申请"
prefix = "A"
default_service_minutes = 6

[[services]]
id = "pension"
name = "养老保险"
prefix = "B"
default_service_minutes = 4

[[services]]
id = "permit"
name = "建房审批"
prefix = "C"

[[windows]]
number = 1
name = "综合窗口"
services = ["*"]
staff_a = "a1"
staff_b = "b1"

[[windows]]
number = 2
name = "社保窗口"
services = ["pension"]
staff_a = "b1"

[[windows]]
number = 3
name = "审批窗口"
services = ["permit"]
"""
"""A village station: three services (A, B, C), three windows, two staff; no devices."""


HALL_WITH_DEVICES = SMALL_HALL.replace("[queue]", "[queue]\naccept_outside_hours = true") + """
[[devices]]
id = "kiosk-1"
kind = "kiosk"

[[devices]]
id = "console"
kind = "counter"

[[devices]]
id = "pad-2"
kind = "pad"
window = 2

[[devices]]
id = "display-1"
kind = "display"
"""
"""The small hall open around the clock, with a kiosk, a counter console, a pad at window 2 and a display."""


HALL_WITH_PADS = HALL_WITH_DEVICES.replace("[queue]", """[rating]
pad_timeout_seconds = 600
late_rating_hours = 168
sweep_seconds = 3600

[queue]""") + """
[[devices]]
id = "pad-1"
kind = "pad"
window = 1

[[devices]]
id = "pad-3"
kind = "pad"
window = 3
"""
"""The hall with devices and a rating pad at each window; pads wait long, late ratings count for a week."""


DASHBOARD_HALL = HALL_WITH_DEVICES + """
[[devices]]
id = "dashboard"
kind = "counter"

[[devices]]
id = "printer-1"
kind = "printer"

[[devices]]
id = "pad-1"
kind = "pad"
window = 1

[dashboard]
alert_queue_length = 5
alert_wait_minutes = 30
"""
"""The hall with devices, the dashboard's device login, a printer, a pad at window 1 and the dashboard's alerts."""


WEB_HALL = DASHBOARD_HALL + """
[[devices]]
id = "web"
kind = "web"

[web]
public_url = "{public_url}"
{web}
[rating]
{rating}
"""
"""The dashboard's hall with the phone page; fill ``public_url``, ``web`` and ``rating`` (``str.format``)."""


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
"""A township hall for the kiosk's scenarios and bench: its full service catalogue with guides, the staff
PIN :data:`KIOSK_PIN`; :func:`write_kiosk_config` fills in the devices."""


KIOSK_PIN = "2468"
"""The staff PIN of :data:`KIOSK_HALL`."""


def write_kiosk_config(work: Path, printer_url: str, idcard_port: str) -> Path:
    """``work/hall.toml``: :data:`KIOSK_HALL` with the virtual printer's URL, the ID-card reader's port
    and ``work/scans`` as the document camera's folder."""
    path = work / "hall.toml"
    pin_hash = hashlib.sha256(KIOSK_PIN.encode()).hexdigest()
    path.write_text(KIOSK_HALL.format(pin_hash=pin_hash, printer=printer_url, idcard=idcard_port,
                                      scans=work / "scans"), "utf-8")
    return path
