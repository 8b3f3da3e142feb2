"""The ticket layout: pure, exact bytes, Chinese text that decodes back, wrapping by display width."""

from __future__ import annotations

import pytest
from hallkit.devices.printer.codec import (
    Align,
    Alignment,
    CharSize,
    ChineseMode,
    Cut,
    EscposDecoder,
    Initialize,
    QrStore,
    Text,
    encode,
)
from hallkit.devices.printer.layout import (
    COLUMNS,
    TicketComposer,
    TicketPrint,
    TicketWindow,
    display_width,
    wrap,
)
from hallkit.devices.printer.render import LINE_DOTS, TicketRenderer
from PIL import Image, ImageOps

from hallkit.config import TicketLayout, WebSettings
from tests.devices.printer.conftest import LONG_SERVICE, issued, ticket_print


def printed_text(data: bytes, encoding: str) -> list[str]:
    """The text lines in ``data``, decoded the way the printer reads them."""
    decoder = EscposDecoder()
    commands = decoder.feed(data) + decoder.flush()
    assert decoder.discarded == 0
    lines, current = [], b""
    for command in commands:
        if isinstance(command, Text):
            current += command.data
        elif command.kind == "lf":
            lines.append(current.decode(encoding))
            current = b""
    return lines


def test_from_view_takes_what_the_hub_issued(small_config):
    ticket = TicketPrint.from_view(issued(small_config, "A001", ahead=3), small_config)
    assert ticket.number == "A001"
    assert ticket.service_name == "低保申请"
    assert [(w.number, w.name) for w in ticket.windows] == [(1, "综合窗口")]
    assert ticket.wait_minutes == 14  # 13.5 rounds up: never promise less than the estimate
    assert ticket.taken_at.hour == 10  # 02:05 UTC is 10:05 in the hall
    assert ticket.qr_url == "http://hall.local:8090/t/K7P2M9X4QA"
    assert ticket.hall_name == "测试村便民服务站"


def test_ticket_carries_no_personal_data():
    assert set(TicketPrint.model_fields) == {
        "ticket_id", "number", "hall_name", "service_name", "priority", "windows", "ahead",
        "wait_minutes", "taken_at", "qr_url", "footer"}


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8"])
@pytest.mark.parametrize("paper", [58, 80])
def test_bytes_decode_back_to_the_same_chinese_text(small_config, encoding, paper):
    ticket = ticket_print(small_config)
    data = TicketComposer(TicketLayout(paper_width_mm=paper, encoding=encoding)).to_bytes(ticket)
    lines = printed_text(data, encoding)
    assert lines[0] == "测试村便民服务站"
    assert "A001" in lines
    assert "低保申请" in lines
    assert "办理窗口：1号 综合窗口" in lines
    assert "前面等候：3 人" in lines
    assert "预计等候：约 14 分钟" in lines
    assert "取号时间：2026-11-23 10:05" in lines
    assert "请对我们的服务作出评价 · 投诉电话 12345" in " ".join(lines)
    assert all(display_width(line, encoding) <= COLUMNS[paper] for line in lines)


def test_big5_printer_gets_big5_bytes(small_config):
    ticket = ticket_print(small_config, service_name="戶籍登記", hall_name="服務中心")
    data = TicketComposer(TicketLayout(encoding="big5")).to_bytes(ticket)
    assert "戶籍登記".encode("big5") in data
    assert printed_text(data, "big5")[0] == "服務中心"


def test_exact_bytes_of_the_head_of_a_ticket(small_config):
    """GIVEN an 80 mm GB18030 layout THEN the ticket starts with these exact bytes."""
    data = TicketComposer(TicketLayout()).to_bytes(ticket_print(small_config))
    head = encode([
        Initialize(), ChineseMode(on=True), Align(align=Alignment.CENTER),
    ]) + bytes.fromhex("1b 45 01") + "测试村便民服务站".encode("gb18030") + bytes.fromhex("0a 1b 45 00 0a") \
        + bytes.fromhex("1d 21 44") + b"A001\n" + bytes.fromhex("1d 21 00")
    assert data.startswith(head)
    assert data.endswith(Cut(partial=True, feed=4).encode())


def test_number_is_five_times_width_and_height(small_config):
    commands = TicketComposer(TicketLayout()).commands(ticket_print(small_config))
    at = commands.index(Text(data=b"A001"))
    assert commands[at - 1] == CharSize(width=5, height=5)


DOTS_PER_MM = 8
"""203 dpi thermal heads: 8 dots a millimetre (384 dots on 58 mm paper's 48 mm print line)."""


