"""The kiosk in a real Kivy window, tapped like a resident, against a real hub, printer and card reader."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(180)


def test_take_a_ticket_with_an_elderly_card(run_scenario):
    result = run_scenario("take_ticket")["result"]
    number = result["number"]
    assert number == "A001"
    assert result["priority"] == "priority" and result["channel"] == "kiosk"
    assert result["id_hash_matches"]
    assert number in result["texts"] and "前面没有人，请留意叫号" in result["texts"]
    assert "请取走小票" in result["texts"]
    assert result["printed_large"] == [number]
    assert result["printed_qr"] and result["printed_qr"][0].endswith(result["public_id"])
    assert not result["resident_after_done"]
    assert result["elder_by_card"] and not result["elder_after_done"]  # 长辈模式 for the visit only


def test_elder_mode_has_larger_text_and_fewer_items(run_scenario):
    result = run_scenario("elder_mode")["result"]
    assert result["font_ratio"] >= 1.5 and result["target_ratio"] >= 1.5
    assert result["elder_items"] == 3 and result["elder_pages"] == 2  # six services, three a page
    assert result["min_button_px"] >= 96
    assert "Back" in result["english_texts"] and "Page 1 of 2" not in result["english_texts"]


def test_printer_out_shows_the_number_to_photograph(run_scenario):
    result = run_scenario("printer_out")["result"]
    assert result["number"] == "C001" and result["number"] in result["texts"]
    assert any("拍下本屏幕" in line for line in result["texts"])
    assert any("缺纸" in line for line in result["texts"])
    assert result["printed_while_out"] == 0
    assert result["printed_after"] == ["C001"]  # printed once the paper is back


def test_hub_down_shows_no_number_and_retries(run_scenario):
    result = run_scenario("hub_down")["result"]
    assert not result["ticket_while_down"]
    assert any("连不上排队系统" in line for line in result["texts"])
    assert not any(line.startswith(("A0", "C0")) for line in result["texts"])
    assert result["number"] == "A001"
    assert result["issued"] == 1  # the retries asked again with the same request id: one ticket


def test_unreadable_card_says_what_to_do(run_scenario):
    result = run_scenario("bad_card")["result"]
    assert not result["resident"]
    assert any("这张证件不能使用" in line for line in result["texts"])
    assert any("过期" in line or "有效期" in line for line in result["texts"]), result["texts"]
    assert any("工作人员" in line for line in result["texts"])


def test_idle_reset_drops_personal_data(run_scenario):
    result = run_scenario("idle_reset")["result"]
    assert result["before"] == {"resident": True, "service": "jiuye", "elder": True}
    assert result["after_tapping"] == {"screen": "confirm", "resident": True}
    # The last 15 s count down on screen; a touch then ends the warning and keeps the visit.
    assert result["warning"]["left"] == 10
    assert result["warning"]["shown"] == ["还在吗？10 秒后返回首页，请触摸屏幕继续办理"]
    assert result["after_touch_in_warning"] == {"left": 0, "screen": "confirm"}
    assert result["countdown_end"] == 1
    assert result["just_before_idle"] == "confirm"
    assert result["after"] == {"resident": False, "service": "", "elder": False, "name_on_screen": False}


def test_guides_staff_board_maintenance_and_agent_service(run_scenario):
    result = run_scenario("staff_and_guides")["result"]
    guide = " ".join(result["guide_texts"])
    for label in ("办理依据", "申请条件", "申请材料", "办理流程", "户口簿"):
        assert label in guide
    page2 = " ".join(result["guide_page2"])
    for label in ("办理时限", "收费标准", "咨询电话", "办理地点"):
        assert label in page2
    assert result["scanned_files"] == 1
    staff = " ".join(result["staff_texts"])
    assert "刘建国" in staff and "张伟" in staff and "0994-4500001" in staff
    maintenance = " ".join(result["maintenance_texts"])
    assert "排队系统：已连接" in maintenance and "打印机：正常" in maintenance
    assert result["agent_channel"] == "agent"


def test_appointment_check_in_by_the_card(run_scenario):
    result = run_scenario("appointment_check_in")["result"]
    # A card without appointments: the priority channel as before, no appointment wording.
    assert result["plain_offers"] == []
    assert not any("预约" in line for line in result["plain_texts"]), result["plain_texts"]
    # The card of the resident who booked: the appointment offered as a big button.
    assert result["offers"] == [f"您预约的 城乡最低生活保障对象认定 {result['slot']}，点此签到", "办理其他事项"]
    assert any("长辈优先" in line and "您今天有预约" in line for line in result["home_texts"])
    assert result["offer_height"] >= 96
    assert result["elder_by_card"]
    assert result["english_offers"] == [f"Your appointment: 城乡最低生活保障对象认定 {result['slot']}. Tap to check in",
                                        "Something else"]
    assert result["elder_offer_height"] >= 96 * 1.5
    # "Something else": the tiles, and the booked service chosen there is still the check-in.
    assert any("社会救助" in line for line in result["others_texts"])
    assert "确认签到" in result["confirm_by_service"]
    assert result["home_after_others"] == []
    assert any("预约" in line and result["slot"] in line for line in result["confirm_texts"])
    assert "确认签到" in result["confirm_texts"]
    assert result["priority"] == "appointment" and result["channel"] == "appointment"
    assert result["service"] == "dibao" and result["id_hash_matches"]
    assert result["number"] in result["ticket_texts"]
    assert any("预约签到" in line for line in result["ticket_texts"])
    assert result["after_done"] == {"resident": False, "appointments": 0}
    assert result["offers_again"] == []  # checked in: not offered again
    assert result["second_number"] == result["number"] and result["issued"] == 1
    assert result["after_reset"] == {"resident": False, "appointments": 0}


def test_paused_windows_are_shown_and_their_services_refused_with_the_reason(run_scenario):
    result = run_scenario("paused_windows")["result"]
    assert any("劳动保障" in line and "本窗口暂停服务" in line for line in result["home_texts"])
    assert not any("暂停办理" in line for line in result["served_elsewhere"])
    assert any("失业登记" in line and "暂停办理" in line for line in result["services_texts"])
    assert any("失业登记" in line and "暂无开放的窗口" in line for line in result["refused_texts"])
    assert result["issued"] == 0
    # Its button goes back to the list with the card still read: the visit goes on.
    assert result["after_refused"] == {"screen": "services", "card": True, "group": "劳动保障"}


@pytest.mark.parametrize("size", ["1920x1080", "1366x768", "1280x720"])
def test_display_board_fits_the_screen_with_whole_names(run_scenario, size):
    result = run_scenario("display_busy", size=size)["result"]
    assert result["problems"] == []  # nothing cut, nothing drawn over something else or off the screen
    names = [line.replace("\n", "") for line in result["texts"]]
    assert "困难残疾人生活补贴和重度残疾人护理补贴" in names  # the longest names in full, on two lines
    assert result["waiting_shown"] >= 4
    assert result["numbers_font"] == "HallNumbers"


def test_display_shows_calls_within_a_second_and_speaks_them(run_scenario):
    import wave

    result = run_scenario("display")["result"]
    clock = result["clock"]
    assert clock["shown"] in clock["hall"] and clock["machine"] not in clock["hall"]  # the machine runs on other time
    assert result["call_frames"] <= 1  # on the board at the frame after the event arrived
    assert result["shown"].startswith("C")  # window 3 serves the labour services
    assert "正在叫号" in result["texts"] or "再次呼叫" in result["texts"]
    assert result["texts"][result["texts"].index("4号窗口"):][:3] == ["4号窗口", "规划·退役军人", "暂停"]
    with wave.open(result["wavs"][0]) as wav:
        assert 4.0 < wav.getnframes() / wav.getframerate() < 20.0
