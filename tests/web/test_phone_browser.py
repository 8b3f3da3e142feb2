"""A resident's phone, end to end: the printed QR code, the live line, the call, the rating, the county.

Headless Debian Chromium with a 360×640 phone viewport, against a real Mosquitto, the hub with its
parts and uplink, the dashboard, ``hall web``, the virtual printer and the county's own broker,
ingest and PostgreSQL.
"""

from __future__ import annotations

import json

import psycopg
from hallkit.broker.client import HallClient
from hallkit.county.ingest import Ingest
from playwright.sync_api import expect

from hallkit.queue.models import CallNext, Complete, TicketCompleted
from hallkit.rating.models import Level, RatingChannel, RatingSubmission
from hallkit.testing import free_port
from tests.dashboard.conftest import MANAGER, VIEWER
from tests.upstream.conftest import county_broker, county_db  # noqa: F401 - fixtures
from tests.web.conftest import SCREENSHOTS, http, printed_qr, start_rig, stop_rig, take, wait_until, web_config

PHONE = "13800138000"
PHONE_VIEWPORT = {"width": 360, "height": 640}


def shoot(page, name: str) -> None:  # noqa: ANN001
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def dashboard_page(browser, url: str, user: tuple[str, str]):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(url + "login")
    page.fill("input[name=name]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(url)
    page.goto(url + "ratings")
    return page


def test_resident_follows_the_ticket_and_rates_it_on_the_phone(  # noqa: PLR0915 - one resident's whole visit
        browser, mosquitto, county_broker, county_db, tmp_path):  # noqa: F811 - fixtures
    port = free_port()
    upstream = f'\n[upstream]\nbroker = "{county_broker.url}"\nstats_interval_minutes = 60\n'
    config = web_config(port, upstream=upstream.replace("[upstream]", "[upstream]", 1))
    ingest = Ingest(county_broker.address, county_db).start()
    rig = start_rig(config, mosquitto, tmp_path / "data", port, dashboard=True)
    try:
        take(rig), take(rig)  # two residents ahead
        ticket = take(rig)
        url = printed_qr(config, ticket, tmp_path / "printed")
        assert url == f"http://127.0.0.1:{port}/t/{ticket.public_id}"

        phone = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", is_mobile=True, has_touch=True)
        page = phone.new_page()
        page.goto(url)
        expect(page.locator("#number")).to_have_text("A003")
        expect(page.locator("#ahead")).to_have_text("前面还有 2 人")
        expect(page.locator("#wait")).to_contain_text("预计等候约")
        expect(page.locator(".window-chip")).to_contain_text("1号 综合窗口")
        shoot(page, "phone-waiting")

        with rig.client("console") as counter:
            counter.request(CallNext(window=1))  # A001: one ahead now, shown without reloading
            expect(page.locator("#ahead")).to_have_text("前面还有 1 人", timeout=10_000)
            counter.request(Complete(window=1))
            counter.request(CallNext(window=1))
            expect(page.locator("#ahead")).to_have_text("前面没有人了，请留意叫号", timeout=10_000)
            counter.request(Complete(window=1))
            counter.request(CallNext(window=1))  # A003: the resident's own
            expect(page.locator("#called-window")).to_have_text("1 号窗口", timeout=10_000)
            expect(page.locator(".called-name")).to_have_text("综合窗口")
            shoot(page, "phone-called")
            done = counter.request(Complete(window=1))
        completed = next(e for e in done.outcome.events if isinstance(e, TicketCompleted))

        expect(page.locator("#rate")).to_be_visible(timeout=10_000)
        for level in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
            expect(page.locator(".level", has_text=level).first).to_be_visible()
        expect(page.locator("#bad-only")).to_be_hidden()  # reasons and phone only with a bad level
        page.locator(".level-1").click()
        expect(page.locator("#bad-only")).to_be_visible()
        expect(page.locator("#privacy")).to_contain_text("只保存在本大厅，不上报")
        page.locator(".reason", has_text="态度不好").click()
        page.fill("input[name=phone]", PHONE)
        page.fill("textarea[name=text]", "窗口人员态度生硬")
        shoot(page, "phone-rating-form")
        page.click("button[type=submit]")
        expect(page.locator("#thanks")).to_be_visible(timeout=10_000)
        expect(page.locator(".thanks-title")).to_have_text("感谢您的评价！")
        shoot(page, "phone-thanks")
        page.goto(url + "?lang=en")
        expect(page.locator(".thanks-title")).to_have_text("Thank you for your rating!")
        page.goto(url + "?lang=zh")

        # A second rating from the page: refused, whatever level it names.
        csrf = next(c["value"] for c in phone.cookies() if c["name"] == "hallkit_phone_csrf")
        again = page.request.post(url + "/rate", form={"level": "5", "csrf": csrf, "form_id": "another-form-123"})
        assert again.status == 409 and "已经评价过" in again.text()
        # And one from the window's own pad, for the event its screen showed.
        with HallClient(rig.address, config.hall.id, "pad-1") as pad:
            refused = pad.rate(RatingSubmission(service_event_id=completed.id, channel=RatingChannel.PAD,
                                                level=Level.VERY_SATISFIED))
        assert not refused.ok and refused.refusal and refused.refusal.reason == "rating.already_rated"
        with rig.hub.queue.store.transaction() as conn:
            rows = conn.execute("SELECT json_extract(body, '$.channel'), json_extract(body, '$.level') "
                                "FROM ratings WHERE service_event_id = ?", (completed.id,)).fetchall()
            [(case_id,)] = conn.execute("SELECT case_id FROM rating_cases").fetchall()
        assert rows == [("qr", 1)]

        # The manager sees the case with its channel, reason, comment and the number; a viewer no number.
        manager = dashboard_page(browser, rig.dashboard.url, MANAGER)
        case = manager.locator(f"#case-{case_id}")
        expect(case.locator(".channel")).to_contain_text("扫码")
        expect(case.locator(".reasons")).to_contain_text("态度不好")
        expect(case.locator(".comment")).to_contain_text("窗口人员态度生硬")
        expect(case.locator(".followup-phone")).to_contain_text(PHONE)
        shoot(manager, "dashboard-case-with-followup")
        viewer = dashboard_page(browser, rig.dashboard.url, VIEWER)
        expect(viewer.locator(f"#case-{case_id} .reasons")).to_contain_text("态度不好")
        assert PHONE not in viewer.content()

        # The county stores the rating, without the number; nothing of the hall's files that travel has it.
        def county_rating() -> dict | None:
            with psycopg.connect(county_db) as conn:
                row = conn.execute("SELECT row_to_json(r)::text FROM ratings r WHERE ticket_number = 'A003'").fetchone()
            return json.loads(row[0]) if row else None

        wait_until(lambda: county_rating() is not None, timeout=30, what="the rating at the county")
        stored = county_rating()
        assert stored["channel"] == "qr" and stored["level"] == 1 and stored["tags"] == ["态度不好"]
        assert PHONE not in json.dumps(stored)
        with psycopg.connect(county_db) as conn:
            everything = conn.execute("SELECT string_agg(row_to_json(c)::text, '') FROM case_updates c").fetchone()[0]
        assert everything and PHONE not in everything
        for name in ("hall.sqlite3", "hall.sqlite3-wal"):
            path = rig.data / name
            assert not path.exists() or PHONE.encode() not in path.read_bytes(), name

        # A forged token (the real one with its last character changed: a fixed "z" was the real one
        # once in 32 tickets) opens nothing.
        forged = ticket.public_id[:-1] + ("y" if ticket.public_id.endswith("z") else "z")
        with http(rig) as client:
            assert client.get(f"/t/{forged}").status_code == 404
        phone.close()
        manager.context.close()
        viewer.context.close()
    finally:
        stop_rig(rig)
        ingest.stop()