@pytest.mark.parametrize("paper", [58, 80])
def test_the_number_prints_at_least_10_mm_tall(small_config, paper):
    """Measured in the virtual printer's picture: the number's dark pixels, top to bottom."""
    renderer = TicketRenderer(paper, "gb18030")
    composer = TicketComposer(TicketLayout(paper_width_mm=paper))
    pages = [page for c in composer.commands(ticket_print(small_config, number="A0001"))
             if (page := renderer.feed(c)) is not None]
    number_row = next(draw() for draw in pages[0].rows if draw().height > 3 * LINE_DOTS)
    top, bottom = _ink_rows(number_row)
    assert 10 <= (bottom - top) / DOTS_PER_MM <= 15
    assert "A0001" in [line.text for line in pages[0].lines]  # on one line, even on 58 mm


def _ink_rows(image: Image.Image) -> tuple[int, int]:
    box = ImageOps.invert(image.convert("L")).getbbox()
    assert box is not None
    return box[1], box[3]


def test_wrap_breaks_at_a_space_counting_columns_not_characters():
    # Five Chinese characters are ten columns: the space is in the second half of a 20-column line.
    assert wrap("一二三四五 ABCDEFGHIJKLMN", 20, "gb18030") == ["一二三四五", "ABCDEFGHIJKLMN"]


def test_a_long_window_name_wraps_under_itself_on_58_mm(small_config):
    window = TicketWindow(number=2, name="社会救助·民政·残联·退役军人事务联合服务窗口")
    ticket = ticket_print(small_config, windows=[window])
    lines = printed_text(TicketComposer(TicketLayout(paper_width_mm=58)).to_bytes(ticket), "gb18030")
    at = next(i for i, line in enumerate(lines) if line.startswith("办理窗口："))
    indent = " " * display_width("办理窗口：", "gb18030")
    assert lines[at + 1].startswith(indent) and lines[at + 1].strip()
    assert all(display_width(line, "gb18030") <= 32 for line in lines[at:at + 3])


def test_qr_carries_only_the_configured_url(small_config):
    commands = TicketComposer(TicketLayout()).commands(ticket_print(small_config))
    stored = [c for c in commands if isinstance(c, QrStore)]
    assert stored == [QrStore(data=b"http://hall.local:8090/t/K7P2M9X4QA")]


def test_chinese_mode_can_be_left_alone(small_config):
    data = TicketComposer(TicketLayout(chinese_mode=False)).to_bytes(ticket_print(small_config))
    assert ChineseMode(on=True).encode() not in data


@pytest.mark.parametrize("columns", [16, 32, 48])
def test_long_service_name_wraps_by_display_width_never_mid_character(columns):
    lines = wrap(LONG_SERVICE, columns, "gb18030")
    assert "".join(lines) == LONG_SERVICE
    assert all(display_width(line, "gb18030") <= columns for line in lines)
    assert not any(line[0] in "，、。" for line in lines)


def test_closing_punctuation_does_not_start_a_line():
    # 15 characters fill a 30-column line; the comma must not start the next one.
    lines = wrap("一二三四五六七八九十一二三四五，六", 30, "gb18030")
    assert lines == ["一二三四五六七八九十一二三四", "五，六"]


def test_wrap_prefers_a_space_and_counts_ascii_as_one_column():
    assert wrap("请对我们的服务作出评价 · 投诉电话 12345", 32, "gb18030") == [
        "请对我们的服务作出评价 ·", "投诉电话 12345"]
    assert wrap("A" * 33, 32, "gb18030") == ["A" * 32, "A"]


def test_many_windows_go_one_per_line_under_the_label(sample_config):
    service = next(s for s in sample_config.services if len(sample_config.windows_serving(s.id)) > 1)
    ticket = TicketPrint.from_view(issued(sample_config, "B001", service_id=service.id), sample_config)
    lines = printed_text(TicketComposer(TicketLayout(paper_width_mm=58)).to_bytes(ticket), "gb18030")
    at = next(i for i, line in enumerate(lines) if line.startswith("办理窗口："))
    assert lines[at + 1].startswith(" " * display_width("办理窗口：", "gb18030"))


def test_nobody_ahead_says_so(small_config):
    lines = printed_text(TicketComposer(TicketLayout()).to_bytes(ticket_print(small_config, ahead=0)), "gb18030")
    assert "前面无人等候，请留意叫号" in lines
    assert not any(line.startswith("预计等候") for line in lines)


@pytest.mark.parametrize(("base", "url"), [
    ("http://hall.local:8090", "http://hall.local:8090/t/ABC"),
    ("https://x.gov.cn/hall-a/", "https://x.gov.cn/hall-a/t/ABC"),
    ("https://x.gov.cn/hall-a", "https://x.gov.cn/hall-a/t/ABC"),
])
def test_ticket_url_is_the_public_url_of_the_phone_page(base, url):
    assert WebSettings(public_url=base).ticket_url("ABC") == url
