"""The phone page over plain HTTP against a real hub: tokens, CSRF, limits, headers, follow-up numbers."""

from __future__ import annotations

from hallkit.queue.models import CallNext, Complete
from hallkit.rating.cases import CaseState
from hallkit.rating.followup import followup_numbers
from hallkit.rating.models import CaseStep, CaseStepCommand
from hallkit.testing import free_port
from tests.web.conftest import form_csrf, http, start_rig, stop_rig, take, wait_until, web_config


def serve(rig, window: int = 1) -> None:  # noqa: ANN001
    with rig.client("console") as counter:
        assert counter.request(CallNext(window=window)).ok
        assert counter.request(Complete(window=window)).ok


def open_form(client, token: str) -> tuple[str, str]:  # noqa: ANN001
    wait_until(lambda: 'id="rate"' in client.get(f"/t/{token}").text, what="the rating form")
    return form_csrf(client.get(f"/t/{token}").text)


def test_page_answers_with_security_headers_and_no_personal_data(rig):
    ticket = take(rig)
    with http(rig) as client:
        page = client.get(f"/t/{ticket.public_id}")
    assert page.status_code == 200
    assert ticket.number in page.text and "低保申请" in page.text
    headers = page.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    cookie = headers["set-cookie"]
    assert f"Path=/t/{ticket.public_id}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "<script>" not in page.text  # the CSP allows only the page's own script file


def test_forged_and_malformed_tokens_open_nothing(rig):
    take(rig)
    with http(rig) as client:
        for token in ("abcdefghjk", "2345678923", "../../etc", "A" * 10, "x" * 100):
            answer = client.get(f"/t/{token}")
            assert answer.status_code == 404, token
            assert "/" in token or "无效或已过期" in answer.text  # a path with slashes never reaches the page
        assert client.get("/t/abcdefghjk/stream").status_code == 404
        refused = client.post("/t/abcdefghjk/rate", data={"level": "5", "csrf": "x" * 32, "form_id": "y" * 16},
                              cookies={"hallkit_phone_csrf": "x" * 32})
        assert refused.status_code in (403, 404)
    with rig.hub.queue.store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_rating_needs_the_csrf_token_of_its_own_ticket(rig):
    first, second = take(rig), take(rig)
    serve(rig)
    serve(rig)
    with http(rig) as client:
        csrf, form_id = open_form(client, first.public_id)
        other_csrf, _ = open_form(client, second.public_id)
        form = {"level": "5", "form_id": form_id}
        assert client.post(f"/t/{first.public_id}/rate", data=form).status_code == 403  # no token at all
        # The second ticket's token and cookie do not open the first ticket's form.
        client.cookies.clear()
        stolen = client.post(f"/t/{first.public_id}/rate", data={**form, "csrf": other_csrf},
                             cookies={"hallkit_phone_csrf": other_csrf})
        assert stolen.status_code == 403
        cross_site = client.post(f"/t/{first.public_id}/rate", data={**form, "csrf": csrf},
                                 cookies={"hallkit_phone_csrf": csrf}, headers={"Origin": "http://evil.example"})
        assert cross_site.status_code == 403
        done = client.post(f"/t/{first.public_id}/rate", data={**form, "csrf": csrf},
                           cookies={"hallkit_phone_csrf": csrf})
        assert done.status_code == 303
        assert "感谢您的评价" in client.get(f"/t/{first.public_id}").text
        # The other ticket was not rated by any of this.
        assert 'id="rate"' in client.get(f"/t/{second.public_id}").text


def test_the_same_form_sent_twice_is_one_rating_and_a_new_form_is_refused(rig):
    ticket = take(rig)
    serve(rig)
    with http(rig) as client:
        csrf, form_id = open_form(client, ticket.public_id)
        form = {"level": "4", "csrf": csrf, "form_id": form_id}
        cookies = {"hallkit_phone_csrf": csrf}
        assert client.post(f"/t/{ticket.public_id}/rate", data=form, cookies=cookies).status_code == 303
        again = client.post(f"/t/{ticket.public_id}/rate", data={**form, "level": "1"}, cookies=cookies)
        assert again.status_code == 409 and "已经评价过" in again.text
    with rig.hub.queue.store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 1


def test_bad_input_gets_a_clear_error_and_rates_nothing(rig):
    ticket = take(rig)
    serve(rig)
    with http(rig) as client:
        csrf, form_id = open_form(client, ticket.public_id)
        cookies = {"hallkit_phone_csrf": csrf}
        base = {"csrf": csrf, "form_id": form_id}
        cases = [({"level": "1", "phone": "12345"}, "正确的手机号码"),
                 ({"level": "5", "tags": "态度不好"}, "才需要填写原因"),
                 ({"level": "1", "tags": "不存在的原因"}, "没有“不存在的原因”这个差评原因"),
                 ({"level": "9"}, "请选择满意程度"),
                 ({"level": "2", "text": "长" * 301}, "最多 300 个字")]
        for fields, said in cases:
            answer = client.post(f"/t/{ticket.public_id}/rate", data={**base, **fields}, cookies=cookies)
            assert answer.status_code in (400, 409), fields
            assert said in answer.text, (fields, answer.text[:600])
            assert 'id="rate"' in answer.text  # the form is still there
    with rig.hub.queue.store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_limits_per_token_and_per_address(mosquitto, tmp_path):
    port = free_port()
    config = web_config(port, web="requests_per_minute_per_token = 5\nrequests_per_minute_per_address = 12")
    rig = start_rig(config, mosquitto, tmp_path / "data", port)
    try:
        first, second = take(rig), take(rig)
        with http(rig) as client:
            answers = [client.get(f"/t/{first.public_id}").status_code for _ in range(6)]
            assert answers == [200] * 5 + [429]
            # Another token from the same address still opens, until the address's own limit.
            answers = [client.get(f"/t/{second.public_id}").status_code for _ in range(5)]
            assert answers == [200] * 5
            # Every request so far counted for the address (11 of 12): one guess left, then none.
            guesses = [client.get(f"/t/{t}23456789") for t in "abcdefghjk"]
            assert guesses[0].status_code == 404
            assert {g.status_code for g in guesses[1:]} == {429}
            assert guesses[-1].headers["retry-after"] == "60"
    finally:
        stop_rig(rig)


