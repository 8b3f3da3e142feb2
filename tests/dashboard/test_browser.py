"""The dashboard in headless Chromium against a real hub: what a hall manager sees and does."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from hallkit.contracts.hall import DeviceState, DeviceStatus, RatingReply, RatingRequest, Topics
from hallkit.contracts.mqtt import make_client
from playwright.sync_api import expect

from hallkit.queue.models import CallNext, Complete, Pause, TakeTicket, TicketCompleted
from hallkit.rating.models import Level, RatingChannel, RatingSubmission
from tests.dashboard.conftest import MANAGER, VIEWER, login, shoot


def test_ticket_and_call_reach_the_board_within_a_second(browser, hall):
    page = login(browser, hall, MANAGER)
    expect(page.locator("#windows .window")).to_have_count(3)
    with hall.client("kiosk-1") as kiosk, hall.client("console") as counter:
        started = time.monotonic()
        kiosk.request(TakeTicket(service_id="pension"))
        expect(page.locator("#waiting-total")).to_have_text("1", timeout=1000)
        expect(page.locator("tr[data-service=pension] td.waiting")).to_have_text("1", timeout=1000)
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        counter.request(CallNext(window=2))
        expect(page.locator(".window[data-window='2'] .calling")).to_have_text("B001", timeout=1000)
        assert time.monotonic() - started < 1.5
        counter.request(Pause(window=3))
        expect(page.locator(".window[data-window='3']")).to_have_class("window paused", timeout=1000)
        expect(page.locator(".window[data-window='3'] .calling")).to_have_text("暂停服务")
    expect(page.locator(".window[data-window='1'] .staff")).to_contain_text("张三")
    shoot(page, "board")
    page.context.close()


def _rate(hall, service_event_id: str, level: Level) -> RatingReply:  # noqa: ANN001
    """A resident rates at window 1's pad."""
    topics = Topics(hall.config.hall.id)
    got: list[RatingReply] = []
    done = threading.Event()
    client = make_client(hall.address, "pad-1-test")

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(RatingReply.model_validate_json(message.payload))
        done.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_connect = lambda c, *_: c.subscribe(topics.rating_reply("pad-1"), qos=1)
    client.connect(hall.address.host, hall.address.port)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        request = RatingRequest(device="pad-1", reply_to=topics.rating_reply("pad-1"),
                                submission=RatingSubmission(service_event_id=service_event_id,
                                                            channel=RatingChannel.PAD, level=level,
                                                            tags=["态度不好"], text="等了很久"))
        client.publish(topics.rating_submit("pad-1"), request.model_dump_json(), qos=1)
        assert done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def test_bad_rating_opens_a_case_worked_to_closure_on_the_page(browser, hall):
    with hall.client("kiosk-1") as kiosk, hall.client("console") as counter:
        kiosk.request(TakeTicket(service_id="social"))
        counter.request(CallNext(window=1))
        reply = counter.request(Complete(window=1))
    completed = next(e for e in reply.outcome.events if isinstance(e, TicketCompleted))
    rated = _rate(hall, completed.id, Level.VERY_DISSATISFIED)
    assert rated.ok and rated.receipt and rated.receipt.case_id
    page = login(browser, hall, MANAGER)
    page.goto(hall.url + "ratings")
    case = page.locator(f"#case-{rated.receipt.case_id}")
    expect(case).to_contain_text("A001")
    expect(case.locator(".case-state")).to_have_text("待核实")
    expect(case.locator(".reasons")).to_contain_text("态度不好")  # why the resident was unhappy, on the card
    expect(case.locator(".comment")).to_contain_text("等了很久")
    expect(case.locator("ol.steps li").first).to_contain_text("差评生成 · 群众差评自动立案")
    assert "hub" not in case.locator("ol.steps").inner_text()
    expect(page.locator("table.grid tr.bad")).to_contain_text("非常不满意")
    notes = {"verified": "调取录像，情况属实", "rectified": "窗口人员已培训", "called_back": "电话回访，群众满意",
             "closed": ""}
    for step, note in notes.items():
        case = page.locator(f"#case-{rated.receipt.case_id}")
        case.locator("select[name=step]").select_option(step)
        case.locator("input[name=note]").fill(note)
        case.locator("button[type=submit]").click()
        expect(page.locator(".flash.ok")).to_be_visible()
    case = page.locator(f"#case-{rated.receipt.case_id}")
    expect(case.locator(".case-state")).to_have_text("已办结")
    expect(case.locator("ol.steps li")).to_have_count(5)
    expect(case.locator("ol.steps")).to_contain_text("wang")
    expect(case.locator("form")).to_have_count(0)
    shoot(page, "ratings")
    page.goto(hall.url + "charts")
    expect(page.locator("#chart-window canvas")).to_have_count(1, timeout=5000)
    page.wait_for_timeout(300)
    shoot(page, "charts")
    page.goto(hall.url + "report")
    expect(page.locator("table.report").first).to_contain_text("综合窗口")
    shoot(page, "report")
    page.emulate_media(media="print")
    shoot(page, "report-print")
    page.context.close()


