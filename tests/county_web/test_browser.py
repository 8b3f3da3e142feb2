"""The county console in Debian's Chromium: what a county official and a township leader see.

The paper test runs the whole county path: a hall's telemetry batch published to a real
Mosquitto, stored by the real ingest in PostgreSQL, shown on a devices page that is already open.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlencode

import psycopg
from hallkit.contracts.uplink import UpKind, UpTopics, encode_batch
from hallkit.county.console import county_today
from hallkit.county.ingest import Ingest
from hallkit.county.testing import COUNTY, HALLS, at, case, rating, stats, store, telemetry
from playwright.sync_api import expect

from hallkit.rating.models import CaseStep, Level
from tests.broker.test_hub import wait_for
from tests.county_web.conftest import ADMIN, LEADER, VIEWER
from tests.upstream.test_uplink import publish

PAGES = ("/", "/halls/xinghua", "/devices", "/ratings", "/report", "/logins")


def login(browser, console, user: tuple[str, str]):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1500, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.errors = errors  # a CSP refusal or a script error shows here; close() fails on any
    page.goto(console.url + "login")
    page.fill("input[name=name]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(console.url)
    return page


def close(page) -> None:  # noqa: ANN001
    errors = [e for e in page.errors if "404" not in e]  # the out-of-scope hall's 404 is meant
    page.context.close()
    assert not errors, errors


def test_no_page_without_login(browser, console):
    context = browser.new_context()
    page = context.new_page()
    for path in PAGES:
        page.goto(console.url + path.lstrip("/"))
        assert page.url == console.url + "login" + ("" if path == "/" else f"?{urlencode({'next': path})}"), path
        expect(page.locator("form.login h1")).to_have_text("登录政务服务监管平台")
    context.close()


def test_a_township_leader_cannot_see_another_townships_hall(browser, console):
    page = login(browser, console, LEADER)
    expect(page.locator("#halls tbody tr")).to_have_count(2)
    expect(page.locator("#halls")).to_contain_text(HALLS["xinghua"][0])
    expect(page.locator("#halls")).not_to_contain_text(HALLS["dafeng"][0])
    response = page.goto(console.url + "halls/dafeng")
    assert response is not None and response.status == 404
    expect(page.locator("body")).to_contain_text("不在您的查看范围内")
    page.goto(console.url + "halls/xinghua")
    expect(page.locator("h1")).to_contain_text(HALLS["xinghua"][0])
    expect(page.locator("#hours-chart canvas")).to_have_count(1)  # ECharts drew under the CSP
    expect(page.locator("nav")).not_to_contain_text("账号")  # the logins page is the county admin's
    close(page)


def test_sorting_the_halls_by_satisfaction(browser, console):
    page = login(browser, console, VIEWER)
    page.goto(console.url + f"?day={console.month.isoformat()}")
    page.click("#halls th:has-text('满意率')")
    values = page.locator("#halls tbody td.satisfaction").evaluate_all("cells => cells.map(c => +c.dataset.value)")
    assert values == sorted(values, reverse=True) and len(values) == 3
    close(page)


def test_sorting_the_halls_by_the_longest_wait(browser, console):
    today = county_today()
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        for hall, waiting in (("dafeng", 1), ("xinghua-shimen", 8)):  # 1.5 and 12 min; xinghua 7.5 from the seed
            store(conn, UpKind.STATS, hall, [stats(hall, today, at(today, 11, 45), False, 16, waiting).model_dump_json()])
    page = login(browser, console, VIEWER)
    page.click("#halls th:has-text('最长等候')")
    values = page.locator("#halls tbody td.longest-wait").evaluate_all("cells => cells.map(c => +c.dataset.value)")
    assert values == [12.0, 7.5, 1.5]
    close(page)


def test_a_printer_out_of_paper_appears_on_the_open_devices_page(browser, console, county_broker):
    ingest = Ingest(county_broker.address, console.dsn, worker_id="web-test").start()
    page = login(browser, console, VIEWER)
    try:
        page.goto(console.url + "devices?all=1")
        printer = page.locator("#devices tr[data-hall='dafeng'][data-device='printer-1'] td.paper")
        expect(printer).to_have_text("纸张正常")
        out = telemetry("dafeng", "printer-1", "printer", "online", paper="out")
        publish(county_broker, [(UpTopics(COUNTY, "dafeng").up(UpKind.TELEMETRY),
                                 encode_batch(UpKind.TELEMETRY, "dafeng-paper-1", "dafeng", COUNTY, "epoch-1", False,
                                              [(900001, out.model_dump_json())]))])

        def stored() -> bool:
            with psycopg.connect(console.dsn) as conn:
                row = conn.execute("SELECT paper FROM devices WHERE hall = 'dafeng' AND device = 'printer-1'").fetchone()
            return row is not None and row[0] == "out"

        wait_for(stored, timeout=10)
        stored_at = time.monotonic()
        expect(printer).to_have_text("无纸", timeout=2000)
        assert time.monotonic() - stored_at < 2.0
        expect(page.locator("#hall-alerts li[data-hall='dafeng']")).to_contain_text("1 台打印机无纸")
        page.goto(console.url + "devices")  # by default the list shows what needs someone
        expect(page.locator("#devices tbody tr")).to_have_count(1)
        page.check("input[name=visit]")
        page.click("form.pick button[type=submit]")
        expect(page.locator("#devices tbody tr[data-device='printer-1']")).to_have_count(1)
    finally:
        close(page)
        ingest.stop()


def test_an_overdue_case_appears_under_duban(browser, console):
    today = county_today()
    served = at(today - timedelta(days=6), 15)
    late = rating("xinghua-shimen", served, 901, Level.VERY_DISSATISFIED)
    with psycopg.connect(console.dsn, autocommit=True) as conn:
        store(conn, UpKind.RATING, "xinghua-shimen", [late.model_dump_json()])
        store(conn, UpKind.CASE, "xinghua-shimen", [case(late, CaseStep.OPENED, served, today - timedelta(days=1))
                                                    .model_dump_json()])
    page = login(browser, console, LEADER)
    page.goto(console.url + "ratings")
    row = page.locator(f"#overdue tr[data-case='c-{late.rating_id}']")
    expect(row).to_contain_text(HALLS["xinghua-shimen"][0])
    expect(row.locator("td.days-over")).to_have_text("1")
    expect(page.locator("#overdue")).not_to_contain_text(HALLS["dafeng"][0])
    close(page)


def test_the_monthly_report_downloads_and_prints_with_its_definitions(browser, console):
    page = login(browser, console, ADMIN)
    page.goto(console.url + f"report?month={console.month:%Y-%m}")
    expect(page.locator("#report-halls tbody tr[data-hall]")).to_have_count(3)
    expect(page.locator("#report-halls tr.total")).to_contain_text("合计")
    expect(page.locator("ol.definitions")).to_contain_text("满意率")
    with page.expect_download() as download:
        page.click("#csv")
    body = download.value.path().read_bytes()
    assert body.startswith("\ufeff".encode()) and HALLS["dafeng"][0].encode() in body
    page.goto(console.url + f"report?month={console.month:%Y-%m}&lang=en")
    expect(page.locator("h1")).to_contain_text("Monthly report")
    expect(page.locator("ol.definitions")).to_contain_text("Satisfaction")
    close(page)
