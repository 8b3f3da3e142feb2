"""Appointments: imported by hash only, found by the card's hash, checked in once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.contracts.hall import check_in_request_id

from hallkit.cli import main
from hallkit.config import parse_config
from hallkit.privacy import id_hash
from hallkit.queue.models import Channel, Priority, TakeTicket
from hallkit.testing import HALL_WITH_DEVICES

NUMBER = "110101194501011234"  # a made-up test number
OTHER = "110101195002023456"


@pytest.fixture
def hall(mosquitto, tmp_path):
    config_file = tmp_path / "hall.toml"
    config_file.write_text(HALL_WITH_DEVICES, "utf-8")
    config = parse_config(HALL_WITH_DEVICES)
    now = datetime.now(config.hall.zone).replace(microsecond=0)
    csv_file = tmp_path / "bookings.csv"
    rows = [(NUMBER, "pension", now, now + timedelta(minutes=30)),
            (NUMBER, "permit", now + timedelta(days=1), now + timedelta(days=1, minutes=30)),
            (OTHER, "social", now, now + timedelta(minutes=30)),
            (OTHER, "nothing", now, now + timedelta(minutes=30))]
    csv_file.write_text("id_number,service_id,starts,ends\n" + "".join(
        f"{n},{s},{a.isoformat()},{b.isoformat()}\n" for n, s, a, b in rows), "utf-8")
    data = tmp_path / "data"
    # 1: the fourth row names a service this hall does not have; the other three are kept.
    assert main(["appointments", "import", str(csv_file), "--config", str(config_file), "--data", str(data),
                 "--json"]) == 1
    hub = Hub(config, mosquitto.address, data, "normal", parts=hub_parts(config))
    hub.start()
    yield config, config_file, data, hub
    hub.stop()


def test_a_card_finds_today_s_appointment_and_checks_in_once(hall, mosquitto, capsys):
    config, config_file, data, hub = hall
    hashed = id_hash(config.privacy.id_hash_key, NUMBER)
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        found = kiosk.appointments(hashed).appointments
        assert [(a.service_id, a.service_name) for a in found] == [("pension", "养老保险")]  # not tomorrow's
        check_in = TakeTicket(service_id="pension", channel=Channel.APPOINTMENT, priority=Priority.APPOINTMENT,
                              id_hash=hashed, request_id=check_in_request_id(found[0].appointment_id))
        first = kiosk.request(check_in)
        again = kiosk.request(check_in.model_copy(update={}))
        assert first.ok and first.outcome.ticket.priority == "appointment"
        assert again.outcome.ticket.number == first.outcome.ticket.number  # one ticket per appointment
    # Keyed by the appointment, not the device: checked in again at a counter, still the same ticket,
    # but without the QR token, which only the kiosk that printed the ticket is given.
    with HallClient(mosquitto.address, "test-hall", "console") as console:
        at_counter = console.request(check_in)
    assert at_counter.outcome.ticket.number == first.outcome.ticket.number
    assert first.outcome.ticket.public_id and at_counter.outcome.ticket.public_id == ""
    with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
        assert kiosk.appointments(hashed).appointments == []  # checked in: no longer offered
        assert kiosk.appointments("0" * 64).appointments == []
    assert main(["appointments", "list", "--config", str(config_file), "--data", str(data), "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert sorted((line["service"], line["checked_in"]) for line in lines) == [("低保申请", False), ("养老保险", True)]
    stored = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert NUMBER.encode() not in stored and OTHER.encode() not in stored  # only keyed hashes are kept


def test_only_kiosks_and_counters_may_ask(hall, mosquitto):
    config, _, _, hub = hall
    with HallClient(mosquitto.address, "test-hall", "display-1") as display:
        before = hub.refusals["hub.not_allowed"]
        with pytest.raises(Exception, match="No answer"):
            display.appointments(id_hash(config.privacy.id_hash_key, NUMBER), timeout=1.0)
    assert hub.refusals["hub.not_allowed"] == before + 1