def test_device_going_offline_and_low_paper_raise_alerts(browser, hall):
    topics = Topics(hall.config.hall.id)
    printer = make_client(hall.address, "printer-1-test", will=(
        topics.device_status("printer-1"),
        DeviceStatus(device="printer-1", state=DeviceState.OFFLINE, session=1, kind="printer").model_dump_json().encode()))
    printer.connect(hall.address.host, hall.address.port, keepalive=5)
    printer.loop_start()
    online = DeviceStatus(device="printer-1", state=DeviceState.ONLINE, session=1, kind="printer", version="1.2.0",
                          detail={"paper": "near_end"})
    printer.publish(topics.device_status("printer-1"), online.model_dump_json(), qos=1, retain=True).wait_for_publish(5)
    page = login(browser, hall, MANAGER)
    page.goto(hall.url + "devices")
    expect(page.locator("#alerts")).to_contain_text("打印机 printer-1 纸将用完", timeout=2000)
    expect(page.locator("tr[data-device=printer-1]")).to_contain_text("在线", timeout=2000)
    # Pull the plug: the socket dies without a DISCONNECT, so the broker publishes the Last Will.
    printer.loop_stop()
    printer.socket().close()
    expect(page.locator("#alerts .alert.critical")).to_contain_text("设备 printer-1 离线", timeout=3000)
    expect(page.locator("tr[data-device=printer-1]")).to_contain_text("离线", timeout=2000)
    shoot(page, "devices")
    page.context.close()


def test_devices_page_reads_in_whole_words(browser, hall):
    page = login(browser, hall, MANAGER, width=1366, height=768)
    page.goto(hall.url + "devices")
    hub = page.locator("tr[data-device=hub]")
    expect(hub).to_contain_text("在线", timeout=3000)
    expect(hub.locator("td.detail")).to_contain_text("已受理")  # the hub's facts in words, not accepted=3
    assert "=" not in page.locator("#devices").inner_text()
    expect(page.locator("tr[data-device=printer-1]")).to_contain_text("从未上线")
    # No heading or badge breaks inside a word: each is one line high.
    one_line = page.evaluate("""() => [...document.querySelectorAll('#devices th, #devices .badge')].filter(
        e => e.getClientRects().length > 1 || e.getBoundingClientRect().height > 2 * parseFloat(getComputedStyle(e).fontSize) + 12
    ).map(e => e.textContent)""")
    assert one_line == []
    page.context.close()


def test_wall_board_fits_one_screen_and_follows_the_hall(browser, hall):
    page = login(browser, hall, VIEWER, width=1920, height=1080)
    page.goto(hall.url + "wall")
    expect(page.locator("#windows .window")).to_have_count(3)
    with hall.client("kiosk-1") as kiosk:
        for _ in range(7):  # over alert_queue_length: a queue alert
            kiosk.request(TakeTicket(service_id="pension"))
        kiosk.request(TakeTicket(service_id="social"))
    expect(page.locator("#waiting-total")).to_have_text("8", timeout=2000)
    expect(page.locator("#alerts .alert-line")).to_be_visible()
    assert page.locator("#alerts .alert-line").evaluate("e => e.getBoundingClientRect().height") < 60  # one line
    assert page.locator("form, nav, button").evaluate_all("els => els.filter(e => e.offsetParent !== null).length") == 0
    scroll = page.evaluate("() => [document.documentElement.scrollHeight, document.documentElement.scrollWidth]")
    assert scroll[0] <= 1080 and scroll[1] <= 1920, scroll  # no scrolling on the wall
    shoot(page, "wall")
    page.context.close()


def test_viewer_sees_everything_and_changes_nothing(browser, hall):
    with hall.client("kiosk-1") as kiosk, hall.client("console") as counter:
        kiosk.request(TakeTicket(service_id="social"))
        counter.request(CallNext(window=1))
        reply = counter.request(Complete(window=1))
    completed = next(e for e in reply.outcome.events if isinstance(e, TicketCompleted))
    rated = _rate(hall, completed.id, Level.DISSATISFIED)
    page = login(browser, hall, VIEWER)
    expect(page.locator(".who .user")).to_contain_text("只读")
    page.goto(hall.url + "ratings")
    case = page.locator(f"#case-{rated.receipt.case_id}")
    expect(case).to_contain_text("待核实")
    expect(case.locator("form")).to_have_count(0)
    # Even a hand-made post with the viewer's own CSRF token is refused.
    csrf = page.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
    status = page.evaluate(
        """async ([url, csrf]) => (await fetch(url, {method: 'POST', body: new URLSearchParams({csrf, step: 'verified'}),
           headers: {'Content-Type': 'application/x-www-form-urlencoded'}})).status""",
        [hall.url + f"cases/{rated.receipt.case_id}/step", csrf])
    assert status == 403
    page.reload()
    expect(page.locator(f"#case-{rated.receipt.case_id} .case-state")).to_have_text("待核实")
    page.context.close()


def test_no_page_answers_without_login(browser, hall):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    for path in ("", "charts", "ratings", "devices", "report", "wall"):
        page.goto(hall.url + path)
        assert page.url == hall.url + "login" + (f"?next=%2F{path}" if path else "")
    expect(page.locator("form.login h1")).to_have_text("登录大厅管理看板")
    shoot(page, "login")
    for path in ("api/board", "api/stream", "api/charts", "report.csv", "static/echarts.min.js"):
        assert page.request.get(hall.url + path, max_redirects=0).status in (401, 303)
    assert page.request.get(hall.url + "health").ok
    # Logging in from there lands on the page that was asked for, not on the board.
    page.fill("input[name=name]", MANAGER[0])
    page.fill("input[name=password]", MANAGER[1])
    page.click("button[type=submit]")
    page.wait_for_url(hall.url + "wall")
    context.close()