def test_token_expires_with_the_rating_period(mosquitto, tmp_path):
    port = free_port()
    config = web_config(port, rating="pad_timeout_seconds = 5\nlate_rating_hours = 0")
    rig = start_rig(config, mosquitto, tmp_path / "data", port)
    try:
        ticket = take(rig)
        serve(rig)
        with http(rig) as client:
            open_form(client, ticket.public_id)
            wait_until(lambda: client.get(f"/t/{ticket.public_id}").status_code == 404, timeout=30,
                       what="the token to expire", every=1.0)
            assert "无效或已过期" in client.get(f"/t/{ticket.public_id}").text
    finally:
        stop_rig(rig)


def test_followup_number_is_deleted_when_the_case_closes(rig):
    ticket = take(rig)
    serve(rig)
    with http(rig) as client:
        csrf, form_id = open_form(client, ticket.public_id)
        answer = client.post(f"/t/{ticket.public_id}/rate", cookies={"hallkit_phone_csrf": csrf},
                             data={"level": "2", "tags": "效率低", "phone": "13912345678", "csrf": csrf,
                                   "form_id": form_id})
        assert answer.status_code == 303
    numbers = followup_numbers(rig.data, rig.config.web.followup_retention_days)
    [(case_id, phone)] = numbers.items()
    assert phone == "13912345678"
    with rig.client("console") as counter:
        for step in (CaseStep.VERIFIED, CaseStep.RECTIFIED, CaseStep.CALLED_BACK):
            assert counter.record_step(CaseStepCommand(case_id=case_id, step=step, by="a1")).ok
        assert rig.web.hall.purge_followups() == 0  # still open: the number stays
        assert counter.record_step(CaseStepCommand(case_id=case_id, step=CaseStep.CLOSED, by="a1")).ok
    with rig.hub.queue.store.transaction() as conn:
        state = conn.execute("SELECT state FROM rating_cases WHERE case_id = ?", (case_id,)).fetchone()[0]
    assert state == CaseState.CLOSED.value
    assert rig.web.hall.purge_followups() == 1
    assert followup_numbers(rig.data, rig.config.web.followup_retention_days) == {}
    assert b"13912345678" not in (rig.data / "followup.sqlite3").read_bytes()


def test_behind_a_reverse_proxy_every_link_carries_the_public_path(mosquitto, tmp_path):
    port = free_port()
    config = web_config(port).model_copy(update={"web": web_config(port).web.model_copy(
        update={"public_url": "https://zwfw.example.gov.cn/hall/xinghua"})})
    rig = start_rig(config, mosquitto, tmp_path / "data", port)
    try:
        ticket = take(rig)
        assert config.web.ticket_url(ticket.public_id) == f"https://zwfw.example.gov.cn/hall/xinghua/t/{ticket.public_id}"
        serve(rig)
        with http(rig) as client:  # as the proxy forwards it: the public path stripped
            page = client.get(f"/t/{ticket.public_id}")
            assert 'href="/hall/xinghua/static/phone.css"' in page.text
            assert f'action="/hall/xinghua/t/{ticket.public_id}/rate"' in page.text
            assert f'data-stream="/hall/xinghua/t/{ticket.public_id}/stream"' in page.text
            assert f"Path=/hall/xinghua/t/{ticket.public_id}" in page.headers["set-cookie"]
            csrf, form_id = form_csrf(page.text)
            done = client.post(f"/t/{ticket.public_id}/rate", data={"level": "5", "csrf": csrf, "form_id": form_id},
                               cookies={"hallkit_phone_csrf": csrf},
                               headers={"Origin": "https://zwfw.example.gov.cn"})
            assert done.status_code == 303 and done.headers["location"] == f"/hall/xinghua/t/{ticket.public_id}"
    finally:
        stop_rig(rig)


def test_the_web_device_rates_by_token_only_and_takes_no_tickets(rig):
    from hallkit.queue.models import TakeTicket
    from hallkit.rating.models import Level, RatingChannel, RatingSubmission

    take(rig)
    with rig.client("console") as counter:
        done = counter.request(CallNext(window=1))
        done = counter.request(Complete(window=1))
    event_id = next(e.id for e in done.outcome.events if e.type == "ticket_completed")
    with rig.client("web") as web:
        taken = web.request(TakeTicket(service_id="social"))
        assert not taken.ok and taken.refusal.reason == "hub.not_allowed"
        by_event = web.rate(RatingSubmission(service_event_id=event_id, channel=RatingChannel.QR, level=Level(5)))
        assert not by_event.ok and by_event.refusal.reason == "rating.by_token_only"
    with rig.hub.queue.store.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0
